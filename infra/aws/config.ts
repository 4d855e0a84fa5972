/**
 * Stack configuration of infra/aws, read once and validated at runtime; errors name the key
 * (`trellis:network.availabilityZones: ...`). `aws:region` is read by the AWS provider itself.
 */
import * as pulumi from '@pulumi/pulumi';
import { resolveImages } from '@trellis/infra-k8s/images';
import type { ResolvedService } from '@trellis/infra-k8s/images';
import { keycloakDbPassword, parseStackConfig, platformSchema } from '@trellis/infra-k8s/schema';
import { z } from 'zod';

const awsSchema = platformSchema.extend({
  network: z.strictObject({
    availabilityZones: z
      .array(z.string().regex(/^[a-z]{2}-[a-z]+-\d[a-z]$/, 'must be an AZ name like us-east-1a'))
      .min(2)
      .max(3),
    cidr: z
      .string()
      .regex(/^\d+\.\d+\.0\.0\/16$/, 'must be a /16')
      .optional(),
    natPerAz: z.boolean().optional(),
  }),
  eks: z
    .strictObject({
      version: z
        .string()
        .regex(/^1\.\d+$/, 'must be a Kubernetes minor like 1.33')
        .optional(),
      instanceTypes: z.array(z.string()).min(1).optional(),
      desiredSize: z.int().optional(),
      minSize: z.int().min(3).optional(),
      maxSize: z.int().optional(),
      publicAccessCidrs: z.array(z.cidrv4()).optional(),
    })
    .default({}),
  edge: z.strictObject({
    gatewayNodePort: z.int().min(30000).max(32767),
    /**
     * The gateway's certificate comes from an ACME CA by DNS-01 in this public Route 53 zone, so that API
     * Gateway (which trusts only public CAs for HTTPS integrations) can verify it.
     */
    acme: z.strictObject({
      email: z.email(),
      hostedZoneId: z
        .string()
        .regex(/^Z[A-Z0-9]{1,31}$/, 'must be a Route 53 hosted zone ID (Z...)'),
      dnsZone: z
        .string()
        .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'must be a DNS name without scheme'),
      server: z
        .url()
        .refine((u) => u.startsWith('https://'), 'must be an https URL')
        .optional(),
    }),
  }),
});

/** Validated configuration of an infra/aws stack. */
export type AwsConfig = Omit<z.output<typeof awsSchema>, 'services'> & {
  /** Each service's image resolved to `<repository>@sha256:<digest>` (infra/k8s/images.ts). */
  services: Record<string, ResolvedService>;
  keycloakDbPassword?: pulumi.Output<string>;
  /** `aws:region`. */
  awsRegion: string;
  /** The one host API Gateway sends requests to (the value of every `trellis:hosts` entry). */
  gatewayHost: string;
};

/** Read and validate this stack's `trellis:*` configuration. */
export function loadConfig(): AwsConfig {
  const cfg = new pulumi.Config('trellis');
  const parsed = parseStackConfig(awsSchema, (key) => cfg.get(key));
  const awsRegion = new pulumi.Config('aws').get('region');
  if (awsRegion === undefined) {
    throw new Error('invalid stack config:\naws:region: required (the region of the VPC and EKS)');
  }
  const hosts = [...new Set(Object.values(parsed.hosts))];
  if (hosts.length !== 1) {
    throw new Error(
      `invalid stack config:\ntrellis:hosts: API Gateway reaches one gateway host, got ${hosts.length} (${hosts.join(', ')})`,
    );
  }
  const gatewayHost = hosts[0] as string;
  const zone = parsed.edge.acme.dnsZone;
  if (gatewayHost !== zone && !gatewayHost.endsWith(`.${zone}`)) {
    throw new Error(
      `invalid stack config:\ntrellis:hosts: ${gatewayHost} is not in trellis:edge.acme.dnsZone ${zone}, so no certificate can be issued for it`,
    );
  }
  return {
    ...parsed,
    services: resolveImages(parsed.services, parsed.images, { projectDir: import.meta.dirname }),
    awsRegion,
    gatewayHost,
    ...keycloakDbPassword(parsed.idp, () => cfg.getSecret('keycloakDbPassword')),
  };
}
