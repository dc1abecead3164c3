/**
 * The fault-injection suite's cases and runner (issue: never a zombie). For each state:
 * (a) SIGTERM, (b) a failing dependency, (c) a hang, (d) SIGKILL of the agent — each run
 * against the built agent as a process, with moto and the fakes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startBadEndpoint, type BadEndpoint } from './bad-endpoints.js';
import { createWorld, JIT_SECRET, TOKEN_SECRET, type AgentRun, type World } from './agent-world.js';
import type { FakeRunnerOptions } from './fake-runner.js';
import { startMoto, type Moto } from './moto.js';
import { misread, orchestratorVerdicts } from './orchestrator.js';

export type Fault = 'SIGTERM' | 'failing dependency' | 'hang' | 'SIGKILL';

export interface Bad {
  down: BadEndpoint;
  hang: BadEndpoint;
}

export interface FaultCase {
  state: string;
  fault: Fault;
  /** What is injected, for the table. */
  what: string;
  runner?: Partial<FakeRunnerOptions>;
  /** Runner config written to SSM; null = none (the parameter is missing). */
  config?: Record<string, unknown> | null;
  env?: (bad: Bad, world: World) => Record<string, string>;
  arrange?: (world: World) => void;
  /** Signals sent once the agent logs entering a state. */
  signals?: { inState: string; signal: 'SIGTERM' | 'SIGKILL'; afterMs: number }[];
  expected: {
    exit: 0 | 1 | 'SIGKILL';
    terminated: boolean;
    /** The final telemetry status; null = no final message can reach the queue. */
    status: RegExp | null;
    check?: (final: Record<string, any> | undefined, run: AgentRun) => void;
  };
}

export interface FaultResult {
  c: FaultCase;
  run: AgentRun;
  instance: string | undefined;
  finals: Record<string, any>[];
  runnerLeft: number;
  /** The orchestrator's decoder on every message the queue got: what it misread ([] when all is well). */
  misread: string[];
}

const jit = { jit_config: JIT_SECRET };
const token = { jit_token: TOKEN_SECRET, org: 'acme', repo: 'app' };
const fast = { RUNS_FLEET_MAX_RUNTIME_MINUTES: '0.1' };
/** The SQS client sends to the queue URL's host (useQueueUrlAsEndpoint), so the fault is a queue URL there. */
const sqsAt = (endpoint: BadEndpoint) => ({ RUNS_FLEET_TERMINATION_QUEUE_URL: `${endpoint.url}/123456789012/termination` });

export const CASES: FaultCase[] = [
  // booting: before any config the instance has no job — standby ends with exit 0, nothing reported, nothing terminated
  { state: 'booting', fault: 'SIGTERM', what: 'SIGTERM while SSM hangs (standby)', config: jit, env: (b) => ({ AWS_ENDPOINT_URL_SSM: b.hang.url, RUNS_FLEET_SSM_TIMEOUT_SECONDS: '1' }),
    signals: [{ inState: 'booting', signal: 'SIGTERM', afterMs: 400 }], expected: { exit: 0, terminated: false, status: null } },
  { state: 'booting', fault: 'failing dependency', what: 'no config by the standby deadline', config: null, env: () => ({ RUNS_FLEET_STANDBY_DEADLINE_MINUTES: '0.05' }),
    expected: { exit: 0, terminated: false, status: null, check: (_f, run) => expect(run.logs.find((l) => l.msg === 'lifecycle finished')).toMatchObject({ standbyEnd: 'deadline' }) } },
  { state: 'booting', fault: 'failing dependency', what: 'IMDS down (instance id unknown)', config: jit, arrange: (w) => w.imds.setDown(true),
    expected: { exit: 1, terminated: false, status: null } },
  { state: 'booting', fault: 'hang', what: 'SSM never answers (1 s per call)', config: jit, env: (b) => ({ AWS_ENDPOINT_URL_SSM: b.hang.url, RUNS_FLEET_SSM_TIMEOUT_SECONDS: '1', ...fast }),
    expected: { exit: 0, terminated: false, status: null, check: (_f, run) => expect(run.logs.some((l) => /no answer within 1000 ms/.test(String(l.msg)))).toBe(true) } },
  { state: 'booting', fault: 'SIGKILL', what: 'SIGKILL while SSM hangs', config: jit, env: (b) => ({ AWS_ENDPOINT_URL_SSM: b.hang.url }),
    signals: [{ inState: 'booting', signal: 'SIGKILL', afterMs: 400 }], expected: { exit: 'SIGKILL', terminated: false, status: null } },
  // downloading
  { state: 'downloading', fault: 'SIGTERM', what: 'SIGTERM mid-download (throttled)', config: jit, arrange: (w) => w.github.setThrottle(500),
    signals: [{ inState: 'downloading', signal: 'SIGTERM', afterMs: 500 }], expected: { exit: 0, terminated: true, status: /^interrupted$/ } },
  { state: 'downloading', fault: 'failing dependency', what: 'GitHub down (HTTP 500)', config: jit, arrange: (w) => w.github.failNext(1000, 500),
    expected: { exit: 0, terminated: true, status: /^bootstrap_failed$/ } },
  { state: 'downloading', fault: 'hang', what: 'GitHub never answers', config: jit, env: () => fast, arrange: (w) => w.github.setHang(true),
    expected: { exit: 0, terminated: true, status: /^(timeout|bootstrap_failed)$/ } },
  { state: 'downloading', fault: 'SIGKILL', what: 'SIGKILL mid-download', config: jit, arrange: (w) => w.github.setThrottle(500),
    signals: [{ inState: 'downloading', signal: 'SIGKILL', afterMs: 500 }], expected: { exit: 'SIGKILL', terminated: false, status: null } },
  // registering
  { state: 'registering', fault: 'SIGTERM', what: 'SIGTERM while config.sh hangs', config: token, runner: { config: 'hang' },
    signals: [{ inState: 'registering', signal: 'SIGTERM', afterMs: 500 }], expected: { exit: 0, terminated: true, status: /^interrupted$/ } },
  { state: 'registering', fault: 'failing dependency', what: 'config.sh fails (404)', config: token, runner: { config: 'fail' },
    expected: { exit: 0, terminated: true, status: /^bootstrap_failed$/ } },
  { state: 'registering', fault: 'hang', what: 'config.sh never returns', config: token, runner: { config: 'hang' }, env: () => fast,
    expected: { exit: 0, terminated: true, status: /^timeout$/ } },
  { state: 'registering', fault: 'SIGKILL', what: 'SIGKILL while config.sh hangs', config: token, runner: { config: 'hang' },
    signals: [{ inState: 'registering', signal: 'SIGKILL', afterMs: 500 }], expected: { exit: 'SIGKILL', terminated: false, status: null } },
  // running
  { state: 'running', fault: 'SIGTERM', what: 'SIGTERM mid-job', config: jit, runner: { behavior: 'hang' },
    signals: [{ inState: 'running', signal: 'SIGTERM', afterMs: 800 }], expected: { exit: 0, terminated: true, status: /^interrupted$/ } },
  { state: 'running', fault: 'failing dependency', what: 'run.sh crashes', config: jit, runner: { behavior: 'crash' },
    expected: { exit: 0, terminated: true, status: /^bootstrap_failed$/ } },
  { state: 'running', fault: 'hang', what: 'the job never ends', config: jit, runner: { behavior: 'hang' }, env: () => fast,
    expected: { exit: 0, terminated: true, status: /^timeout$/ } },
  { state: 'running', fault: 'SIGKILL', what: 'SIGKILL mid-job', config: jit, runner: { behavior: 'hang' },
    signals: [{ inState: 'running', signal: 'SIGKILL', afterMs: 800 }], expected: { exit: 'SIGKILL', terminated: false, status: null } },
  // draining
  { state: 'draining', fault: 'SIGTERM', what: 'a second SIGTERM while draining', config: jit, runner: { behavior: 'ignore-sigterm' },
    signals: [{ inState: 'running', signal: 'SIGTERM', afterMs: 800 }, { inState: 'draining', signal: 'SIGTERM', afterMs: 300 }],
    expected: { exit: 0, terminated: true, status: /^interrupted$/ } },
  { state: 'draining', fault: 'failing dependency', what: 'runner ignores SIGTERM (grace 1 s)', config: jit, runner: { behavior: 'ignore-sigterm' },
    env: () => ({ RUNS_FLEET_DRAIN_GRACE_SECONDS: '1' }), signals: [{ inState: 'running', signal: 'SIGTERM', afterMs: 800 }],
    expected: { exit: 0, terminated: true, status: /^interrupted$/ } },
  { state: 'draining', fault: 'hang', what: 'runner ignores the max-runtime stop', config: jit, runner: { behavior: 'ignore-sigterm' }, env: () => fast,
    expected: { exit: 0, terminated: true, status: /^timeout$/ } },
  { state: 'draining', fault: 'SIGKILL', what: 'SIGKILL while draining', config: jit, runner: { behavior: 'ignore-sigterm' },
    env: () => ({ RUNS_FLEET_DRAIN_GRACE_SECONDS: '20' }),
    signals: [{ inState: 'running', signal: 'SIGTERM', afterMs: 800 }, { inState: 'draining', signal: 'SIGKILL', afterMs: 500 }],
    expected: { exit: 'SIGKILL', terminated: false, status: null } },
  // reporting
  { state: 'reporting', fault: 'SIGTERM', what: 'SIGTERM while SQS hangs', config: jit, env: (b) => sqsAt(b.hang),
    signals: [{ inState: 'reporting', signal: 'SIGTERM', afterMs: 300 }], expected: { exit: 0, terminated: true, status: null } },
  { state: 'reporting', fault: 'failing dependency', what: 'SQS down (HTTP 503)', config: jit, env: (b) => sqsAt(b.down),
    expected: { exit: 0, terminated: true, status: null } },
  { state: 'reporting', fault: 'failing dependency', what: 'CloudWatch Logs down', config: jit, env: (b) => ({ AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: b.down.url }),
    expected: { exit: 0, terminated: true, status: /^success$/, check: (f) => expect(f?.log_lines_dropped).toBeGreaterThan(0) } },
  { state: 'reporting', fault: 'hang', what: 'SQS never answers', config: jit, env: (b) => sqsAt(b.hang),
    expected: { exit: 0, terminated: true, status: null } },
  { state: 'reporting', fault: 'SIGKILL', what: 'SIGKILL while SQS hangs', config: jit, env: (b) => sqsAt(b.hang),
    signals: [{ inState: 'reporting', signal: 'SIGKILL', afterMs: 300 }], expected: { exit: 'SIGKILL', terminated: false, status: null } },
  // terminating
  { state: 'terminating', fault: 'SIGTERM', what: 'SIGTERM while EC2 hangs', config: jit, env: (b) => ({ AWS_ENDPOINT_URL_EC2: b.hang.url }),
    signals: [{ inState: 'terminating', signal: 'SIGTERM', afterMs: 300 }], expected: { exit: 1, terminated: false, status: /^success$/ } },
  { state: 'terminating', fault: 'failing dependency', what: 'TerminateInstances fails (HTTP 503)', config: jit, env: (b) => ({ AWS_ENDPOINT_URL_EC2: b.down.url }),
    expected: { exit: 1, terminated: false, status: /^success$/ } },
  { state: 'terminating', fault: 'hang', what: 'EC2 never answers', config: jit, env: (b) => ({ AWS_ENDPOINT_URL_EC2: b.hang.url }),
    expected: { exit: 1, terminated: false, status: /^success$/ } },
  { state: 'terminating', fault: 'SIGKILL', what: 'SIGKILL while EC2 hangs', config: jit, env: (b) => ({ AWS_ENDPOINT_URL_EC2: b.hang.url }),
    signals: [{ inState: 'terminating', signal: 'SIGKILL', afterMs: 300 }], expected: { exit: 'SIGKILL', terminated: false, status: /^success$/ } },
];

/** Short deadlines so the whole suite takes minutes (all documented variables). */
const SUITE_ENV = {
  RUNS_FLEET_DRAIN_GRACE_SECONDS: '3',
  RUNS_FLEET_REPORT_TIMEOUT_SECONDS: '3',
  RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS: '2',
  RUNS_FLEET_TERMINATE_TIMEOUT_SECONDS: '3',
};

export async function startBad(): Promise<Bad> {
  return { down: await startBadEndpoint('down'), hang: await startBadEndpoint('hang') };
}

export async function runCase(c: FaultCase, moto: Moto, bad: Bad): Promise<FaultResult> {
  const world = await createWorld({ moto, runner: { behavior: 'succeed', ...c.runner } });
  try {
    if (c.config !== null) await world.putRunnerConfig(c.config ?? { jit_config: JIT_SECRET });
    c.arrange?.(world);
    const seen = new Set<string>();
    const { child, done } = world.startAgent(
      { RUNS_FLEET_TERMINATION_QUEUE_URL: world.queueUrl, ...SUITE_ENV, ...c.env?.(bad, world) },
      {
        onLine: (line) => {
          if (!line.includes('"msg":"state"')) return;
          const state = (JSON.parse(line) as { state: string }).state;
          if (seen.has(state)) return;
          seen.add(state);
          for (const s of c.signals ?? []) if (s.inState === state) setTimeout(() => child.kill(s.signal), s.afterMs);
        },
      },
    );
    const run = await done;
    // After a SIGKILL nothing of the agent runs any more: the reaper it left ends the runner.
    for (let i = 0; i < 20 && world.runnerProcesses().length > 0; i += 1) await new Promise((r) => setTimeout(r, 100));
    const runnerLeft = world.runnerProcesses().length;
    const finals = (await world.telemetry()).filter((m) => m.status !== 'started');
    const instance = await world.instanceState();
    const decoded = misread(await orchestratorVerdicts(world));
    // Undo the world's faults so that closing it does not hang.
    world.github.setHang(false);
    world.github.setThrottle(undefined);
    world.imds.setDown(false);
    return { c, run, instance, finals, runnerLeft, misread: decoded };
  } finally {
    await world.close();
  }
}

export function assertCase(r: FaultResult): void {
  const { c, run } = r;
  if (c.expected.exit === 'SIGKILL') {
    expect(run.signal).toBe('SIGKILL');
    expect(run.exitCode).toBeNull();
  } else {
    const tail = run.exitCode === c.expected.exit ? '' : `${run.stderr.slice(-2000)}\n${run.stdout.split('\n').filter((l) => !l.includes('"msg":"runner"')).slice(-25).join('\n')}`;
    expect({ exit: run.exitCode, output: tail }).toEqual({ exit: c.expected.exit, output: '' });
  }
  expect(r.instance).toBe(c.expected.terminated ? 'terminated' : 'running');
  expect(r.runnerLeft).toBe(0);
  expect(r.misread).toEqual([]);
  expect(r.finals.length).toBeLessThanOrEqual(1);
  if (c.expected.status === null) expect(r.finals).toHaveLength(0);
  else {
    expect(r.finals).toHaveLength(1);
    expect(r.finals[0]!.status).toMatch(c.expected.status);
  }
  c.expected.check?.(r.finals[0], run);
}

export function tableRow(r: FaultResult, ok: boolean): string {
  const exit = r.run.signal ? `killed (${r.run.signal})` : `exit ${r.run.exitCode}`;
  const status = r.finals[0]?.status ?? '—';
  // A failed row says why the agent ended as it did: the final message's error.
  const why = !ok && r.finals[0]?.error ? ` (${String(r.finals[0].error).slice(0, 300)})` : '';
  return `| ${r.c.state} | ${r.c.fault} | ${r.c.what} | ${exit} | ${r.instance} | ${status} | ${r.runnerLeft} | ${(r.run.durationMs / 1000).toFixed(1)} s | ${ok ? 'pass' : `FAIL${why}`} |`;
}

export const TABLE_HEADER = [
  '| state | fault | injected | agent | instance | final telemetry | runner procs left | time | result |',
  '|---|---|---|---|---|---|---|---|---|',
];

/** One jest suite over the cases of `states`, printing its table of cases → outcome at the end. */
export function defineFaultSuite(part: string, states: string[]): void {
  let moto: Moto;
  let bad: Bad;
  const rows: string[] = [];
  beforeAll(async () => {
    moto = await startMoto();
    bad = await startBad();
  });
  afterAll(async () => {
    process.stdout.write(`\nfault injection (${part}):\n${[...TABLE_HEADER, ...rows].join('\n')}\n`);
    await Promise.all([moto.stop(), bad.down.close(), bad.hang.close()]);
  });
  describe(`fault injection (${part} states)`, () => {
    for (const c of CASES.filter((x) => states.includes(x.state))) {
      it(`${c.state} / ${c.fault}: ${c.what}`, async () => {
        const result = await runCase(c, moto, bad);
        try {
          assertCase(result);
          rows.push(tableRow(result, true));
        } catch (error) {
          rows.push(tableRow(result, false));
          throw error;
        }
      }, 60_000);
    }
  });
}
