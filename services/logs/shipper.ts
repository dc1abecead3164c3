/**
 * CloudWatch Logs shipper: the runner's output and the agent's own log lines go
 * to the instance's log stream, batched, in order, without ever blocking the
 * writer, and what could not be delivered is counted, never silently lost.
 *
 * Streams. The runner's lines go to `{instance-id}/{run-id | job-id | "runner"}`
 * (see `streamName`); the agent's own lines (JSON, already redacted by the logger)
 * go to the sibling stream `{that}/agent`, so that the job's log reads exactly as
 * the job printed it while one prefix (`{instance-id}/`) still shows the whole
 * instance's story. After the job, the runner's `_diag/*.log` files go to a third
 * sibling, `{that}/diag` (diag-logs.ts reads them; the stream is created only then,
 * and its batches go only when the other two have nothing to send). Each stream is
 * one lane: its own order, its own batches.
 *
 * Lines are expected redacted: runner lines come through `LineRedactor` (or the
 * runner process's splitter + vault), agent lines through the logger, both with
 * the one `SecretVault`: each line is redacted once, where it is split, never again here.
 *
 * Delivery. A background pump sends a batch as soon as one is full and everything
 * every `flushIntervalMs`; one PutLogEvents per stream at a time, so order holds
 * across batches. Throttling, 5xx and network errors are retried with capped, jittered
 * backoff, at most MAX_CALL_ATTEMPTS times a call (then the batch is dropped and counted,
 * or, for a stream that cannot be created, shipping is disabled); `retries` counts them and
 * the actor logs it with every flush; `flush(timeoutMs)` bounds the end.
 * Memory stays bounded: above `memoryLimitBytes` new events spill to a file under
 * `spillDir` and are read back from there in order.
 *
 * Cost. Everything here runs on the agent's main thread, which also reads the runner's
 * output: each event is encoded to JSON once, when it is queued (log-lane.ts), and a
 * PutLogEvents body is those bytes as they are (`putLogEvents`), neither decoded nor
 * serialized again by the SDK (for 100 MB of output, the agent's CPU time went from 4.2 s
 * to 2.9 s with that; bench/logs.ts).
 */
import {
  CreateLogStreamCommand,
  type CloudWatchLogsClient,
  type PutLogEventsCommandOutput,
  type RejectedLogEventsInfo,
} from '@aws-sdk/client-cloudwatch-logs';
import { describeError, isRetriableAwsError } from '../errors.js';
import { backoffMs, raceAbort, sleep } from '../retry.js';
import type { LogSink } from './logger.js';
import { LeanPutLogEvents } from './lean-put.js';
import { LogLane, type LogBatch, type MemoryBudget } from './lane.js';
import { DIAG_STREAM_SUFFIX, type DiagSink } from './diag.js';

export const DEFAULT_FLUSH_INTERVAL_MS = 5_000;
/**
 * Retries are bounded: a batch that failed this many times (throttling, 5xx, no answer) is
 * dropped and counted, and a stream that could not be created after this many tries disables
 * shipping; each kind of failure is logged once, with the number of retries in the end counts.
 */
export const MAX_CALL_ATTEMPTS = 8;
export const DEFAULT_MEMORY_LIMIT_BYTES = 4 * 1024 * 1024;
export const AGENT_STREAM_SUFFIX = '/agent';

export interface LogShipperOptions {
  /** Where events above the memory bound are spilled (created on first use), e.g. `{stateDir}/logs`. */
  spillDir: string;
  /** In-memory bound for queued events, in bytes (default 4 MiB, shared by both streams). */
  memoryLimitBytes?: number;
  /** Send whatever is queued this often (default 5 s); full batches go at once. */
  flushIntervalMs?: number;
  /** One PutLogEvents/CreateLogStream call may take this long before it is retried (default 30 s). */
  requestTimeoutMs?: number;
  /** Backoff between retries: base, doubled per attempt, capped, with jitter (defaults 250 ms, 5 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Where the shipper's own warnings go (each kind once), e.g. `(m) => logger.warn(m)`. */
  warn?: (message: string) => void;
  /**
   * A full garbage collection (bin/heap.ts), run after each RECLAIM_AFTER_BYTES of blocks read
   * back from the spill file. Each is a new buffer that dies, with its batch, in the old
   * generation: in a log flood through the spill file those dead buffers, waiting for a full
   * collection, were ~40 MB of the agent's peak RSS.
   */
  reclaim?: () => void;
}

export const RECLAIM_AFTER_BYTES = 16 * 1024 * 1024;

/** Counts bytes; once `every` have gone by, `reclaim` runs when the current turn is over (the batch just made is on its way). */
function reclaimEvery(every: number, reclaim: () => void): (bytes: number) => void {
  let since = 0;
  let scheduled = false;
  return (bytes) => {
    since += bytes;
    if (since < every || scheduled) return;
    since = 0;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      reclaim();
    });
  };
}

export interface ShipTarget {
  client: CloudWatchLogsClient;
  logGroup: string;
  /** The runner's stream; agent lines go to `{stream}/agent`. */
  stream: string;
}

export interface ShipperCounts {
  /** Lines delivered to CloudWatch. */
  shipped: number;
  /** Lines that were not and will not be delivered (endpoint dead at the deadline, log group missing, spill failure). */
  dropped: number;
}

/** The stream for an instance: `{instance-id}/{run-id | job-id | "runner"}`. */
export function streamName(instanceId: string, runId?: string, jobId?: string): string {
  const suffix = runId || jobId || 'runner';
  // ':' and '*' are not allowed in stream names; 512 characters at most.
  return `${instanceId}/${suffix}`.replace(/[:*]/g, '_').slice(0, 512 - AGENT_STREAM_SUFFIX.length);
}

type ShipperState =
  | 'waiting' // no target yet: lines are buffered
  | 'starting' // creating the streams
  | 'ready'
  | 'failed' // log group missing or refused: lines are counted as dropped
  | 'off'; // shipping not configured: lines are ignored

export class LogShipper implements LogSink, DiagSink {
  private readonly runner: LogLane;
  private readonly agent: LogLane;
  /** The runner's `_diag` files, queued once after the job (`diagLine`); shipped after the other two. */
  private readonly diag: LogLane;
  private readonly lanes: LogLane[];
  private readonly streams = new Map<LogLane, string>();
  /** Lanes whose stream exists (the diag stream is created only when it has something to ship). */
  private readonly created = new Set<LogLane>();
  private readonly flushIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();
  /** PutLogEvents with the lanes' JSON as its body (lean-put.ts). */
  private readonly lean = new LeanPutLogEvents(() =>
    this.warnOnce('lean', 'PutLogEvents is not serialized as AWS JSON by this SDK: using its own serializer (slower)'),
  );

  private state: ShipperState = 'waiting';
  private target: ShipTarget | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private drainRequested = false;
  private nextLane = 0;
  private droppedOutside = 0;
  /** CloudWatch calls tried again so far (each bounded by MAX_CALL_ATTEMPTS). */
  retries = 0;
  private closed = false;
  /** Bumped (and the previous controller aborted) when a flush deadline gives up, or on close. */
  private epoch = 0;
  private epochCtl = new AbortController();
  private idleWaiters: Array<() => void> = [];
  private readyWaiters: Array<() => void> = [];

  constructor(options: LogShipperOptions) {
    const budget: MemoryBudget = { used: 0, limit: options.memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT_BYTES };
    const onSpillError = (error: unknown) =>
      this.warnOnce('spill', `log spill file under ${options.spillDir} failed (${describeError(error)}): lines above the memory bound are dropped and counted`);
    const onReadBack = options.reclaim ? reclaimEvery(RECLAIM_AFTER_BYTES, options.reclaim) : undefined;
    const lane = (name: string) => new LogLane(name, { spillDir: options.spillDir, budget, onSpillError, onReadBack });
    this.runner = lane('runner');
    this.agent = lane('agent');
    this.diag = lane('diag');
    this.lanes = [this.runner, this.agent, this.diag];
    this.flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.retryBaseMs = options.retryBaseMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 5_000;
    this.warn = options.warn ?? (() => {});
  }

  /** Lines delivered so far. */
  get shipped(): number {
    return this.runner.shipped + this.agent.shipped + this.diag.shipped;
  }

  /** Lines given up on so far. */
  get dropped(): number {
    return this.runner.dropped + this.agent.dropped + this.diag.dropped + this.droppedOutside;
  }

  /** Lines waiting to be shipped (memory and spill file). */
  get pending(): number {
    return this.runner.pendingLines + this.agent.pendingLines + this.diag.pendingLines;
  }

  /**
   * A line of the runner's output, read at `timestampMs`. `continued` = this piece
   * continues the previous line (a line too long to hold at once; not counted again).
   * Never blocks, never throws.
   */
  runnerLine(line: string, timestampMs: number, continued = false): void {
    this.accept(this.runner, line, timestampMs, !continued);
  }

  /** A line of the agent's own log (already redacted). Never blocks, never throws. */
  agentLine(line: string, timestampMs: number): void {
    this.accept(this.agent, line, timestampMs, true);
  }

  /**
   * A line of the runner's diagnostics (`_diag/*.log`, see diag-logs.ts), for `{stream}/diag`.
   * `counted` = false for a line that is not the runner's (a file's header). Never throws.
   */
  diagLine(line: string, timestampMs: number, counted = true): void {
    this.accept(this.diag, line, timestampMs, counted);
  }

  /** Lines given up on before they reached the shipper (e.g. diagnostics cut by their cap): reported as dropped. */
  countDropped(lines: number): void {
    if (this.state === 'off' || this.closed || !(lines > 0)) return;
    this.droppedOutside += Math.floor(lines);
  }

  /** True while lines given to the shipper can still be delivered (started, not failed, disabled or closed). */
  get delivering(): boolean {
    return !this.closed && (this.state === 'starting' || this.state === 'ready');
  }

  /**
   * Start shipping: create both streams (already existing is fine), then send in the
   * background. A missing log group disables shipping with one warning. Resolves once
   * the streams exist or shipping is disabled (or a flush gave up first); never rejects.
   */
  start(target: ShipTarget): Promise<void> {
    if (this.state !== 'waiting') return Promise.resolve();
    this.target = target;
    this.streams.set(this.runner, target.stream);
    this.streams.set(this.agent, `${target.stream}${AGENT_STREAM_SUFFIX}`);
    this.streams.set(this.diag, `${target.stream}${DIAG_STREAM_SUFFIX}`);
    this.state = 'starting';
    this.timer = setInterval(() => this.kick(true), this.flushIntervalMs);
    this.timer.unref();
    const ready = new Promise<void>((resolve) => this.readyWaiters.push(resolve));
    this.kick();
    return ready;
  }

  /** End the periodic timer. Nothing queued is dropped: `flush()` still ships it. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Shipping will not happen. Without a reason, it is not configured: what was
   * buffered is forgotten and further lines are ignored (nothing counted). With a
   * reason (it should have happened but cannot), the reason is warned once and
   * lines are counted as dropped.
   */
  disable(reason?: string): void {
    if (this.state === 'off' || this.state === 'failed') return;
    if (reason !== undefined) return this.fail(reason);
    this.state = 'off';
    this.stop();
    this.newEpoch();
    for (const lane of this.lanes) lane.discard();
    this.settleWaiters();
  }

  /**
   * Ship everything queued, within `timeoutMs` (or until `signal` aborts). What is
   * still undelivered then is counted as dropped. Resolves with the totals; never rejects.
   */
  async flush(timeoutMs: number, signal?: AbortSignal): Promise<ShipperCounts> {
    if (this.state === 'waiting') {
      // Never started: there is nowhere to ship what was buffered.
      for (const lane of this.lanes) lane.dropAll();
    } else if (this.state === 'starting' || this.state === 'ready') {
      this.kick(true);
      const idle = await this.waitIdle(timeoutMs, signal);
      if (!idle) this.giveUp();
    }
    return this.counts();
  }

  /** Stop everything at once (after the last flush) and remove the spill files; later lines are ignored, nothing more is counted. */
  close(): void {
    this.stop();
    this.closed = true;
    this.newEpoch();
    for (const lane of this.lanes) lane.close();
    this.settleWaiters();
  }

  counts(): ShipperCounts {
    return { shipped: this.shipped, dropped: this.dropped };
  }

  private accept(lane: LogLane, line: string, timestampMs: number, startsLine: boolean): void {
    try {
      if (this.state === 'off' || this.closed) return;
      if (this.state === 'failed') {
        if (startsLine) this.droppedOutside++;
        return;
      }
      lane.push(line, timestampMs, startsLine);
      if (this.pumping === undefined && lane.hasFullBatch) this.kick();
    } catch (error) {
      this.droppedOutside++;
      this.warnOnce('accept', `log line not queued: ${describeError(error)}`);
    }
  }

  private sendable(lane: LogLane): boolean {
    return lane.current !== undefined || lane.hasFullBatch || (this.drainRequested && !lane.isEmpty);
  }

  private kick(drainAll = false): void {
    if (drainAll) this.drainRequested = true;
    if (this.pumping !== undefined || this.target === undefined || this.closed) return;
    if (this.state !== 'starting' && !(this.state === 'ready' && this.lanes.some((l) => this.sendable(l)))) {
      if (this.state === 'ready' && this.lanes.every((l) => l.isEmpty)) this.becameIdle();
      return;
    }
    const epoch = this.epoch;
    this.pumping = this.pump(epoch)
      .catch((error) => this.warnOnce('pump', `log shipping stalled: ${describeError(error)}`))
      .finally(() => {
        this.pumping = undefined;
        // A flush deadline ended that loop, or work (or a flush) arrived as it ended: carry on.
        this.kick();
      });
  }

  private async pump(epoch: number): Promise<void> {
    while (this.epoch === epoch) {
      if (this.state === 'starting') {
        await this.createStreams(epoch);
        continue;
      }
      if (this.state !== 'ready') return;
      const lane = this.pickLane();
      if (lane === undefined) {
        if (this.lanes.every((l) => l.isEmpty)) this.becameIdle();
        return;
      }
      if (!this.created.has(lane)) {
        await this.createStreams(epoch);
        continue;
      }
      await this.sendBatch(lane, epoch);
    }
  }

  /** The runner's and the agent's lanes take turns; the diagnostics go only when neither has anything to send. */
  private pickLane(): LogLane | undefined {
    for (let i = 0; i < 2; i++) {
      const lane = (this.nextLane + i) % 2 === 0 ? this.runner : this.agent;
      if (this.sendable(lane)) {
        this.nextLane = (this.nextLane + i + 1) % 2;
        return lane;
      }
    }
    return this.sendable(this.diag) ? this.diag : undefined;
  }

  /** Create the streams not created yet: the runner's and the agent's always, the diagnostics' once it has lines. */
  private async createStreams(epoch: number): Promise<void> {
    const target = this.target!;
    for (const lane of this.lanes) {
      if (this.created.has(lane) || (lane === this.diag && lane.isEmpty)) continue;
      const stream = this.streams.get(lane)!;
      for (let attempt = 1; this.epoch === epoch; attempt++) {
        if (attempt > MAX_CALL_ATTEMPTS) {
          return this.fail(`creating CloudWatch Logs stream "${stream}" failed ${MAX_CALL_ATTEMPTS} times: log shipping is disabled; lines are counted as dropped`);
        }
        if (attempt > 1) this.retries += 1;
        try {
          await this.call(
            (abortSignal) => target.client.send(new CreateLogStreamCommand({ logGroupName: target.logGroup, logStreamName: stream }), { abortSignal }),
          );
          break;
        } catch (error) {
          if (this.epoch !== epoch) return;
          const name = errorName(error);
          if (name === 'ResourceAlreadyExistsException') break;
          if (name === 'ResourceNotFoundException') {
            return this.fail(
              `CloudWatch Logs group "${target.logGroup}" does not exist: log shipping is disabled for this instance ` +
                `(create the group or unset RUNS_FLEET_LOG_GROUP); lines are counted as dropped`,
            );
          }
          if (!isRetriableAwsError(error)) {
            if (lane === this.diag) {
              // Only the diagnostics are lost: the job's log goes on.
              const lines = lane.dropAll();
              this.warnOnce('create:diag', `cannot create CloudWatch Logs stream "${stream}" (${describeError(error)}): ${lines} diagnostic lines dropped`);
              break;
            }
            return this.fail(`cannot create CloudWatch Logs stream "${stream}" in "${target.logGroup}": ${describeError(error)}; log shipping is disabled`);
          }
          this.warnOnce(`create:${name}`, `creating CloudWatch Logs stream "${stream}" failed (${describeError(error)}); retrying`);
          await this.sleep(this.backoff(attempt), epoch);
        }
      }
      if (this.epoch === epoch) this.created.add(lane);
    }
    if (this.epoch !== epoch) return;
    this.state = 'ready';
    this.settleReady();
  }

  private async sendBatch(lane: LogLane, epoch: number): Promise<void> {
    const batch = lane.nextBatch();
    if (batch === undefined) return;
    const target = this.target!;
    const logStreamName = this.streams.get(lane)!;
    try {
      const output = await this.call((abortSignal) =>
        target.client.send(this.lean.command(target.logGroup, logStreamName, batch), { abortSignal }),
      );
      if (this.epoch !== epoch) return; // given up meanwhile, already counted as dropped
      const rejected = rejectedLines(batch, (output as PutLogEventsCommandOutput | undefined)?.rejectedLogEventsInfo);
      if (rejected > 0) this.warnOnce('rejected', `CloudWatch Logs rejected ${rejected} log lines as too old or too new (clock skew?)`);
      lane.delivered(rejected);
    } catch (error) {
      if (this.epoch !== epoch) return;
      const name = errorName(error);
      batch.attempt++;
      if (name === 'DataAlreadyAcceptedException') return lane.delivered();
      if (name === 'ResourceNotFoundException' && batch.attempt <= 3) {
        // The stream (or group) went away: create it again; a missing group disables shipping.
        this.created.clear();
        this.state = 'starting';
        return;
      }
      if (isRetriableAwsError(error) && batch.attempt < MAX_CALL_ATTEMPTS) {
        this.warnOnce(`put:${name}`, `PutLogEvents failed (${describeError(error)}); retrying with backoff (at most ${MAX_CALL_ATTEMPTS} attempts a batch)`);
        this.retries += 1;
        return this.sleep(this.backoff(batch.attempt), epoch);
      }
      const lines = lane.dropCurrent();
      const why = isRetriableAwsError(error) ? `failed ${batch.attempt} times` : 'was refused';
      this.warnOnce(`drop:${name}`, `a CloudWatch Logs batch of ${batch.count} events ${why} (${describeError(error)}); ${lines} lines dropped`);
    }
  }

  /** One AWS call, bounded by the request timeout and cut short when the epoch ends. */
  private call<T>(send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.any([this.epochCtl.signal, AbortSignal.timeout(this.requestTimeoutMs)]);
    return raceAbort(send(signal), signal);
  }

  private backoff(attempt: number): number {
    return backoffMs(attempt, this.retryBaseMs, this.retryMaxMs);
  }

  private sleep(ms: number, epoch: number): Promise<void> {
    return this.epoch === epoch ? sleep(ms, this.epochCtl.signal) : Promise.resolve();
  }

  private fail(message: string): void {
    this.state = 'failed';
    this.newEpoch();
    let lines = 0;
    for (const lane of this.lanes) lines += lane.dropAll();
    this.warnOnce('failed', lines > 0 ? `${message} (${lines} buffered lines dropped)` : message);
    this.stop();
    this.settleWaiters();
  }

  /** The flush deadline passed: abort what is in flight and count everything left as dropped. */
  private giveUp(): void {
    this.newEpoch();
    let lines = 0;
    for (const lane of this.lanes) lines += lane.dropAll();
    if (lines > 0) this.warnOnce(`gaveup:${this.epoch}`, `log flush deadline passed: ${lines} lines could not be shipped`);
  }

  private newEpoch(): void {
    this.epochCtl.abort(new Error('log shipping deadline passed'));
    this.epochCtl = new AbortController();
    this.epoch++;
  }

  private waitIdle(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.state === 'ready' && this.lanes.every((l) => l.isEmpty)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (idle: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.idleWaiters = this.idleWaiters.filter((w) => w !== onIdle);
        resolve(idle);
      };
      const onIdle = () => finish(true);
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), Math.max(0, timeoutMs));
      if (signal?.aborted) return finish(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.idleWaiters.push(onIdle);
    });
  }

  private becameIdle(): void {
    this.drainRequested = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private settleReady(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w();
  }

  /** Shipping ended (failed, off, closed): nobody should keep waiting. */
  private settleWaiters(): void {
    this.settleReady();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    try {
      this.warn(message);
    } catch {
      /* a failing warn callback must not break shipping */
    }
  }
}

/** The SDK's PutLogEvents request is not AWS JSON: its body cannot be swapped for ours. */

function errorName(error: unknown): string {
  return (error as { name?: string } | undefined)?.name ?? 'Error';
}

/** Lines of a delivered batch that CloudWatch refused as too old, expired or too new. */
function rejectedLines(batch: LogBatch, info: RejectedLogEventsInfo | undefined): number {
  if (!info) return 0;
  const n = batch.count;
  const rejected = new Array<boolean>(n).fill(false);
  const oldEnd = Math.max(info.tooOldLogEventEndIndex ?? -1, info.expiredLogEventEndIndex ?? -1);
  for (let i = 0; i <= Math.min(oldEnd, n - 1); i++) rejected[i] = true;
  if (info.tooNewLogEventStartIndex !== undefined) for (let i = Math.max(0, info.tooNewLogEventStartIndex); i < n; i++) rejected[i] = true;
  let lines = 0;
  for (let i = 0; i < n; i++) if (rejected[i]) lines += batch.lineFlags[i]!;
  return lines;
}
