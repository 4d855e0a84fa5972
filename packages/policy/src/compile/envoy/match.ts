/** Route and path matchers shared by the route table and RBAC. */
import type { Route } from '../../schema.ts';
import { templateSegments } from '../common.ts';
import type { RouteMatch, StringMatcher } from '../envoy-types.ts';

/** Escapes a literal for RE2. */
export function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A path template as a StringMatcher: exact for literal paths, an anchored RE2 regex otherwise. */
export function pathMatcher(template: string): StringMatcher {
  const segs = templateSegments(template);
  if (segs.every((s) => s !== null)) return { exact: template };
  return {
    safe_regex: { regex: `^/${segs.map((s) => (s === null ? '[^/]+' : reEscape(s))).join('/')}$` },
  };
}

/** The route match of a model route: its method and its path (exact or regex). */
export function routeMatch(r: Route): RouteMatch {
  const m = pathMatcher(r.path);
  const headers = [{ name: ':method', string_match: { exact: r.method } }];
  return 'exact' in m
    ? { path: m.exact, headers }
    : { safe_regex: { regex: 'safe_regex' in m ? m.safe_regex.regex : '' }, headers };
}
