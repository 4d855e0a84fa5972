import { LocalMeshCa } from '@trellis/components/local/pki';
import {
  bindOrThrow,
  localPaths,
  localPortsAt,
  type BoundModel,
  type LocalEnvironment,
  type LocalPortName,
  type ValidModel,
} from '@trellis/policy';

/** What every module of the local stack gets: the model, where to write, the ports, the Mesh CA. */
export interface StackContext {
  stack: string;
  region: string;
  /**
   * The model bound to this stack's environment (its Keycloak's issuer, its ports, its SVID
   * files): the one model the data layer, Keycloak and the mesh all use.
   */
  model: BoundModel;
  /** `<repo>/.trellis/<stack>` */
  stackDir: string;
  /** `<stackDir>/run/<component>`: a LocalProcess's directory. */
  runDir(component: string): string;
  /** `<stackDir>/pki/<identity>`: an identity's certificate files. */
  pkiDir(identity: string): string;
  /** The stack's fixed ports (`basePort` + offset). */
  ports: Record<LocalPortName, number>;
  ca: LocalMeshCa;
  certValidHours: number;
  rotation: number;
}

/** What {@link localContext} needs: the model as written, the stack's base port and directory. */
export interface ContextInput {
  stack: string;
  region: string;
  model: ValidModel;
  stackDir: string;
  basePort: number;
  certValidHours: number;
  rotation: number;
}

/**
 * The local environment of a stack at `basePort` under `stackDir`: its Keycloak serves on
 * `keycloakHttp` over TLS (`local`: https://localhost:8180).
 */
export function localEnvironment(basePort: number, stackDir: string): LocalEnvironment {
  const ports = localPortsAt(basePort);
  return {
    kind: 'local',
    basePort,
    stackDir,
    // Keycloak serves TLS only, with a Mesh CA certificate (the one place the scheme is chosen).
    keycloak: { baseUrl: `https://localhost:${ports.keycloakHttp}` },
  };
}

/**
 * The model bound to the stack's environment, the stack's Mesh CA (resource `mesh-ca`, files under
 * `<stackDir>/pki`) and the context built around them; the local stack and the component tests'
 * fixture programs share it. Throws with every binding error and its path.
 */
export function localContext(o: ContextInput): StackContext {
  const model = bindOrThrow(
    o.model,
    localEnvironment(o.basePort, o.stackDir),
    `the model does not fit stack ${o.stack}`,
  );
  const paths = localPaths(o.stackDir);
  const ca = new LocalMeshCa('mesh-ca', {
    trustDomain: model.trustDomain,
    region: o.region,
    dir: paths.pki,
  });
  return {
    stack: o.stack,
    region: o.region,
    model,
    stackDir: o.stackDir,
    runDir: paths.runDir,
    pkiDir: paths.pkiDir,
    ports: localPortsAt(o.basePort),
    ca,
    certValidHours: o.certValidHours,
    rotation: o.rotation,
  };
}
