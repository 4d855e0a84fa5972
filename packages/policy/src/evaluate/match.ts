/** String matching as Istio documents it for policy values: exact, `prefix*`, `*suffix`, and `*` (presence). */

/**
 * Istio value matching (https://istio.io/latest/docs/reference/config/security/authorization-policy/,
 * "exact match", "prefix match", "suffix match", "presence match").
 */
export function istioValueMatches(pattern: string, value: string): boolean {
  if (pattern === '*') return value !== '';
  if (pattern.length > 1 && pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.length > 1 && pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

/**
 * Istio path matching: the value forms above, plus path templates (Istio ≥ 1.22): `{*}` matches exactly
 * one path segment, `{**}` any number of segments and may only be last.
 */
export function istioPathMatches(pattern: string, path: string): boolean {
  if (!pattern.includes('{')) return istioValueMatches(pattern, path);
  const segs = pattern.split('/');
  const re = segs
    .map((s, i) => {
      if (s === '{*}') return '[^/]+';
      if (s === '{**}' && i === segs.length - 1) return '.*';
      return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${re}$`).test(path);
}
