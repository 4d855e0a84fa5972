import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

const defaults = {
  logRetentionDays: 90,
  defaultRate: 100,
  defaultBurst: 50,
  /** The NLB listens for TLS and passes it through to the gateway's HTTPS listener. */
  tlsPort: 443,
} as const;

/** One edge route: the model's route, as API Gateway sees it. */
export interface EdgeRoute {
  /** Model route name. */
  name: string;
  method: string;
  /** Path template, e.g. /orders/{id} (API Gateway uses the same {param} syntax). */
  path: string;
  /** Scopes the token must carry (API Gateway `authorizationScopes`). */
  scopes: string[];
  /** Per-route throttling from the model's rateLimit. */
  rateLimit?: { requestsPerSecond: number; burst: number };
}

/** Arguments of {@link ApiEdge}. */
export interface ApiEdgeArgs {
  vpcId: pulumi.Input<string>;
  vpcCidr: string;
  privateSubnetIds: pulumi.Input<string>[];
  /** Node group ASG and cluster security group: the NLB targets the gateway's NodePort on the nodes. */
  nodeAsgName: pulumi.Input<string>;
  nodeSecurityGroupId: pulumi.Input<string>;
  /** NodePort of the NGINX gateway Service (its HTTPS listener). */
  gatewayNodePort: pulumi.Input<number>;
  /**
   * The gateway's host name: API Gateway verifies the gateway's certificate against it (TLS to the
   * gateway, `tlsConfig.serverNameToVerify`; the certificate must chain to a CA API Gateway trusts) and
   * sends it as the Host header, which the compiled HTTPRoutes match.
   */
  gatewayHost: pulumi.Input<string>;
  /** JWT issuer: must be the platform's (Keycloak or external) issuer. */
  issuer: pulumi.Input<string>;
  /** Accepted audiences (from the model's identity provider). */
  audiences: string[];
  routes: EdgeRoute[];
}

/**
 * The AWS edge: API Gateway HTTP API with a JWT authorizer (issuer and audience checked before any
 * request enters the VPC), per-route throttling, JSON access logs in CloudWatch, and a VPC link to an
 * internal NLB that passes TLS through to the NGINX gateway's HTTPS NodePort: the hop inside the VPC is
 * HTTPS, verified by API Gateway against the gateway's host name. Only the model's routes exist;
 * anything else is a 404 at the edge.
 */
export class ApiEdge extends pulumi.ComponentResource {
  public readonly endpoint: pulumi.Output<string>;
  public readonly authorizerIssuer: pulumi.Output<string>;
  public readonly accessLogGroup: pulumi.Output<string>;

  constructor(name: string, args: ApiEdgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:aws:ApiEdge', name, {}, opts);
    if (args.audiences.length === 0) {
      throw new pulumi.ResourceError(`ApiEdge ${name}: audiences must not be empty`, this);
    }
    if (args.routes.length === 0)
      throw new pulumi.ResourceError(`ApiEdge ${name}: routes must not be empty`, this);
    args.routes.forEach((r, i) => {
      if (!/^\/[A-Za-z0-9/{}._-]*$/.test(r.path)) {
        throw new pulumi.ResourceError(
          `ApiEdge ${name}: routes[${i}].path "${r.path}" is not a path template`,
          this,
        );
      }
    });
    const child = { parent: this };
    const nlb = new aws.lb.LoadBalancer(
      `${name}-nlb`,
      {
        loadBalancerType: 'network',
        internal: true,
        subnets: args.privateSubnetIds,
        enableCrossZoneLoadBalancing: true,
      },
      child,
    );
    const tg = new aws.lb.TargetGroup(
      `${name}-tg`,
      {
        vpcId: args.vpcId,
        port: args.gatewayNodePort,
        protocol: 'TCP',
        targetType: 'instance',
        healthCheck: { protocol: 'TCP', port: 'traffic-port' },
      },
      child,
    );
    // TCP, not TLS: the NLB does not terminate, so NGINX's certificate is what API Gateway verifies.
    const listener = new aws.lb.Listener(
      `${name}-listener`,
      {
        loadBalancerArn: nlb.arn,
        port: defaults.tlsPort,
        protocol: 'TCP',
        defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }],
      },
      child,
    );
    new aws.autoscaling.Attachment(
      `${name}-targets`,
      { autoscalingGroupName: args.nodeAsgName, lbTargetGroupArn: tg.arn },
      child,
    );
    // NLB health checks and VPC-link traffic come from inside the VPC only.
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-nodeport`,
      {
        securityGroupId: args.nodeSecurityGroupId,
        cidrIpv4: args.vpcCidr,
        ipProtocol: 'tcp',
        fromPort: args.gatewayNodePort,
        toPort: args.gatewayNodePort,
        description: 'API Gateway VPC link and NLB to the NGINX gateway NodePort',
      },
      child,
    );
    const linkSg = new aws.ec2.SecurityGroup(
      `${name}-vpclink-sg`,
      {
        vpcId: args.vpcId,
        description: 'API Gateway VPC link: egress to the NLB only',
        egress: [
          {
            protocol: 'tcp',
            fromPort: defaults.tlsPort,
            toPort: defaults.tlsPort,
            cidrBlocks: [args.vpcCidr],
          },
        ],
      },
      child,
    );
    const link = new aws.apigatewayv2.VpcLink(
      `${name}-vpclink`,
      { subnetIds: args.privateSubnetIds, securityGroupIds: [linkSg.id] },
      child,
    );
    const api = new aws.apigatewayv2.Api(`${name}-api`, { protocolType: 'HTTP' }, child);
    const authorizer = new aws.apigatewayv2.Authorizer(
      `${name}-jwt`,
      {
        apiId: api.id,
        authorizerType: 'JWT',
        identitySources: ['$request.header.Authorization'],
        jwtConfiguration: { issuer: args.issuer, audiences: args.audiences },
      },
      child,
    );
    const integration = new aws.apigatewayv2.Integration(
      `${name}-gateway`,
      {
        apiId: api.id,
        integrationType: 'HTTP_PROXY',
        integrationMethod: 'ANY',
        connectionType: 'VPC_LINK',
        connectionId: link.id,
        integrationUri: listener.arn,
        payloadFormatVersion: '1.0',
        // HTTPS to the gateway (docs.aws.amazon.com/apigateway/latest/developerguide/
        // http-api-develop-integrations-private.html: "specify a tlsConfig ... to use HTTPS").
        tlsConfig: { serverNameToVerify: args.gatewayHost },
        // Host is not a reserved header for HTTP API parameter mapping (http-api-parameter-mapping.html,
        // "Reserved headers"); the HTTPRoutes match this host.
        requestParameters: { 'overwrite:header.host': args.gatewayHost },
      },
      child,
    );
    const routes = args.routes.map(
      (r) =>
        new aws.apigatewayv2.Route(
          `${name}-route-${r.name}`,
          {
            apiId: api.id,
            routeKey: `${r.method} ${r.path}`,
            target: pulumi.interpolate`integrations/${integration.id}`,
            authorizationType: 'JWT',
            authorizerId: authorizer.id,
            authorizationScopes: r.scopes,
          },
          child,
        ),
    );
    const logs = new aws.cloudwatch.LogGroup(
      `${name}-access-logs`,
      { retentionInDays: defaults.logRetentionDays },
      child,
    );
    new aws.apigatewayv2.Stage(
      `${name}-stage`,
      {
        apiId: api.id,
        name: '$default',
        autoDeploy: true,
        accessLogSettings: {
          destinationArn: logs.arn,
          format: JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            principal: '$context.authorizer.claims.sub',
            latency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            error: '$context.error.message',
          }),
        },
        defaultRouteSettings: {
          throttlingRateLimit: defaults.defaultRate,
          throttlingBurstLimit: defaults.defaultBurst,
        },
        routeSettings: args.routes
          .filter((r) => r.rateLimit)
          .map((r) => ({
            routeKey: `${r.method} ${r.path}`,
            throttlingRateLimit: r.rateLimit?.requestsPerSecond,
            throttlingBurstLimit: r.rateLimit?.burst,
          })),
      },
      { parent: this, dependsOn: routes },
    );
    this.endpoint = api.apiEndpoint;
    this.authorizerIssuer = pulumi.output(args.issuer);
    this.accessLogGroup = logs.name;
    this.registerOutputs({ endpoint: this.endpoint, authorizerIssuer: this.authorizerIssuer });
  }
}
