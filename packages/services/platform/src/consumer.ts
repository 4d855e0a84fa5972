import type { FastifyBaseLogger } from 'fastify';
import type kafkajs from 'kafkajs';
import type { Consumer, ConsumerConfig, EachBatchPayload } from 'kafkajs';
import { cappedBackoff, disconnectAbandoned, NotYetError, type Dependency } from './dependency.ts';
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
  /**
   * A fetch to a node unanswered for this long (kafkajs times the request out and asks the same node
   * again, so the first unanswered one counts) means the consumer waits on a node that answers
   * nothing: a partition leader cut off from the network, whose connections kafkajs keeps. It is then
   * replaced by a new consumer with connections of its own. An offset commit outstanding for as long
   * counts the same way: when the cut-off node is also the group's coordinator, the batch handler
   * waits on its commit and no fetch is pending at all. @default 15_000
   */
  stallMs?: number;
}

/** How long the coordinator holds a rebalance for members to rejoin; see the consumer's settings. */
const REBALANCE_TIMEOUT_MS = 20_000;

/** The node id of kafkajs' `consumer.fetch_start` and `consumer.fetch` events (a string, in fact). */
interface FetchEvent {
  payload: { nodeId: number | string };
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
  private readonly kafka: kafkajs.Kafka;
  private readonly consumerOpts: GroupConsumerOptions;
  private consumer: Consumer;
  private readonly topic: string;
  private readonly stallMs: number;
  private running = false;
  private joined = false;
  private crashed: Error | null = null;
  private closing = false;
  private replacing = false;
  private replacedCount = 0;
  /** Per node, when the first fetch still unanswered started (ms since the epoch). */
  private readonly pendingFetches = new Map<number | string, number>();
  /** The offset commits of the current consumer still outstanding, each with when it started. */
  private readonly pendingCommits = new Map<object, number>();
  private watchdog: NodeJS.Timeout | undefined;

  constructor(kafka: kafkajs.Kafka, opts: GroupConsumerOptions, log: FastifyBaseLogger) {
    this.log = log;
    this.tracing = opts.tracing ?? Tracing.off;
    this.groupId = opts.groupId;
    this.topic = opts.topic;
    this.kafka = kafka;
    this.consumerOpts = opts;
    this.stallMs = opts.stallMs ?? 15_000;
    this.consumer = this.newConsumer();
  }

  private newConsumer(): Consumer {
    const opts = this.consumerOpts;
    const consumer = this.kafka.consumer({
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
      rebalanceTimeout: REBALANCE_TIMEOUT_MS,
      ...opts.fetch,
    });
    const ev = consumer.events;
    // Only the current consumer's events count: an abandoned one disconnects in the background.
    const on = <T>(event: string, fn: (e: T) => void): void => {
      consumer.on(event as typeof ev.GROUP_JOIN, (e) => {
        if (consumer === this.consumer) fn(e as T);
      });
    };
    on<kafkajs.ConsumerGroupJoinEvent>(ev.GROUP_JOIN, (e) => {
      this.joined = true;
      this.pendingFetches.clear(); // the fetchers start again for the new assignment
      this.log.info(
        { groupId: e.payload.groupId, assignment: e.payload.memberAssignment },
        'joined consumer group',
      );
    });
    on(ev.REBALANCING, () => {
      this.pendingFetches.clear(); // the fetchers stop; their fetches will not be answered
    });
    on<FetchEvent>(ev.FETCH_START, (e) => {
      if (!this.pendingFetches.has(e.payload.nodeId))
        this.pendingFetches.set(e.payload.nodeId, Date.now());
    });
    on<FetchEvent>(ev.FETCH, (e) => {
      this.pendingFetches.delete(e.payload.nodeId);
    });
    on<kafkajs.ConsumerCrashEvent>(ev.CRASH, (e) => {
      this.joined = false;
      if (!e.payload.restart) this.crashed = e.payload.error;
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
    });
    on(ev.DISCONNECT, () => {
      this.joined = false;
    });
    on(ev.STOP, () => {
      this.joined = false;
    });
    return consumer;
  }

  /** How many times a stalled consumer has been replaced since start. */
  replaced(): number {
    return this.replacedCount;
  }

  /**
   * Stalled: a node's fetch, or an offset commit, unanswered for `stallMs`
   * ({@link GroupConsumerOptions.stallMs}); says which.
   */
  private stalled(now: number): string | undefined {
    if (!this.running || this.replacing || this.closing) return undefined;
    for (const [nodeId, since] of this.pendingFetches)
      if (now - since > this.stallMs) return `a fetch from node ${nodeId}`;
    for (const since of this.pendingCommits.values())
      if (now - since > this.stallMs) return 'an offset commit';
    return undefined;
  }

  /**
   * Abandon the current consumer for a new one and start it, retrying with capped backoff (a new
   * consumer each attempt) until one runs or the app closes. Records handled but not committed by
   * the abandoned one are delivered again: handlers are idempotent, as for any rebalance.
   */
  private async replace(unanswered: string): Promise<void> {
    this.replacing = true;
    this.log.warn(
      { groupId: this.groupId, stallMs: this.stallMs, unanswered },
      'consumer stalled: a request unanswered; replacing it, with new connections',
    );
    try {
      for (const wait of cappedBackoff()) {
        if (this.closing) return;
        const old = this.consumer;
        this.replacedCount++;
        this.consumer = this.newConsumer();
        this.running = false;
        this.joined = false;
        this.pendingFetches.clear();
        this.pendingCommits.clear(); // the abandoned consumer's; they no longer count
        disconnectAbandoned(old, 'consumer', this.log);
        try {
          await this.connect();
          this.log.info(
            { groupId: this.groupId, replaced: this.replacedCount },
            'new consumer running',
          );
          return;
        } catch (err) {
          this.log.warn({ err: err as Error, groupId: this.groupId }, 'new consumer: start failed');
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    } finally {
      this.replacing = false;
    }
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
    this.watchdog ??= setInterval(() => {
      const unanswered = this.stalled(Date.now());
      if (unanswered !== undefined) void this.replace(unanswered);
    }, 1_000).unref();
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
    this.closing = true;
    clearInterval(this.watchdog);
    await this.consumer.disconnect();
  }

  /** Commit `partition` of `topic` through `offset`, the last record handled: the group resumes after it. */
  protected async commitThrough(topic: string, partition: number, offset: string): Promise<void> {
    const commit = {};
    const pending = this.pendingCommits;
    pending.set(commit, Date.now());
    try {
      await this.consumer.commitOffsets([
        { topic, partition, offset: (BigInt(offset) + 1n).toString() },
      ]);
    } finally {
      pending.delete(commit);
    }
  }
}
