/**
 * run.sh supervised: the fake actions/runner (real output lines, signals, process
 * groups) run by the real service and actor — as a non-root runner user, with the
 * allow-listed environment, parsed into machine events, drained by STOP.
 */
import { fakeJitConfig } from './support/jit.js';
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { createActor, setup, type AnyEventObject } from 'xstate';
import { registerRunner } from '../actors/register-runner.js';
import { runnerProcess } from '../actors/runner-process.js';
import type { AgentEvent } from '../machines/events.js';
import type { InstalledRunner, JobSpec } from '../machines/types.js';
import { sessionMembers, startRunnerProcess, type OutputStream } from '../services/runner/process.js';
import { SecretVault } from '../services/secrets.js';
import { parseSettings, type Settings } from '../services/settings.js';
import { buildFakeRunnerTarball, extractFakeRunner, readRunnerEnv, writeRunnerOverride, type FakeRunnerOptions } from './support/fake-runner.js';
import { runnerUserTests } from './support/runner-user-tests.js';
import { TEST_USER } from './support/test-user.js';
import { registerRunnerService } from '../services/runner/registration.js';
import { resolveRunnerUser, type RunnerUser } from '../services/runner/user.js';
import type { JobHookPaths } from '../services/runner/job-hooks.js';

const VERSION = '2.330.0';
const JIT_CONFIG = fakeJitConfig('runner-process-test');
const CACHE_TOKEN = 'cache-token-secret-123';
const CACHE_URL = 'https://cache.example.test/tenant/';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { user, asUser } = runnerUserTests('runner-user tests');

interface LogRecord {
  level: string;
  msg: string;
  [key: string]: unknown;
}
function captureLogger() {
  const records: LogRecord[] = [];
  const logger = pino(
    { level: 'debug', base: undefined, formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) },
  );
  return { logger, records };
}

/** The agent's environment, with things that must never reach the job. */
const AGENT_ENV = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  TZ: 'UTC',
  HOME: '/root',
  AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKE',
  AWS_SECRET_ACCESS_KEY: 'agent-aws-secret',
  AWS_SESSION_TOKEN: 'agent-session-token',
  AWS_ENDPOINT_URL: 'http://127.0.0.1:1',
  RUNS_FLEET_LOG_GROUP: 'agent-logs',
  RUNS_FLEET_RUNNER_USER: TEST_USER,
  NODE_OPTIONS: '--inspect',
  SOME_OTHER_VAR: 'x',
};

interface Harness {
  dir: string;
  stateDir: string;
  settings: Settings;
  jobSpec: JobSpec;
  runner: InstalledRunner;
  vault: SecretVault;
  /** As registering resolves it, and the hooks it installed. */
  user: RunnerUser;
  hooks?: JobHookPaths;
}

describe('runner process (fake actions/runner)', () => {
  let tarball: Buffer;
  const cleanups: string[] = [];

  beforeAll(async () => {
    tarball = await buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed', jobSeconds: 0.1 });
  });
  afterAll(async () => {
    for (const d of cleanups) await rm(d, { recursive: true, force: true });
  });

  /** A fresh runner dir and state dir, registered (JIT) the way the agent does it. */
  async function prepare(opts: { override?: Partial<FakeRunnerOptions>; runnerUser?: string; register?: boolean } = {}): Promise<Harness> {
    const base = await mkdtemp(join(tmpdir(), 'rfa-runner-'));
    cleanups.push(base);
    const dir = join(base, 'actions-runner');
    const stateDir = join(base, 'state');
    await mkdir(dir);
    await chmod(base, 0o755);
    await extractFakeRunner(tarball, dir);
    if (opts.override) await writeRunnerOverride(dir, opts.override);
    const { settings, errors } = parseSettings({
      RUNS_FLEET_RUNNER_DIR: dir,
      RUNS_FLEET_STATE_DIR: stateDir,
      RUNS_FLEET_RUNNER_USER: opts.runnerUser ?? TEST_USER,
      RUNS_FLEET_INSTANCE_ID: 'i-0123456789abcdef0',
    });
    expect(errors).toEqual([]);
    const jobSpec: JobSpec = { parameterName: '/p', mode: 'jit', isOrg: false, labels: ['self-hosted'], repo: 'acme/app', cacheUrl: CACHE_URL };
    const runner: InstalledRunner = { dir, version: VERSION, source: 'installed' };
    const vault = new SecretVault();
    vault.set('jit_config', JIT_CONFIG);
    vault.set('cache_token', CACHE_TOKEN);
    const user = await resolveRunnerUser(settings);
    let hooks: JobHookPaths | undefined;
    if (opts.register !== false) {
      const { logger } = captureLogger();
      const actor = createActor(registerRunner({ logger, vault, env: AGENT_ENV }), { input: { settings, jobSpec, runner, user } });
      const done = new Promise<void>((resolve, reject) =>
        actor.subscribe({ complete: () => resolve(), error: (e) => reject(e as Error) }),
      );
      actor.start();
      await done;
      hooks = actor.getSnapshot().output?.hooks;
    }
    return { dir, stateDir, settings, jobSpec, runner, vault, user, hooks };
  }

  interface Line {
    line: string;
    ts: number;
    stream: OutputStream;
  }

  /** Runs the service directly; events and lines recorded. */
  function start(h: Harness) {
    const events: (AgentEvent & { atMs: number })[] = [];
    const lines: Line[] = [];
    const { logger, records } = captureLogger();
    const handle = startRunnerProcess({
      settings: h.settings,
      jobSpec: h.jobSpec,
      runner: h.runner,
      user: h.user,
      hooks: h.hooks,
      logger,
      vault: h.vault,
      env: AGENT_ENV,
      onLine: (line, ts, stream) => lines.push({ line, ts, stream }),
      send: (event) => events.push({ ...event, atMs: performance.now() }),
    });
    const waitFor = async (pred: () => boolean, what: string, ms = 8000) => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events)}`);
        await sleep(5);
      }
    };
    const exited = () => events.find((e) => e.type === 'RUNNER_EXITED');
    return { handle, events, lines, records, waitFor, exited };
  }

  const types = (events: AgentEvent[]) => events.map((e) => e.type);

  /** kill(pid, 0) throws ESRCH once a process is gone AND reaped (pid 1 reaps orphans a moment later). */
  async function gone(target: number, ms = 2000): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      try {
        process.kill(target, 0);
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'ESRCH';
      }
      if (Date.now() > deadline) return false;
      await sleep(10);
    }
  }

  /** No live process in the session, and the process group is empty (`kill(-pgid, 0)` → ESRCH). */
  async function assertNothingLeft(pid: number) {
    expect(sessionMembers(pid)).toEqual([]);
    expect(await gone(-pid)).toBe(true);
  }

  asUser("JIT 'succeed' via the actor: events in order, lines handed on, run as the runner user, the agent's own variables withheld", async () => {
    const h = await prepare();
    const events: AnyEventObject[] = [];
    const lines: Line[] = [];
    const { logger } = captureLogger();
    const parent = setup({
      actors: { runner: runnerProcess({ logger, vault: h.vault, env: AGENT_ENV, onLine: (line, ts, stream) => lines.push({ line, ts, stream }) }) },
    }).createMachine({
      invoke: { id: 'runner', src: 'runner', input: { settings: h.settings, jobSpec: h.jobSpec, runner: h.runner, user: h.user, hooks: h.hooks } },
      on: { '*': { actions: ({ event }) => events.push(event) } },
    });
    const actor = createActor(parent).start();
    const deadline = Date.now() + 8000;
    while (!events.some((e) => e.type === 'RUNNER_EXITED') && Date.now() < deadline) await sleep(10);
    actor.stop();

    expect(types(events as AgentEvent[])).toEqual(['RUNNER_SPAWNED', 'RUNNER_LISTENING', 'JOB_STARTED', 'JOB_COMPLETED', 'RUNNER_EXITED']);
    const started = events[2] as Extract<AgentEvent, { type: 'JOB_STARTED' }>;
    expect(started.jobName).toBe('build');
    expect(new Date(started.at).toISOString()).toBe(started.at);
    expect(Math.abs(Date.parse(started.at) - Date.now())).toBeLessThan(10_000);
    expect(events[3]).toEqual({ type: 'JOB_COMPLETED', jobName: 'build', result: 'Succeeded' });
    expect(events[4]).toEqual({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });

    expect(lines.map((l) => l.line)).toContain('√ Connected to GitHub');
    expect(lines.every((l) => l.stream === 'stdout' && l.ts > 0)).toBe(true);
    expect(lines.some((l) => l.line.includes(JIT_CONFIG))).toBe(false);

    // Ran as the runner user: the listener's env dump is theirs.
    const envFile = await stat(join(h.dir, '_diag/env.txt'));
    expect(envFile.uid).toBe(user.uid);
    const env = await readRunnerEnv(h.dir);
    expect(env.USER).toBe(TEST_USER);
    expect(env.LOGNAME).toBe(TEST_USER);
    expect(env.HOME).toBe(user.home);
    expect(env.RUNNER_ALLOW_RUNASROOT).toBeUndefined();
    expect(env.RUNNER_MANUALLY_TRAP_SIG).toBe('1');
    expect(env.LANG).toBe('C.UTF-8');
    expect(env.ACTIONS_CACHE_URL).toBe(CACHE_URL);
    expect(env.ACTIONS_RUNTIME_TOKEN).toBe(CACHE_TOKEN);
    expect(env.ACTIONS_RUNNER_HOOK_JOB_STARTED).toBe(join(h.stateDir, 'hooks/job-started.sh'));
    expect(env.ACTIONS_RUNNER_HOOK_JOB_COMPLETED).toBe(join(h.stateDir, 'hooks/job-completed.sh'));
    expect(Object.keys(env).filter((k) => /^(AWS_|RUNS_FLEET_)/.test(k))).toEqual([]);
    expect(env.NODE_OPTIONS).toBeUndefined();
    expect(env.SOME_OTHER_VAR).toBe('x'); // an operator's variable from the unit reaches the job
    expect(env.ACTIONS_RUNNER_INPUT_JITCONFIG).toBeUndefined(); // never given: registering wrote the config's files
    const raw = await readFile(join(h.dir, '_diag/env.txt'), 'utf8');
    for (const secret of ['agent-aws-secret', 'agent-session-token', JIT_CONFIG]) expect(raw).not.toContain(secret);
  });

  asUser("'fail' → JOB_COMPLETED Failed while run.sh still exits 0", async () => {
    const r = start(await prepare({ override: { behavior: 'fail', jobName: 'unit tests' } }));
    await r.waitFor(() => !!r.exited(), 'exit');
    expect(types(r.events)).toEqual(['RUNNER_SPAWNED', 'RUNNER_LISTENING', 'JOB_STARTED', 'JOB_COMPLETED', 'RUNNER_EXITED']);
    expect(r.events[3]).toMatchObject({ jobName: 'unit tests', result: 'Failed' });
    expect(r.exited()).toMatchObject({ exitCode: 0, signal: null });
  });

  asUser("'hang' + STOP: SIGTERM reaches the job (Canceled), RUNNER_EXITED within the grace, nothing left", async () => {
    const r = start(await prepare({ override: { behavior: 'hang' } }));
    await r.waitFor(() => types(r.events).includes('JOB_STARTED'), 'job start');
    const pid = r.handle.pid!;
    // The job itself (the listener's `sleep`), not only run.sh and the listener: under load the
    // listener may still be between its log lines and starting the job.
    const comm = (p: number) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      } catch {
        return ''; // exited meanwhile
      }
    };
    const jobRuns = () => sessionMembers(pid).some((p) => comm(p.pid) === 'sleep');
    await r.waitFor(() => sessionMembers(pid).length >= 3 && jobRuns(), 'the worker'); // run.sh, listener, job
    expect(new Set(sessionMembers(pid).map((p) => p.pgid)).size).toBeGreaterThan(1); // listener has its own group

    const stopAt = performance.now();
    const stopWall = Date.now();
    r.handle.stop();
    await r.waitFor(() => !!r.exited(), 'exit');
    const exitedAfterMs = r.exited()!.atMs - stopAt;
    const signalled = r.lines.find((l) => l.line === 'The runner has received a shutdown signal.');
    const sigterm = r.records.find((x) => x.msg === 'sent SIGTERM to the runner process group');
    console.log(
      `STOP → SIGTERM sent: ${String(sigterm?.latencyMs)} ms (logged); STOP → runner printed its shutdown line: ` +
        `${signalled ? signalled.ts - stopWall : '?'} ms; STOP → RUNNER_EXITED: ${Math.round(exitedAfterMs)} ms`,
    );
    expect(sigterm).toBeDefined();
    expect(sigterm!.latencyMs as number).toBeLessThan(1000);
    expect(signalled).toBeDefined();
    expect(exitedAfterMs).toBeLessThan(5_000);
    expect(r.events.find((e) => e.type === 'JOB_COMPLETED')).toMatchObject({ jobName: 'build', result: 'Canceled' });
    expect(r.exited()).toMatchObject({ exitCode: 143 }); // run.sh's trapped TERM (the real runWithManualTrap exits 128 + 15)
    await assertNothingLeft(pid);
    expect(r.records.some((x) => x.msg.startsWith('SIGKILL'))).toBe(false);
  });

  asUser("'ignore-sigterm' + STOP, then KILL (the chart's drainGrace, here 300 ms): SIGKILL of all of it; no timer of its own", async () => {
    const r = start(await prepare({ override: { behavior: 'ignore-sigterm' } }));
    await r.waitFor(() => types(r.events).includes('JOB_STARTED'), 'job start');
    const pid = r.handle.pid!;
    await r.waitFor(() => sessionMembers(pid).length >= 3, 'the worker');
    const stopAt = performance.now();
    r.handle.stop();
    await sleep(1_000);
    expect(r.exited()).toBeUndefined(); // it ignores SIGTERM, and nothing in the service kills it on a timer
    const killAt = performance.now();
    r.handle.kill();
    await r.waitFor(() => !!r.exited(), 'exit');
    const after = r.exited()!.atMs - killAt;
    console.log(`ignore-sigterm: STOP at 0, KILL at ${Math.round(killAt - stopAt)} ms → RUNNER_EXITED ${Math.round(after)} ms after KILL`);
    expect(after).toBeLessThan(2_000);
    expect(r.exited()).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    expect(r.records.find((x) => x.msg === "SIGKILL to the runner's processes: the drain grace is over")).toBeDefined();
    expect(types(r.events)).not.toContain('JOB_COMPLETED');
    await assertNothingLeft(pid);
  });

  asUser("'crash': no listening, stderr handed on as stderr, its error line a RUNNER_FATAL, RUNNER_EXITED with run.sh's 0", async () => {
    const r = start(await prepare({ override: { behavior: 'crash' } }));
    await r.waitFor(() => !!r.exited(), 'exit');
    expect(types(r.events)).toEqual(['RUNNER_SPAWNED', 'RUNNER_FATAL', 'RUNNER_EXITED']);
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'RUNNER_FATAL', reason: 'error', line: 'An error occurred: fake crash' }));
    expect(r.exited()).toMatchObject({ exitCode: 0, signal: null });
    expect(r.lines).toContainEqual(expect.objectContaining({ line: 'An error occurred: fake crash', stream: 'stderr' }));
  });

  asUser('a job whose name reads like an error line is still a job: no RUNNER_FATAL', async () => {
    const jobName = 'lint (node version 16 is deprecated); The runner registration has been deleted from the server';
    const r = start(await prepare({ override: { behavior: 'succeed', jobName } }));
    await r.waitFor(() => !!r.exited(), 'exit');
    expect(types(r.events)).toEqual(['RUNNER_SPAWNED', 'RUNNER_LISTENING', 'JOB_STARTED', 'JOB_COMPLETED', 'RUNNER_EXITED']);
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'JOB_STARTED', jobName }));
  });

  asUser("'lines': 50,000 lines all reach onLine in order before RUNNER_EXITED", async () => {
    const r = start(await prepare({ override: { behavior: 'lines', lines: 50_000 } }));
    await r.waitFor(() => !!r.exited(), 'exit', 15_000);
    const numbered = r.lines.filter((l) => /^line \d+$/.test(l.line)).map((l) => Number(l.line.slice(5)));
    expect(numbered.length).toBe(50_000);
    expect(numbered.every((n, i) => n === i + 1)).toBe(true);
    expect(types(r.events)).toEqual(['RUNNER_SPAWNED', 'RUNNER_LISTENING', 'JOB_STARTED', 'JOB_COMPLETED', 'RUNNER_EXITED']);
  });

  asUser('redacts secrets from every line before anything sees it', async () => {
    const h = await prepare({ override: { behavior: 'succeed', jobName: 'deploy-with-cache-token-secret-123' } });
    const r = start(h);
    await r.waitFor(() => !!r.exited(), 'exit');
    expect(r.lines.some((l) => l.line.includes(CACHE_TOKEN))).toBe(false);
    expect(r.lines.map((l) => l.line)).toContainEqual(expect.stringContaining('Running job: deploy-with-***'));
    expect(r.events[2]).toMatchObject({ type: 'JOB_STARTED', jobName: 'deploy-with-***' });
  });

  asUser('processes left behind when run.sh exits (own process group, no pipe) are killed', async () => {
    const h = await prepare();
    // A run.sh whose "worker" outlives it, in a process group of its own, not holding the output.
    await writeFile(
      join(h.dir, 'run.sh'),
      '#!/bin/bash\nset -m\nsleep 300 >/dev/null 2>&1 </dev/null &\necho "$!" > "$(dirname "$0")/orphan.pid"\necho bye\nexit 3\n',
      { mode: 0o755 },
    );
    await chmod(join(h.dir, 'run.sh'), 0o755);
    const r = start(h);
    await r.waitFor(() => !!r.exited(), 'exit');
    expect(r.exited()).toMatchObject({ exitCode: 3 });
    const orphan = Number(await readFile(join(h.dir, 'orphan.pid'), 'utf8'));
    expect(orphan).toBeGreaterThan(0);
    // Killed at once; it may stay a zombie until pid 1 gets round to reaping it.
    const state = () => {
      try {
        return readFileSync(`/proc/${orphan}/stat`, 'utf8').split(') ')[1]![0];
      } catch {
        return 'gone';
      }
    };
    expect(['gone', 'Z']).toContain(state());
    expect(sessionMembers(r.handle.pid!)).toEqual([]);
    // At least the orphan; a bash subshell of run.sh may still be alive at that instant too.
    const killed = r.records.find((x) => x.msg === 'killed runner processes left after run.sh exited') as { leftovers?: number } | undefined;
    expect(killed?.leftovers).toBeGreaterThanOrEqual(1);
  });

  asUser('stopping the actor mid-job SIGKILLs everything and sends nothing more', async () => {
    const h = await prepare({ override: { behavior: 'hang' } });
    const events: AnyEventObject[] = [];
    const { logger } = captureLogger();
    const parent = setup({ actors: { runner: runnerProcess({ logger, vault: h.vault, env: AGENT_ENV, onLine: () => {} }) } }).createMachine({
      invoke: { id: 'runner', src: 'runner', input: { settings: h.settings, jobSpec: h.jobSpec, runner: h.runner, user: h.user, hooks: h.hooks } },
      on: { '*': { actions: ({ event }) => events.push(event) } },
    });
    const actor = createActor(parent).start();
    const deadline = Date.now() + 8000;
    while (!events.some((e) => e.type === 'JOB_STARTED') && Date.now() < deadline) await sleep(10);
    const listener = spawnSync('pgrep', ['-f', `${h.dir}/bin/Runner.Listener`], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
    const sid = Number(spawnSync('ps', ['-o', 'sid=', '-p', listener!], { encoding: 'utf8' }).stdout.trim());
    expect(sid).toBeGreaterThan(1);
    expect(sessionMembers(sid).length).toBeGreaterThanOrEqual(3);

    actor.stop(); // the machine leaving draining
    expect(sessionMembers(sid)).toEqual([]); // synchronous: gone when stop() returns
    await sleep(200);
    await assertNothingLeft(sid);
    expect(events.some((e) => e.type === 'RUNNER_EXITED')).toBe(false);
  });

  asUser('STOP through the actor with graceMs 0 kills at once', async () => {
    const h = await prepare({ override: { behavior: 'hang' } });
    const events: (AnyEventObject & { atMs?: number })[] = [];
    const { logger } = captureLogger();
    const parent = setup({ actors: { runner: runnerProcess({ logger, vault: h.vault, env: AGENT_ENV, onLine: () => {} }) } }).createMachine({
      invoke: { id: 'runner', src: 'runner', input: { settings: h.settings, jobSpec: h.jobSpec, runner: h.runner, user: h.user, hooks: h.hooks } },
      on: { '*': { actions: ({ event }) => events.push({ ...event, atMs: performance.now() }) } },
    });
    const actor = createActor(parent).start();
    const deadline = Date.now() + 8000;
    while (!events.some((e) => e.type === 'JOB_STARTED') && Date.now() < deadline) await sleep(10);
    const stopAt = performance.now();
    actor.getSnapshot().children.runner!.send({ type: 'KILL' });
    while (!events.some((e) => e.type === 'RUNNER_EXITED') && Date.now() < deadline + 5000) await sleep(5);
    const exited = events.find((e) => e.type === 'RUNNER_EXITED')!;
    expect(exited).toMatchObject({ signal: 'SIGKILL' });
    expect(exited.atMs! - stopAt).toBeLessThan(1000);
    actor.stop();
  });

  it('RUNS_FLEET_RUNNER_USER=root: RUNNER_ALLOW_RUNASROOT=1, and only then', async () => {
    const h = await prepare({ runnerUser: 'root' });
    const r = start(h);
    await r.waitFor(() => !!r.exited(), 'exit');
    expect(r.exited()).toMatchObject({ exitCode: 0 });
    expect(types(r.events)).toEqual(['RUNNER_SPAWNED', 'RUNNER_LISTENING', 'JOB_STARTED', 'JOB_COMPLETED', 'RUNNER_EXITED']);
    const env = await readRunnerEnv(h.dir);
    expect(env.RUNNER_ALLOW_RUNASROOT).toBe('1');
    expect(env.USER).toBe('root');
    expect((await stat(join(h.dir, '_diag/env.txt'))).uid).toBe(0);
  });

  asUser('hooks the runner user cannot run are left out of the env (they would fail the job): registering decides', async () => {
    const prepared = await prepare({ register: false });
    const closed = join(dirname(prepared.stateDir), 'closed');
    await mkdir(closed, { mode: 0o700 }); // a parent the runner user cannot pass
    const h = { ...prepared, settings: { ...prepared.settings, stateDir: join(closed, 'state') } };
    const { logger, records } = captureLogger();
    const registered = await registerRunnerService({ settings: h.settings, jobSpec: h.jobSpec, runner: h.runner, user: h.user }, { logger, vault: h.vault, env: AGENT_ENV });
    expect(registered.hooks).toBeUndefined();
    expect(records.some((x) => x.level === 'warn' && /job hooks/.test(x.msg))).toBe(true);
    const r = start({ ...h, hooks: registered.hooks });
    await r.waitFor(() => !!r.exited(), 'exit');
    expect(r.exited()).toMatchObject({ exitCode: 0 });
    const env = await readRunnerEnv(h.dir);
    expect(env.ACTIONS_RUNNER_HOOK_JOB_STARTED).toBeUndefined();
    expect(env.ACTIONS_RUNNER_HOOK_JOB_COMPLETED).toBeUndefined();
    expect(env.ACTIONS_CACHE_URL).toBe(CACHE_URL);
  });

  asUser('without setpriv: switches user with spawn uid/gid', async () => {
    const h = await prepare();
    const events: AgentEvent[] = [];
    const { logger } = captureLogger();
    const handle = startRunnerProcess({
      settings: h.settings,
      jobSpec: h.jobSpec,
      runner: h.runner,
      hooks: h.hooks,
      logger,
      vault: h.vault,
      env: AGENT_ENV,
      user: await resolveRunnerUser(h.settings, { setpriv: null }),
      onLine: () => {},
      send: (e) => events.push(e),
    });
    await handle.done;
    expect(events.at(-1)).toEqual({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
    expect((await stat(join(h.dir, '_diag/env.txt'))).uid).toBe(user.uid);
  });

  it('run.sh missing: RUNNER_EXITED {exitCode: null} and an error logged', async () => {
    const h = await prepare({ runnerUser: 'root', register: false });
    await rm(join(h.dir, 'run.sh'));
    const r = start(h);
    await r.handle.done;
    expect(r.events).toEqual([expect.objectContaining({ type: 'RUNNER_EXITED', exitCode: null, signal: null })]);
    expect(r.records.find((x) => x.level === 'error')).toMatchObject({ msg: 'run.sh is missing: the runner cannot start' });
  });
});
