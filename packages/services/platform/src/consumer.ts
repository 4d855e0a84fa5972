import type { FastifyBaseLogger } from 'fastify';
import type kafkajs from 'kafkajs';
import type { Consumer, ConsumerConfig, EachBatchPayload } from 'kafkajs';
import { NotYetError, type Dependency } from './dependency.ts';
import { Tracing } from './tracing.ts';

/** Options of {@link GroupConsumer}. */
export interface GroupConsumerOptions {
  topic: string;
  /** Consumer group; its ACL comes from the policy model. */
  groupId: string;
  /** How the broker holds a fetch (kafkajs `minBytes`, `maxWaitTimeInMs`). */
  fetch: Pick<ConsumerConfig, 'minBytes' | 'maxWaitTimeInMs'>;
  /** For the subclass's per-record spans. @default Tracing.off */
  tracing?: Tracing;
}

/**
 * A kafkajs consumer in a group, as a {@link Dependency}: subscribes to one topic from the beginning
 * and hands each fetched batch to {@link handleBatch}, with autoCommit off, so a subclass commits
 * exactly the records it handled ({@link commitThrough}) and a crash before the commit redelivers
 * them. Ready while in the group and not crashed for good; alive until kafkajs gives up restarting.
 */
export abstract class GroupConsumer implements Dependency {
  abstract readonly name: string;
  protected readonly log: FastifyBaseLogger;
  /** The service's tracer: a subclass continues each record's `traceparent` header with it. */
  protected readonly tracing: Tracing;
  /** The consumer group (a span attribute). */
  protected readonly groupId: string;
  private readonly consumer: Consumer;
  private readonly topic: string;
  private running = false;
  private joined = false;
  private crashed: Error | null = null;

  constructor(kafka: kafkajs.Kafka, opts: GroupConsumerOptions, log: FastifyBaseLogger) {
    this.log = log;
    this.tracing = opts.tracing ?? Tracing.off;
    this.groupId = opts.groupId;
    this.topic = opts.topic;
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      allowAutoTopicCreation: false,
      // A crashed member holds its partitions until its session times out: 10 s bounds how long a
      // killed writer's or ledger's records wait for the replacement (the broker's floor is 6 s,
      // group.min.session.timeout.ms). Heartbeats stay under a third of it, as Kafka advises.
      sessionTimeout: 10_000,
      heartbeatInterval: 3_000,
      // How long the coordinator holds a rebalance for members to rejoin (kafkajs' default is 60 s).
      // A member killed while it was itself rejoining counts as rejoining, so its session timeout does
      // not evict it; the rebalance then waits this long for it. Every member of ours rejoins between
      // batches of seconds at most, so 20 s bounds that wait without evicting a live member (a slow
      // batch that is evicted rejoins, and its records are handled again, idempotently). Measured
      // motive: a re-created ledger waited over 60 s to join its group in some full e2e runs
      // (docs/local.md, "Known defect").
      rebalanceTimeout: 20_000,
      ...opts.fetch,
    });
    const ev = this.consumer.events;
    this.consumer.on(ev.GROUP_JOIN, (e) => {
      this.joined = true;
      this.log.info(
        { groupId: e.payload.groupId, assignment: e.payload.memberAssignment },
        'joined consumer group',
      );
    });
    this.consumer.on(ev.CRASH, (e) => {
      this.joined = false;
      if (!e.payload.restart) this.crashed = e.payload.error;
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
    });
    this.consumer.on(ev.DISCONNECT, () => {
      this.joined = false;
    });
    this.consumer.on(ev.STOP, () => {
      this.joined = false;
    });
  }

  /**
   * What consuming still waits for (another dependency), or undefined once it may start; while
   * defined, {@link connect} throws a {@link NotYetError} with it.
   */
  protected abstract waitingFor(): string | undefined;

  /** Handle one fetched batch; commit what was handled with {@link commitThrough}. */
  protected abstract handleBatch(payload: EachBatchPayload): Promise<void>;

  async connect(): Promise<void> {
    if (this.running) return;
    const waiting = this.waitingFor();
    if (waiting !== undefined) throw new NotYetError(waiting);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    this.running = true;
  }

  /** In the group (with partitions assigned, or waiting for some), and not crashed for good. */
  ready(): boolean {
    return this.joined && this.crashed === null;
  }

  /** False once the consumer crashed with an error kafkajs will not restart from. */
  alive(): boolean {
    return this.crashed === null;
  }

  /** Leave the group; kafkajs lets the batch being handled finish first. */
  async close(): Promise<void> {
    await this.consumer.disconnect();
  }

  /** Commit `partition` of `topic` through `offset`, the last record handled: the group resumes after it. */
  protected async commitThrough(topic: string, partition: number, offset: string): Promise<void> {
    await this.consumer.commitOffsets([
      { topic, partition, offset: (BigInt(offset) + 1n).toString() },
    ]);
  }
}
