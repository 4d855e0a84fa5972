/**
 * The login and token events of the audit trail: logged by the `jboss-logging` listener (category
 * `org.keycloak.events`, one line per event with type, client, user id = the token's `sub`, and the
 * error of a failed one), and kept in the realm's event store for a day for the admin console.
 * https://www.keycloak.org/docs/latest/server_admin/#auditing-and-events
 */
export const keycloakAuditEvents = [
  'LOGIN',
  'LOGIN_ERROR',
  'CLIENT_LOGIN',
  'CLIENT_LOGIN_ERROR',
  'CODE_TO_TOKEN',
  'CODE_TO_TOKEN_ERROR',
  'REFRESH_TOKEN',
  'REFRESH_TOKEN_ERROR',
  'LOGOUT',
  'LOGOUT_ERROR',
] as const;
