/** What `./trellis up` reads from the stack output `prometheus` to print its URLs. */
import { describe, expect, it } from 'vitest';
import { consolesUrl, prometheusUrl } from '../src/verbs/up.ts';

describe('the Prometheus lines of ./trellis up', () => {
  it('reads the URL and the dashboards’ index from the stack output', () => {
    const out = {
      url: 'http://127.0.0.1:8090',
      consolesUrl: 'http://127.0.0.1:8090/consoles/index.html',
      spiffeId: 'spiffe://trellis.local/ns/trellis/sa/prometheus',
      jobs: ['prometheus'],
    };
    expect(prometheusUrl(out)).toBe('http://127.0.0.1:8090');
    expect(consolesUrl(out)).toBe('http://127.0.0.1:8090/consoles/index.html');
  });

  it('prints nothing for a stack without them', () => {
    expect(consolesUrl(undefined)).toBeNull();
    expect(consolesUrl({ url: 'http://127.0.0.1:8090' })).toBeNull();
    expect(consolesUrl({ consolesUrl: 8090 })).toBeNull();
  });
});
