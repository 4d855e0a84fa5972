import * as pulumi from '@pulumi/pulumi';
import { isIP } from 'node:net';
import { keycloakLaunchSpec, keycloakRealmFile } from '@trellis/local/harness';
import { compileKeycloakRealm, type BoundModel } from '@trellis/policy';
import { join } from 'node:path';
import type { KeycloakProbe, SecretInputs, SecretOutputs } from './keycloak-impl.ts';
import { WorkloadCertificate, type LocalMeshCa } from './pki.ts';
import { LocalProcess } from './process.ts';
import { POD_WORK_DIR } from './process-impl.ts';
import { LocalRelay } from './relay.ts';
import { serverPlacement, type ServerPod } from './server-pod.ts';

// Captured by the serialized providers instead of module objects (see process.ts).
const IMPL = new URL('./keycloak-impl.ts', import.meta.url).pathname;
type Impl = typeof import('./keycloak-impl.ts');

const secretProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: SecretOutputs, news: SecretInputs) {
    // Generated once; only a different length makes a new one.
    const replace = olds.bytes !== news.bytes;
    return { changes: replace, replaces: replace ? ['bytes'] : [] };
  },
  async create(inputs: SecretInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id: `${inputs.bytes}`, outs: impl.generate(inputs) };
  },
};

/** Inputs of a {@link GeneratedSecret}. */
export interface GeneratedSecretArgs {
  /** Random bytes before base64url encoding. @default 24 */
  bytes?: number;
}

/**
 * A random secret (password, client secret) generated once at create and kept only in state, where
 * `value` is encrypted as a Pulumi secret. A dynamic resource instead of `@pulumi/random`, whose
 * plugin would be one more download outside the package registries.
 */
export class GeneratedSecret extends pulumi.dynamic.Resource {
  declare public readonly value: pulumi.Output<string>;

  constructor(name: string, args: GeneratedSecretArgs = {}, opts?: pulumi.CustomResourceOptions) {
    super(
      secretProvider,
      name,
      { bytes: args.bytes ?? 24, value: undefined },
      { ...opts, additionalSecretOutputs: ['value'] },
      'trellis-local',
      'GeneratedSecret',
    );
  }
}

/** A demo user of the local realm; its password is generated. */
export interface LocalKeycloakUser {
  username: string;
  /** Realm roles, from the identity provider's `roles` in the model. */
  roles: string[];
}

/** Inputs of a {@link LocalKeycloak}. */
export interface LocalKeycloakArgs {
  /** The policy model; the realm is `compileKeycloakRealm(model, { provider, ... })`. */
  model: BoundModel;
  /** The identity provider of the model this Keycloak implements. */
  provider: string;
  /** The server's directory (a LocalProcess dir: home, H2 database, realm file, log). */
  dir: string;
  /**
   * Issues the server certificate (the root every client of the stack trusts: the sidecars for
   * JWKS, `./trellis token`, k6).
   */
  ca: LocalMeshCa;
  /** Directory of the server certificate files (renewed in place; Keycloak re-reads them hourly). */
  certDir: string;
  /**
   * Loopback ports, both HTTPS only: the server (issuer, token endpoint, JWKS) and the management
   * interface (health).
   */
  ports: { https: number; management: number };
  /**
   * The public base URL (`--hostname`), e.g. `https://localhost:8180`. `<hostname>/realms/<realm>`
   * must be the provider's issuer in the model, or the sidecars would refuse every token. It must
   * be https: the server has no plaintext listener.
   */
  hostname: string;
  /** Server certificate lifetime in hours. @default 24 */
  certValidHours?: number;
  /** Bump to re-issue the server certificate now. @default 0 */
  rotation?: pulumi.Input<number>;
  /** Demo users, each with a generated password. @default none */
  users?: LocalKeycloakUser[];
  /**
   * The public client users get tokens from (password grant, for `./trellis token`).
   * @default 'trellis-cli'
   */
  cliClientId?: string;
  /** @default 300 (Keycloak's default; see compileKeycloakRealm) */
  accessTokenLifespan?: number;
  /**
   * @default 300_000 (a cold start with a realm import on two busy cores takes 20–90 s;
   * packages/local/src/harness/keycloak.ts)
   */
  readyTimeoutMs?: number;
  /**
   * Run in this pod (ADR 0012), as its user: the HTTPS listener on the pod's `address`, the
   * management interface on the pod's own 127.0.0.1 (probed from inside the pod), the home and
   * database under `<dir>/pod` (the pod user's; the install stays read-only), the certificate
   * (which then also names `address`) and its key readable by the pod user alone. A relay on the
   * host's 127.0.0.1 (`relayDir`) forwards `ports.https` to the pod, so `hostname` and every host
   * client keep working, TLS end to end. @default none: both listeners on the host's 127.0.0.1
   */
  pod?: ServerPod & { relayDir: string };
}

const defaults = {
  certValidHours: 24,
  cliClientId: 'trellis-cli',
  accessTokenLifespan: 300,
  readyTimeoutMs: 300_000,
  adminUsername: 'trellis-admin',
};

/**
 * Keycloak for one machine: a supervised Keycloak 26 on loopback (or in a pod, relayed to
 * loopback), HTTPS only (server and management interface) with a certificate from the Mesh CA, and the realm compiled from the model (client
 * scopes, roles, agents as confidential clients with the client-credentials grant), demo users, and a
 * public CLI client. Every password and client secret is generated and kept only as a Pulumi secret.
 */
export class LocalKeycloak extends pulumi.ComponentResource {
  public readonly realm: string;
  /** `<hostname>/realms/<realm>`: the `iss` of every token. */
  public readonly issuer: string;
  public readonly tokenUrl: string;
  public readonly jwksUri: string;
  /** The server as reached on the host's loopback (`https://127.0.0.1:<port>`; a pod's: relayed). */
  public readonly baseUrl: string;
  /** Where the server itself listens: `baseUrl`, or `https://<pod address>:<port>` in a pod. */
  public readonly listenUrl: string;
  /**
   * `https://127.0.0.1:<management port>` (health), same certificate; in a pod, that is the pod's
   * own loopback, reachable from inside the pod only.
   */
  public readonly managementUrl: string;
  public readonly cliClientId: string;
  public readonly adminUsername: string;
  /** Secret. */
  public readonly adminPassword: pulumi.Output<string>;
  /** Secret: username → password. */
  public readonly userPasswords: pulumi.Output<Record<string, string>>;
  /** Secret: agent (client id) → client secret. */
  public readonly agentSecrets: pulumi.Output<Record<string, string>>;
  /** The agents of this provider in the model, with their scopes. */
  public readonly agents: Record<string, string[]>;
  /** The server certificate: the hostname's DNS name and 127.0.0.1, from the Mesh CA. */
  public readonly certificate: WorkloadCertificate;
  public readonly server: LocalProcess;
  /** In a pod: the host's relay from 127.0.0.1 to the pod's address. */
  public readonly relay?: LocalRelay;

  constructor(name: string, args: LocalKeycloakArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:local:Keycloak', name, {}, opts);
    const idp = Object.hasOwn(args.model.identityProviders, args.provider)
      ? args.model.identityProviders[args.provider]
      : undefined;
    if (!idp)
      throw new pulumi.ResourceError(
        `${name}: provider '${args.provider}' is not an identity provider of the model (have ${Object.keys(args.model.identityProviders).join(', ') || 'none'})`,
        this,
      );
    for (const [k, v] of Object.entries(args.ports))
      if (!Number.isInteger(v) || v < 1 || v > 65_535)
        throw new pulumi.ResourceError(`${name}: ports.${k} must be a TCP port, got ${v}`, this);
    let host: URL;
    try {
      host = new URL(args.hostname);
    } catch {
      throw new pulumi.ResourceError(
        `${name}: hostname must be a URL such as https://localhost:8180, got '${args.hostname}'`,
        this,
      );
    }
    if (host.protocol !== 'https:')
      throw new pulumi.ResourceError(
        `${name}: hostname must be an https URL (Keycloak serves TLS only), got '${args.hostname}'`,
        this,
      );
    const realm = /^\/realms\/([^/]+)$/.exec(new URL(idp.issuer).pathname)?.[1];
    const hostname = host.origin;
    if (realm === undefined || `${hostname}/realms/${realm}` !== idp.issuer)
      throw new pulumi.ResourceError(
        `${name}: hostname ${hostname} does not serve the issuer of provider '${args.provider}' (${idp.issuer}); ` +
          'the issuer must be <hostname>/realms/<realm>',
        this,
      );
    const pod = args.pod;
    const { owner } = serverPlacement(name, args.dir, pod, this);
    const users = args.users ?? [];
    const seen = new Set<string>();
    for (const [i, u] of users.entries()) {
      if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(u.username))
        throw new pulumi.ResourceError(
          `${name}: users[${i}].username must be lower-case letters, digits, '.', '_' or '-', got '${u.username}'`,
          this,
        );
      if (seen.has(u.username))
        throw new pulumi.ResourceError(
          `${name}: users[${i}].username '${u.username}' is listed twice`,
          this,
        );
      seen.add(u.username);
      for (const r of u.roles)
        if (!Object.hasOwn(idp.roles, r))
          throw new pulumi.ResourceError(
            `${name}: users[${i}].roles: '${r}' is not a role of provider '${args.provider}' (have ${Object.keys(idp.roles).join(', ') || 'none'})`,
            this,
          );
    }

    this.realm = realm;
    this.issuer = idp.issuer;
    this.tokenUrl = `${idp.issuer}/protocol/openid-connect/token`;
    this.jwksUri = `${idp.issuer}/protocol/openid-connect/certs`;
    this.baseUrl = `https://127.0.0.1:${args.ports.https}`;
    this.listenUrl = `https://${pod?.address ?? '127.0.0.1'}:${args.ports.https}`;
    this.managementUrl = `https://127.0.0.1:${args.ports.management}`;
    this.cliClientId = args.cliClientId ?? defaults.cliClientId;
    this.adminUsername = defaults.adminUsername;
    this.agents = Object.fromEntries(
      Object.entries(args.model.agents)
        .filter(([, a]) => a.provider === args.provider)
        .map(([agent, a]) => [agent, [...a.scopes]]),
    );

    const secret = (role: string) =>
      new GeneratedSecret(`${name}-${role}`, {}, { parent: this }).value;
    this.adminPassword = secret('admin-password');
    const passwords = users.map((u) => [u.username, secret(`password-${u.username}`)] as const);
    const clientSecrets = Object.keys(this.agents).map(
      (agent) => [agent, secret(`secret-${agent}`)] as const,
    );
    this.userPasswords = pulumi.secret(
      pulumi.all(Object.fromEntries(passwords)) as pulumi.Output<Record<string, string>>,
    );
    this.agentSecrets = pulumi.secret(
      pulumi.all(Object.fromEntries(clientSecrets)) as pulumi.Output<Record<string, string>>,
    );

    // Secret, because it carries the passwords and client secrets; written 0600 by LocalProcess.
    const realmJson = pulumi.all([this.userPasswords, this.agentSecrets]).apply(([pw, cs]) =>
      JSON.stringify(
        compileKeycloakRealm(args.model, {
          provider: args.provider,
          realm,
          userClient: { clientId: this.cliClientId, directAccessGrants: true },
          agentSecrets: cs,
          users: users.map((u) => ({
            username: u.username,
            password: pw[u.username] ?? '',
            roles: u.roles,
          })),
          accessTokenLifespan: args.accessTokenLifespan ?? defaults.accessTokenLifespan,
        }),
        null,
        2,
      ),
    );

    // The public name for clients that use the hostname, 127.0.0.1 for those that dial the loopback
    // address (the readiness probe, the sidecars' JWKS cluster, `./trellis token`), and a pod's
    // address for those that dial it there (pod sidecars' JWKS, the readiness probe).
    const hostName = host.hostname.replace(/^\[|\]$/g, '');
    this.certificate = new WorkloadCertificate(
      `${name}-cert`,
      {
        ca: args.ca,
        dns: isIP(hostName) === 0 ? [hostName] : [],
        ips: [
          ...new Set([
            '127.0.0.1',
            ...(isIP(hostName) === 0 ? [] : [hostName]),
            ...(pod !== undefined ? [pod.address] : []),
          ]),
        ],
        dir: args.certDir,
        validHours: args.certValidHours ?? defaults.certValidHours,
        rotation: args.rotation ?? 0,
        ...(owner !== undefined ? { owner } : {}),
      },
      { parent: this },
    );

    // Only paths go into the process's inputs: a renewed certificate changes none, and Keycloak
    // picks the new files up itself (https-certificates-reload-period).
    const spec = this.certificate.files.apply((f) =>
      keycloakLaunchSpec({
        dir: args.dir,
        realmName: realm,
        port: args.ports.https,
        managementPort: args.ports.management,
        tls: { certFile: f.cert, keyFile: f.key },
        hostname,
        // The pod user's own directory (LocalProcess makes <dir>/pod its one writable place).
        ...(pod !== undefined
          ? { pod: { address: pod.address, home: join(args.dir, POD_WORK_DIR, 'home') } }
          : {}),
      }),
    );
    const probe = this.certificate.files.apply((f): KeycloakProbe => ({
      managementUrl: this.managementUrl,
      realmUrl: `${this.listenUrl}/realms/${realm}`,
      caFile: f.bundle,
    }));
    // In a pod, the management interface is on the pod's own loopback: probe from inside it.
    const ready =
      pod === undefined
        ? probe.apply((arg) => ({ kind: 'module' as const, module: IMPL, fn: 'probe', arg }))
        : pulumi.all([probe, pod.launch]).apply(([arg, l]) => ({
            kind: 'module' as const,
            module: IMPL,
            fn: 'probe',
            arg,
            netns: l.netns,
          }));
    this.server = new LocalProcess(
      `${name}-server`,
      {
        dir: args.dir,
        command: spec.command,
        args: spec.args,
        env: pulumi.all([spec.env, this.adminPassword]).apply(([env, password]) => ({
          ...env,
          // Documented bootstrap-admin variables (keycloak.org/server/bootstrap-admin-recovery); used
          // only when the master realm is created, i.e. with a new database.
          KC_BOOTSTRAP_ADMIN_USERNAME: this.adminUsername,
          KC_BOOTSTRAP_ADMIN_PASSWORD: password,
        })),
        files: pulumi
          .all([spec.files, realmJson])
          .apply(([files, json]) => ({ ...files, [keycloakRealmFile(realm)]: json })),
        ready,
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: 20_000,
        // The home of a run on the host (root's files, its database with the realm's signing
        // keys) must not stay where the pod user could reach it once <dir> is searchable.
        ...(pod !== undefined ? { pod: pod.launch, removeBeforeStart: ['home'] } : {}),
      },
      { parent: this, dependsOn: [this.certificate] },
    );
    if (pod !== undefined)
      this.relay = new LocalRelay(
        `${name}-relay`,
        {
          dir: pod.relayDir,
          listen: '127.0.0.1',
          target: pod.address,
          ports: [args.ports.https],
          // Keycloak closes new connections for about 0.1 s when it reloads its certificate (ADR 0031).
          replayUnanswered: true,
        },
        { parent: this, dependsOn: [this.server] },
      );

    this.registerOutputs({
      issuer: this.issuer,
      tokenUrl: this.tokenUrl,
      managementUrl: this.managementUrl,
    });
  }
}
