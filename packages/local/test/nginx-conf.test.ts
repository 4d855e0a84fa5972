// The main context the harness writes around an nginx http body: every path under the prefix, and
// the `user` directive only for an nginx that starts as root and may drop to it.
import { describe, expect, it } from 'vitest';
import { renderNginxConf } from '../src/harness/nginx.ts';

const body = 'server { listen 127.0.0.1:9443; return 404; }';

describe('renderNginxConf', () => {
  it('keeps pid and temp files under the prefix', () => {
    const conf = renderNginxConf('/run/nginx/pod', body, '/tools/mime.types');
    expect(conf).toContain('pid /run/nginx/pod/nginx.pid;');
    expect(conf).toContain('client_body_temp_path /run/nginx/pod/tmp/body;');
    expect(conf).toContain('proxy_temp_path /run/nginx/pod/tmp/proxy;');
    expect(conf).not.toMatch(/\/var\/|\/etc\//);
  });

  it('writes `user root root` only when this process is root and the nginx may keep it', () => {
    const root = process.getuid?.() === 0;
    const conf = renderNginxConf('/p', body, '/m');
    expect(conf.includes('user root root;')).toBe(root);
    // For an nginx started as a pod's user the directive would only earn a warning.
    expect(renderNginxConf('/p', body, '/m', 1, { rootUser: false })).not.toMatch(/^user /m);
  });
});
