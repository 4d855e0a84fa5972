import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

const defaults = {
  visibilityTimeoutSeconds: 60,
  maxReceiveCount: 5,
  retentionSeconds: 1_209_600,
} as const;

/** Arguments of {@link WriteQueue}. */
export interface WriteQueueArgs {
  /** @default 60 */
  visibilityTimeoutSeconds?: number;
  /** Deliveries before a message goes to the dead-letter queue. @default 5 */
  maxReceiveCount?: number;
}

/**
 * The SQS queue that batches writes (orders-api produces, orders-writer consumes), encrypted at
 * rest, with a dead-letter queue and a queue policy that refuses non-TLS access. Both are FIFO queues with explicit
 * deduplication: the order queue adapter (`@trellis/service-platform/queue`, ADR 0021) sends each
 * order with `MessageDeduplicationId` = its idempotent id, so a retried publish is not stored twice;
 * a FIFO queue's dead-letter queue must be FIFO too. Pulumi's autonaming adds the `.fifo` suffix a
 * FIFO queue's name needs (pulumi/pulumi-aws#1398).
 */
export class WriteQueue extends pulumi.ComponentResource {
  public readonly url: pulumi.Output<string>;
  public readonly arn: pulumi.Output<string>;

  constructor(name: string, args: WriteQueueArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:aws:WriteQueue', name, {}, opts);
    const visibility = args.visibilityTimeoutSeconds ?? defaults.visibilityTimeoutSeconds;
    if (!Number.isInteger(visibility) || visibility < 1 || visibility > 43_200) {
      throw new pulumi.ResourceError(
        `WriteQueue ${name}: visibilityTimeoutSeconds must be 1-43200`,
        this,
      );
    }
    const child = { parent: this };
    const dlq = new aws.sqs.Queue(
      `${name}-dlq`,
      {
        fifoQueue: true,
        contentBasedDeduplication: false,
        sqsManagedSseEnabled: true,
        messageRetentionSeconds: defaults.retentionSeconds,
      },
      child,
    );
    const queue = new aws.sqs.Queue(
      `${name}-queue`,
      {
        fifoQueue: true,
        contentBasedDeduplication: false,
        sqsManagedSseEnabled: true,
        visibilityTimeoutSeconds: visibility,
        receiveWaitTimeSeconds: 20,
        redrivePolicy: pulumi.jsonStringify({
          deadLetterTargetArn: dlq.arn,
          maxReceiveCount: args.maxReceiveCount ?? defaults.maxReceiveCount,
        }),
      },
      child,
    );
    for (const [role, q] of [
      ['queue', queue],
      ['dlq', dlq],
    ] as const) {
      new aws.sqs.QueuePolicy(
        `${name}-${role}-tls-only`,
        {
          queueUrl: q.url,
          policy: pulumi.jsonStringify({
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'DenyInsecureTransport',
                Effect: 'Deny',
                Principal: '*',
                Action: 'sqs:*',
                Resource: q.arn,
                Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              },
            ],
          }),
        },
        child,
      );
    }
    this.url = queue.url;
    this.arn = queue.arn;
    this.registerOutputs({ url: this.url, arn: this.arn });
  }
}
