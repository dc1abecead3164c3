/**
 * Fakes of every actor the agent machine invokes, controllable from a test.
 *
 * Promise actors wait in `pending` until the test settles them (or `auto` settles
 * them at once); the runner process fake records STOP commands and is driven by
 * `runner.emit(...)`. Every call and every actor stop is written to `journal`, so
 * tests can assert ordering (cleanup before termination, runner gone before reporting).
 */
import { fromCallback, fromPromise, type AnyEventObject } from 'xstate';
import type { AgentEvent, RunnerCommand } from '../../machines/events.js';
import type { actorContracts } from '../../machines/actor-contracts.js';

type PromiseSrc =
  | 'resolveIdentity'
  | 'readRunnerConfig'
  | 'downloadRunner'
  | 'registerRunner'
  | 'resolveRunnerUser'
  | 'isolateJob'
  | 'prepareJob'
  | 'inspectJob'
  | 'uploadRunnerLogs'
  | 'sendTelemetry'
  | 'cleanup'
  | 'flushLogs'
  | 'terminateInstance';

export interface PendingCall {
  src: PromiseSrc;
  input: any;
  resolve(output?: unknown): void;
  reject(error: unknown): void;
  aborted: boolean;
}

/** What an auto-settled actor does: resolve with a value, reject, or hang. */
export type AutoBehavior = { resolve: unknown } | { reject: Error } | 'hang';

export const FAKE_SECRET = 'jit-secret-c29tZXRoaW5nIHNlY3JldA==';

export function defaultOutputs(): Record<PromiseSrc, unknown> {
  return {
    resolveIdentity: { instanceId: 'i-0fake0000000000001', region: 'us-east-1' },
    readRunnerConfig: {
      parameterName: '/runs-fleet/runners/i-0fake0000000000001/config',
      mode: 'jit',
      isOrg: false,
      labels: ['self-hosted'],
      runId: '42',
      jobId: '4242',
      queueUrl: 'http://127.0.0.1:1/123456789012/termination',
      repo: 'acme/app',
    },
    downloadRunner: { dir: '/opt/actions-runner', version: '2.330.0', source: 'github' },
    registerRunner: {},
    resolveRunnerUser: { name: 'runner', uid: 1001, gid: 1001, home: '/home/runner', shell: '/bin/bash', switchUser: true, isRoot: false },
    isolateJob: { imds: 'blocked', mechanism: 'nft' },
    prepareJob: { toolCacheBefore: ['node/20.0.0/x64'] },
    inspectJob: { toolCacheMisses: ['node/22.1.0/x64'] },
    uploadRunnerLogs: 'disabled',
    sendTelemetry: { sent: true },
    cleanup: undefined,
    flushLogs: { shipped: 10, dropped: 0 },
    terminateInstance: undefined,
  };
}

export class FakeActors {
  readonly pending: PendingCall[] = [];
  readonly calls: { src: string; input: any }[] = [];
  /** How each call ended, in the order they ended: `ok` = resolved (for a send: the queue took it). */
  readonly settled: { src: string; input: any; ok: boolean }[] = [];
  readonly journal: string[] = [];
  /** When set for a src, calls settle at once with this behavior (else they wait in `pending`). */
  readonly auto: Partial<Record<PromiseSrc, AutoBehavior>> = {};
  readonly runner = {
    spawned: 0,
    alive: false,
    stops: [] as RunnerCommand[],
    /** NOTE commands (a notice for the job's log, the job going on). */
    notes: [] as string[],
    /** When true, a STOP makes the fake runner print Canceled and exit at once. */
    exitOnStop: true,
    sendBack: undefined as undefined | ((event: AgentEvent) => void),
    emit(event: AgentEvent) {
      if (!this.sendBack) throw new Error('runner process actor is not running');
      this.sendBack(event);
    },
  };
  readonly watchers: Record<string, { sendBack?: (e: AgentEvent) => void; active: boolean }> = {};

  /** Every promise actor settles at once with the default outputs. */
  static autoAll(): FakeActors {
    const fake = new FakeActors();
    const outputs = defaultOutputs();
    for (const [src, output] of Object.entries(outputs)) fake.auto[src as PromiseSrc] = { resolve: output };
    return fake;
  }

  callsOf(src: string): any[] {
    return this.calls.filter((c) => c.src === src).map((c) => c.input);
  }

  /** The inputs of the calls of `src` that succeeded (a sent message, an accepted termination). */
  succeeded(src: string): any[] {
    return this.settled.filter((c) => c.src === src && c.ok).map((c) => c.input);
  }

  /** The oldest unsettled call of `src`; throws when the machine did not invoke it. */
  take(src: PromiseSrc): PendingCall {
    const index = this.pending.findIndex((p) => p.src === src && !p.aborted);
    if (index < 0) {
      throw new Error(`no pending ${src} call (pending: ${this.pending.map((p) => p.src).join(', ') || 'none'})`);
    }
    return this.pending.splice(index, 1)[0]!;
  }

  private promise(src: PromiseSrc) {
    return fromPromise<any, any>(({ input, signal }) => {
      this.calls.push({ src, input });
      this.journal.push(`call:${src}`);
      const behavior = this.auto[src];
      const ended = (ok: boolean) => this.settled.push({ src, input, ok });
      if (behavior !== undefined && behavior !== 'hang') {
        ended(!('reject' in behavior));
        return 'reject' in behavior ? Promise.reject(behavior.reject) : Promise.resolve(behavior.resolve);
      }
      return new Promise((resolve, reject) => {
        const call: PendingCall = {
          src,
          input,
          resolve: (value) => (ended(true), resolve(value)),
          reject: (error) => (ended(false), reject(error)),
          aborted: false,
        };
        signal.addEventListener('abort', () => {
          call.aborted = true;
          this.journal.push(`abort:${src}`);
        });
        if (behavior !== 'hang') this.pending.push(call);
      });
    });
  }

  /**
   * The log shipper's actor: FLUSH_LOGS is recorded like a call of `flushLogs` (journal
   * `call:flushLogs`) and answered with LOGS_FLUSHED as `auto.flushLogs` says (resolve → at once,
   * 'hang' → never, unset → when the test sends it through `watchers.logShipper.sendBack`).
   */
  private logShipper() {
    return fromCallback<AnyEventObject, any, AgentEvent>(({ sendBack, receive }) => {
      this.watchers.logShipper = { sendBack, active: true };
      this.journal.push('start:logShipper');
      receive((command) => {
        this.journal.push(`command:${command.type}`);
        if (command.type !== 'FLUSH_LOGS') return;
        this.calls.push({ src: 'flushLogs', input: command });
        this.journal.push('call:flushLogs');
        const behavior = this.auto.flushLogs;
        if (behavior && behavior !== 'hang' && 'resolve' in behavior) {
          const counts = behavior.resolve as { shipped: number; dropped: number };
          this.settled.push({ src: 'flushLogs', input: command, ok: true });
          queueMicrotask(() => sendBack({ type: 'LOGS_FLUSHED', shipped: counts.shipped, dropped: counts.dropped }));
        }
      });
      return () => {
        this.watchers.logShipper!.active = false;
        this.journal.push('stop:logShipper');
      };
    });
  }

  private watcher(name: string) {
    return fromCallback<AnyEventObject, any, AgentEvent>(({ sendBack }) => {
      this.watchers[name] = { sendBack, active: true };
      this.journal.push(`start:${name}`);
      return () => {
        this.watchers[name]!.active = false;
        this.journal.push(`stop:${name}`);
      };
    });
  }

  /**
   * The standby download: settles like `downloadRunner` when that is auto (RUNNER_PREFETCHED /
   * PREFETCH_FAILED); otherwise it waits for the test (`watchers.prefetchRunner.sendBack`).
   */
  private prefetch() {
    return fromCallback<AnyEventObject, any, AgentEvent>(({ sendBack, input }) => {
      this.calls.push({ src: 'prefetchRunner', input });
      this.journal.push('call:prefetchRunner');
      this.watchers.prefetchRunner = { sendBack, active: true };
      const behavior = this.auto.downloadRunner;
      let cancelled = false;
      if (behavior !== undefined && behavior !== 'hang') {
        void Promise.resolve().then(() => {
          if (cancelled) return;
          if ('reject' in behavior) {
            const e = behavior.reject as Error & { retriable?: boolean; retryAfterMs?: number };
            sendBack({ type: 'PREFETCH_FAILED', failure: { message: e.message, retriable: Boolean(e.retriable), retryAfterMs: e.retryAfterMs } });
          } else sendBack({ type: 'RUNNER_PREFETCHED', runner: behavior.resolve as never });
        });
      }
      return () => {
        cancelled = true;
        this.watchers.prefetchRunner!.active = false;
        this.journal.push('stop:prefetchRunner');
      };
    });
  }

  /** Implementations for `agentMachine.provide({ actors })`. */
  actors(): typeof actorContracts {
    const runner = this.runner;
    const journal = this.journal;
    return {
      resolveIdentity: this.promise('resolveIdentity'),
      readRunnerConfig: this.promise('readRunnerConfig'),
      downloadRunner: this.promise('downloadRunner'),
      registerRunner: this.promise('registerRunner'),
      prepareJob: this.promise('prepareJob'),
      isolateJob: this.promise('isolateJob'),
      resolveRunnerUser: this.promise('resolveRunnerUser'),
      inspectJob: this.promise('inspectJob'),
      uploadRunnerLogs: this.promise('uploadRunnerLogs'),
      prefetchRunner: this.prefetch(),
      uploadRunnerCache: this.watcher('uploadRunnerCache'),
      sendTelemetry: this.promise('sendTelemetry'),
      cleanup: this.promise('cleanup'),
      terminateInstance: this.promise('terminateInstance'),
      runnerProcess: fromCallback<RunnerCommand, any, AgentEvent>(({ sendBack, receive }) => {
        runner.spawned += 1;
        runner.alive = true;
        runner.sendBack = sendBack;
        journal.push('start:runner');
        receive((command) => {
          if (command.type === 'NOTE') return void runner.notes.push(command.notice);
          runner.stops.push(command);
          journal.push('stop-command:runner');
          if (runner.exitOnStop && runner.alive) {
            runner.alive = false;
            sendBack({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
          }
        });
        return () => {
          runner.alive = false;
          runner.sendBack = undefined;
          journal.push('stop:runner');
        };
      }),
      processWatcher: this.watcher('processWatcher'),
      spotWatcher: this.watcher('spotWatcher'),
      resourceMonitor: this.watcher('resourceMonitor'),
      logShipper: this.logShipper(),
    } as unknown as typeof actorContracts;
  }
}

/** Let promise continuations (actor settlements) run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
}
