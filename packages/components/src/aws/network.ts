import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

const defaults = { cidr: '10.40.0.0/16' } as const;

/** Arguments of {@link Network}. */
export interface NetworkArgs {
  /** Availability zones (2 or 3), e.g. ["us-east-1a", "us-east-1b"]. */
  availabilityZones: string[];
  /** VPC CIDR, a /16. @default "10.40.0.0/16" */
  cidr?: string;
  /** One NAT gateway per AZ (prod) instead of one shared (dev). @default false */
  natPerAz?: boolean;
}

/**
 * A VPC for EKS: public subnets (NAT and nothing else) and private subnets (nodes, the NLB, the API
 * Gateway VPC link), tagged for Kubernetes load balancers.
 */
export class Network extends pulumi.ComponentResource {
  public readonly vpcId: pulumi.Output<string>;
  public readonly cidr: string;
  public readonly privateSubnetIds: pulumi.Output<string>[];
  public readonly publicSubnetIds: pulumi.Output<string>[];

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:aws:Network', name, {}, opts);
    const cidr = args.cidr ?? defaults.cidr;
    const m = /^(\d+)\.(\d+)\.0\.0\/16$/.exec(cidr);
    if (!m)
      throw new pulumi.ResourceError(
        `Network ${name}: cidr must be a /16 like 10.40.0.0/16, got "${cidr}"`,
        this,
      );
    if (args.availabilityZones.length < 2 || args.availabilityZones.length > 3) {
      throw new pulumi.ResourceError(
        `Network ${name}: availabilityZones must list 2 or 3 zones`,
        this,
      );
    }
    const prefix = `${m[1]}.${m[2]}`;
    const child = { parent: this };
    const vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      { cidrBlock: cidr, enableDnsHostnames: true, enableDnsSupport: true, tags: { Name: name } },
      child,
    );
    // The internet gateway serves only the public subnets, where the NAT gateways live.
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id }, child);
    const publicRt = new aws.ec2.RouteTable(
      `${name}-public-rt`,
      { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', gatewayId: igw.id }] },
      child,
    );
    this.publicSubnetIds = [];
    this.privateSubnetIds = [];
    let nat: aws.ec2.NatGateway | undefined;
    args.availabilityZones.forEach((az, i) => {
      const pub = new aws.ec2.Subnet(
        `${name}-public-${i}`,
        {
          vpcId: vpc.id,
          availabilityZone: az,
          cidrBlock: `${prefix}.${i * 16}.0/20`,
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-public-${az}`, 'kubernetes.io/role/elb': '1' },
        },
        child,
      );
      new aws.ec2.RouteTableAssociation(
        `${name}-public-${i}`,
        { subnetId: pub.id, routeTableId: publicRt.id },
        child,
      );
      if (!nat || args.natPerAz) {
        const eip = new aws.ec2.Eip(`${name}-nat-${i}`, { domain: 'vpc' }, child);
        nat = new aws.ec2.NatGateway(
          `${name}-nat-${i}`,
          { subnetId: pub.id, allocationId: eip.id },
          child,
        );
      }
      const priv = new aws.ec2.Subnet(
        `${name}-private-${i}`,
        {
          vpcId: vpc.id,
          availabilityZone: az,
          cidrBlock: `${prefix}.${128 + i * 32}.0/19`,
          tags: { Name: `${name}-private-${az}`, 'kubernetes.io/role/internal-elb': '1' },
        },
        child,
      );
      const rt = new aws.ec2.RouteTable(
        `${name}-private-rt-${i}`,
        { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', natGatewayId: nat.id }] },
        child,
      );
      new aws.ec2.RouteTableAssociation(
        `${name}-private-${i}`,
        { subnetId: priv.id, routeTableId: rt.id },
        child,
      );
      this.publicSubnetIds.push(pub.id);
      this.privateSubnetIds.push(priv.id);
    });
    this.vpcId = vpc.id;
    this.cidr = cidr;
    this.registerOutputs({ vpcId: this.vpcId });
  }
}
