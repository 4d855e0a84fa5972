import { describe, expect, it } from 'vitest';
import { IdentityError, parsePayloadHeader, parseXfcc, peerFromXfcc } from '../src/identity.ts';

const H = 'x-jwt-payload';
const enc = (v: unknown, pad = false): string => {
  const s = Buffer.from(JSON.stringify(v)).toString('base64url');
  return pad ? s.padEnd(Math.ceil(s.length / 4) * 4, '=') : s;
};

describe('parsePayloadHeader (Envoy forward_payload_header)', () => {
  it('reads sub, iss, azp and scopes from an unpadded base64url payload', () => {
    const c = parsePayloadHeader(
      H,
      enc({ sub: 'alice', iss: 'https://kc/realms/t', azp: 'web', scope: 'openid orders:write' }),
    );
    expect(c).toEqual({
      subject: 'alice',
      issuer: 'https://kc/realms/t',
      clientId: 'web',
      scopes: ['openid', 'orders:write'],
    });
  });

  it('accepts the padded form (pad_forward_payload_header) and scp arrays', () => {
    const v = enc({ sub: 'agent-1', client_id: 'agent', scp: ['orders:read'] }, true);
    expect(v.endsWith('=')).toBe(true);
    const c = parsePayloadHeader(H, v);
    expect(c.subject).toBe('agent-1');
    expect(c.clientId).toBe('agent');
    expect(c.scopes).toEqual(['orders:read']);
  });

  it.each([
    [undefined, 'missing x-jwt-payload header'],
    ['', 'missing x-jwt-payload header'],
    [['a', 'b'], 'more than one x-jwt-payload header'],
    ['not base64!', 'x-jwt-payload is not base64url'],
    [Buffer.from('{"sub":').toString('base64url'), 'x-jwt-payload does not decode to JSON'],
    [enc(['sub']), 'x-jwt-payload does not decode to a JSON object'],
    [enc({ iss: 'x' }), 'x-jwt-payload has no usable sub claim'],
    [enc({ sub: '' }), 'x-jwt-payload has no usable sub claim'],
    [enc({ sub: 42 }), 'x-jwt-payload has no usable sub claim'],
  ])('rejects %j with "%s"', (value, message) => {
    expect(() => parsePayloadHeader(H, value)).toThrow(new IdentityError(message));
  });
});

describe('parseXfcc (Envoy x-forwarded-client-cert)', () => {
  it('parses the documented single-element example, with a quoted Subject', () => {
    const els = parseXfcc(
      'By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;' +
        'Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com',
    );
    expect(els).toHaveLength(1);
    expect(els[0]?.get('subject')).toEqual(['/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client']);
    expect(els[0]?.get('dns')).toEqual(['lyft.com', 'www.lyft.com']);
  });

  it('keeps commas, semicolons and escaped quotes inside quoted values', () => {
    const els = parseXfcc('Subject="CN=a, O=b; \\"c\\"";URI=spiffe://t/ns/x/sa/y');
    expect(els).toHaveLength(1);
    expect(els[0]?.get('subject')).toEqual(['CN=a, O=b; "c"']);
  });

  it('takes the peer from the last element (the hop the nearest sidecar appended)', () => {
    const v =
      'By=spiffe://td/ns/edge/sa/ingress;URI=spiffe://td/ns/ext/sa/client,' +
      'By=spiffe://td/ns/shop/sa/orders-api;Hash=ab;Subject="";URI=spiffe://td/ns/edge/sa/ingress';
    expect(peerFromXfcc(v)).toBe('spiffe://td/ns/edge/sa/ingress');
  });

  it('has no peer without the header or without a spiffe URI', () => {
    expect(peerFromXfcc(undefined)).toBeUndefined();
    expect(peerFromXfcc('By=x;URI=https://not-spiffe')).toBeUndefined();
  });

  it.each([['URI'], ['URI="spiffe://unterminated'], ['Su bject=x'], ['URI=a=b']])(
    'rejects malformed %j',
    (v) => {
      expect(() => parseXfcc(v)).toThrow(IdentityError);
    },
  );
});
