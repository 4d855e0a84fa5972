import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseModel } from '@trellis/policy';
import { describe, expect, it } from 'vitest';
import { checkTarget, targetFromStackOutputs } from '../src/target.ts';

const parsed = parseModel(readFileSync(join(import.meta.dirname, '../../trellis.yaml'), 'utf8'));
if (!parsed.ok) throw new Error('trellis.yaml is invalid');
const model = parsed.model;

/** Outputs shaped as infra/local exports them (MeshLayer, and the `principals` secret of ./trellis token). */
const outputs = {
  ingressUrl: 'https://localhost:8443',
  trustBundle: '/repo/.trellis/local/pki/root.pem',
  principals: {
    tokenUrl: 'http://localhost:8180/realms/trellis/protocol/openid-connect/token',
    cliClientId: 'trellis-cli',
    users: { alice: 'pw-a', bob: 'pw-b' },
    agents: { 'reporting-bot': 'secret-r' },
  },
  sidecars: {
    ingress: {
      spiffeId: 'spiffe://trellis.local/ns/trellis/sa/ingress',
      adminUrl: 'http://127.0.0.1:8500',
      inbound: { http: 8600 },
      certDir: '/repo/.trellis/local/pki/ingress',
    },
    'orders-api': {
      spiffeId: 'spiffe://trellis.local/ns/trellis/sa/orders-api',
      adminUrl: 'http://127.0.0.1:8502',
      inbound: { http: 8620 },
      certDir: '/repo/.trellis/local/pki/orders-api',
    },
  },
  services: { 'orders-api': { url: 'http://127.0.0.1:8820' } },
};

describe('targetFromStackOutputs', () => {
  it('builds the token form, the fewer-hop endpoints and the Envoy admins', () => {
    const t = targetFromStackOutputs(outputs, { model });
    expect(t).toEqual({
      ingressUrl: 'https://localhost:8443',
      trustBundle: '/repo/.trellis/local/pki/root.pem',
      tokenUrl: 'http://localhost:8180/realms/trellis/protocol/openid-connect/token',
      tokenForm: {
        grant_type: 'password',
        client_id: 'trellis-cli',
        username: 'alice',
        password: 'pw-a',
      },
      mesh: {
        ingressUrl: 'http://127.0.0.1:8600',
        sidecarUrl: 'https://127.0.0.1:8620',
        clientCert: {
          certFile: '/repo/.trellis/local/pki/ingress/cert.pem',
          keyFile: '/repo/.trellis/local/pki/ingress/key.pem',
        },
        appUrl: 'http://127.0.0.1:8820',
        xfcc: 'URI=spiffe://trellis.local/ns/trellis/sa/ingress',
      },
      envoyAdmins: [
        { name: 'ingress', url: 'http://127.0.0.1:8500' },
        { name: 'orders-api', url: 'http://127.0.0.1:8502' },
      ],
    });
  });

  it('uses the client-credentials grant for an agent', () => {
    expect(targetFromStackOutputs(outputs, { model, as: 'reporting-bot' }).tokenForm).toEqual({
      grant_type: 'client_credentials',
      client_id: 'reporting-bot',
      client_secret: 'secret-r',
    });
  });

  it('routes only, when the stack exports no sidecars', () => {
    const { sidecars: _s, services: _v, ...few } = outputs;
    const t = targetFromStackOutputs(few, { model });
    expect(t.mesh).toBeUndefined();
    expect(t.envoyAdmins).toBeUndefined();
  });

  it('names the missing output or principal', () => {
    const { principals: _p, ...none } = outputs;
    expect(() => targetFromStackOutputs(none, { model })).toThrow(
      "the stack has no output 'principals'",
    );
    expect(() => targetFromStackOutputs(outputs, { model, as: 'mallory' })).toThrow(
      "output principals has no user or agent 'mallory' (known: alice, bob, reporting-bot)",
    );
  });
});

describe('checkTarget (a --target file)', () => {
  const ok = {
    ingressUrl: 'https://localhost:8443/',
    tokenUrl: 'http://127.0.0.1:8180/token',
    tokenForm: { grant_type: 'client_credentials', client_id: 'x', client_secret: 'y' },
  };

  it('accepts a minimal target and trims trailing slashes', () => {
    expect(checkTarget(ok).ingressUrl).toBe('https://localhost:8443');
  });

  it('names the bad field', () => {
    expect(() => checkTarget({ ...ok, ingressUrl: 'localhost:8443' }, 't.json')).toThrow(
      "t.json.ingressUrl: 'localhost:8443' must use https: or http:",
    );
    expect(() => checkTarget({ ...ok, tokenForm: { client_id: 'x' } }, 't.json')).toThrow(
      't.json.tokenForm.grant_type: missing',
    );
    expect(() =>
      checkTarget({ ...ok, mesh: { sidecarUrl: 'http://127.0.0.1:1' } }, 't.json'),
    ).toThrow("t.json.mesh.sidecarUrl: 'http://127.0.0.1:1' must use https:");
    expect(() =>
      checkTarget({ ...ok, envoyAdmins: [{ url: 'http://127.0.0.1:1' }] }, 't.json'),
    ).toThrow('t.json.envoyAdmins[0].name: must be a name');
    expect(() => checkTarget([], 't.json')).toThrow('t.json: must be an object');
  });
});
