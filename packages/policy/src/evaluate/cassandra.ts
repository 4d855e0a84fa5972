/**
 * An evaluator of CQL role and permission statements, written from Cassandra's documented semantics.
 * It parses the CQL text (not the structured form), so it checks what would really be sent.
 * - MutualTlsAuthenticator maps the certificate's identity to a role through `ADD IDENTITY`; an identity
 *   with no mapping fails authentication, and the role must have LOGIN.
 * - "Permissions are inherited": a permission on ALL KEYSPACES applies to every keyspace and table, a
 *   permission on a KEYSPACE to every table in it; roles granted to a role pass their permissions on.
 *   https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/security.html#cql-permissions
 * - Unquoted names are case-insensitive (lowercased); quoted names and string role names keep case.
 */
import type { CassandraPermission } from '../schema.ts';
import type { Decision } from '../request.ts';

/** The parsed state of roles, identities and permissions. */
export interface CassandraAuthState {
  login: Map<string, boolean>;
  identities: Map<string, string>;
  /** role → set of `permission@resource` (resource: `data`, `data/ks`, `data/ks/table`). */
  permissions: Map<string, Set<string>>;
  /** role → roles granted to it. */
  memberOf: Map<string, Set<string>>;
}

const name = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)`;
const role = String.raw`(?:'(?:[^']|'')*'|"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)`;

function unquoteName(s: string): string {
  return s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s.toLowerCase();
}

function unquoteRole(s: string): string {
  if (s.startsWith("'")) return s.slice(1, -1).replace(/''/g, "'");
  return unquoteName(s);
}

/** Parses CQL statements (one per line or `;`-separated). Throws on a statement it does not know. */
export function parseCassandraAuth(cql: string): CassandraAuthState {
  const st: CassandraAuthState = {
    login: new Map(),
    identities: new Map(),
    permissions: new Map(),
    memberOf: new Map(),
  };
  const stmts = cql
    .split(/;\s*/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.startsWith('--'));
  for (const s of stmts) {
    let m: RegExpMatchArray | null;
    if (
      (m = s.match(
        new RegExp(String.raw`^CREATE ROLE (?:IF NOT EXISTS )?(${role})(?: WITH (.*))?$`, 'i'),
      ))
    ) {
      const r = unquoteRole(m[1] ?? '');
      st.login.set(r, /LOGIN\s*=\s*true/i.test(m[2] ?? ''));
    } else if (
      (m = s.match(
        new RegExp(
          String.raw`^ADD IDENTITY (?:IF NOT EXISTS )?('(?:[^']|'')*') TO ROLE (${role})$`,
          'i',
        ),
      ))
    ) {
      st.identities.set(unquoteRole(m[1] ?? ''), unquoteRole(m[2] ?? ''));
    } else if (
      (m = s.match(
        new RegExp(
          String.raw`^GRANT (\w+)(?: PERMISSIONS?)? ON (ALL KEYSPACES|KEYSPACE (${name})|TABLE (${name})\.(${name})) TO (${role})$`,
          'i',
        ),
      ))
    ) {
      const resource =
        m[3] !== undefined
          ? `data/${unquoteName(m[3])}`
          : m[4] !== undefined
            ? `data/${unquoteName(m[4])}/${unquoteName(m[5] ?? '')}`
            : 'data';
      const r = unquoteRole(m[6] ?? '');
      const set = st.permissions.get(r) ?? new Set<string>();
      set.add(`${(m[1] ?? '').toUpperCase()}@${resource}`);
      st.permissions.set(r, set);
    } else if (/^CREATE KEYSPACE /i.test(s)) {
      // schema, not authorization
    } else if ((m = s.match(new RegExp(String.raw`^GRANT (${role}) TO (${role})$`, 'i')))) {
      const to = unquoteRole(m[2] ?? '');
      const set = st.memberOf.get(to) ?? new Set<string>();
      set.add(unquoteRole(m[1] ?? ''));
      st.memberOf.set(to, set);
    } else throw new Error(`unsupported CQL statement: ${s}`);
  }
  return st;
}

function rolesOf(st: CassandraAuthState, r: string, seen = new Set<string>()): Set<string> {
  if (seen.has(r)) return seen;
  seen.add(r);
  for (const m of st.memberOf.get(r) ?? []) rolesOf(st, m, seen);
  return seen;
}

/** Decides whether the client with certificate identity `identity` holds `permission` on the resource. */
export function evaluateCassandra(
  st: CassandraAuthState,
  req: { identity: string; keyspace: string; table?: string; permission: CassandraPermission },
): Decision {
  const r = st.identities.get(req.identity);
  if (r === undefined)
    return { allowed: false, reason: 'authentication fails: identity not mapped to a role' };
  if (!st.login.get(r)) return { allowed: false, reason: `role ${r} cannot LOGIN` };
  const resources = ['data', `data/${req.keyspace}`];
  if (req.table !== undefined) resources.push(`data/${req.keyspace}/${req.table}`);
  for (const role of rolesOf(st, r))
    for (const res of resources)
      if (
        st.permissions.get(role)?.has(`${req.permission}@${res}`) ||
        st.permissions.get(role)?.has(`ALL@${res}`)
      )
        return { allowed: true, reason: `${role} holds ${req.permission} on ${res}` };
  return {
    allowed: false,
    reason: `${r} holds no ${req.permission} on ${req.keyspace}${req.table ? `.${req.table}` : ''}`,
  };
}
