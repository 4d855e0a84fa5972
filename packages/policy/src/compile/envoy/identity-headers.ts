/**
 * What the app learns about the caller, in request headers: the peer's SPIFFE ID in
 * `x-forwarded-client-cert` (HCM `forward_client_cert_details`), and, when asked, the verified JWT
 * payload in `EnvoyOptions.payloadHeader` (jwt_authn's `forward_payload_header`).
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto
 */
import type { EnvoyOptions } from '../envoy.ts';
import type { HcmBuilder } from './ir.ts';

/** Throws unless the payload header, when given, is a lower-case header name. */
export function checkPayloadHeader(o: EnvoyOptions): void {
  if (o.payloadHeader !== undefined && !/^[a-z0-9-]+$/.test(o.payloadHeader))
    throw new Error(
      `compileEnvoy: payloadHeader must be a lower-case header name, got '${o.payloadHeader}'`,
    );
}

/** The jwt_authn provider fields that forward the verified payload, if a header is configured. */
export function forwardPayload(o: EnvoyOptions): { forward_payload_header?: string } {
  return o.payloadHeader !== undefined ? { forward_payload_header: o.payloadHeader } : {};
}

/**
 * The client-certificate header. Every listener drops an incoming `x-forwarded-client-cert` (the HCM
 * default set by the listener builder, `SANITIZE`); a sidecar listener then sets it to the verified
 * peer's URI SAN, so the app sees who called. The edge has no client certificate to pass on.
 */
export const identityHeaders: HcmBuilder = {
  patchHcm(hcm, l) {
    if (l.edge) return;
    hcm.forward_client_cert_details = 'SANITIZE_SET';
    hcm.set_current_client_cert_details = { uri: true };
  },
};
