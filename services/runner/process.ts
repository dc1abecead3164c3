/**
 * `run.sh` as a supervised process.
 *
 * - Spawned as the runner user, in its own session and process group (`detached`),
 *   with the allow-listed environment (runner-env.ts); in JIT mode the config is already
 *   in the runner root (registering wrote its files), so no secret rides in argv or env.
 * - stdout and stderr are read as bytes, split into lines (runner-output.ts), each
 *   line redacted, handed to `onLine`, and parsed into machine events.
 * - `RUNNER_EXITED` is sent once the leader exited AND its output was fully read.
 * - `stop()`: SIGTERM to the process group (the real run.sh forwards it to the listener
 *   as SIGINT). `kill()`: SIGKILL to all of the job. When one follows the other is the
 *   chart's (draining.signalling → killing); this object keeps no timer of its own. The
 *   real run.sh puts the listener in a process group of its own (`set -m`), so "the
 *   runner" is the whole SESSION that run.sh leads, plus its cgroup and its uid: once the
 *   leader is gone, on `kill()`, and on `dispose()` (and the agent's own exit), every
 *   process left of it is SIGKILLed. The runner never outlives this object.
 */
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { InstalledRunner, JobSpec, RunnerEvent } from '../domain.js';
import { describeError } from '../errors.js';
import { JobCgroup, killProcessesOfUid, procFiles } from './job-cgroup.js';
import { annotation, writeNotice, type JobHookPaths } from './job-hooks.js';
import { buildRunnerEnv } from './env.js';
import { LineRedactor } from '../logs/line-redactor.js';
import { fatalRunnerLine, parseRunnerLine } from './output.js';
import { commandAs, type RunnerUser } from './user.js';
import type { SecretVault } from '../secrets.js';
import type { Env, Settings } from '../settings.js';

export type OutputStream = 'stdout' | 'stderr';
/** Receives every output line of the runner, already redacted. */
/** `continued`: this piece continues the previous line (a line longer than the piece limit). */
export type OnRunnerLine = (line: string, timestampMs: number, stream: OutputStream, continued: boolean) => void;
export type { RunnerEvent } from '../domain.js';

/** After the leader exited and leftovers were killed, how long the pipes may take to close (well inside the machine's KILL_WAIT_MS). */
export const OUTPUT_DRAIN_MS = 2_000;

// ---------------------------------------------------------------------------------------
// Process trees: everything in the session run.sh leads.

export interface ProcInfo {
  pid: number;
  pgid: number;
  sid: number;
  state: string;
}

/** Live (non-zombie) processes of a session, from /proc. */
export function sessionMembers(sid: number, procRoot = '/proc'): ProcInfo[] {
  const members: ProcInfo[] = [];
  for (const { pid, text } of procFiles(procRoot, 'stat')) {
    // pid (comm) state ppid pgrp session ... — comm may hold spaces and parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const info = { pid, state: fields[0] ?? '?', pgid: Number(fields[2]), sid: Number(fields[3]) };
    if (info.sid === sid && info.state !== 'Z' && info.state !== 'X') members.push(info);
  }
  return members;
}

function signalQuietly(target: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(target, signal);
    return true;
  } catch {
    return false; // ESRCH: already gone
  }
}

/**
 * SIGKILL the process group `sid` and every process left in session `sid`, until none is
 * left (a few rounds: a process may fork while we kill). Synchronous: usable in an exit handler.
 * Returns how many processes were signalled.
 */
export function killSession(sid: number, procRoot = '/proc'): number {
  let killed = 0;
  signalQuietly(-sid, 'SIGKILL');
  for (let round = 0; round < 20; round++) {
    const members = sessionMembers(sid, procRoot);
    if (members.length === 0) break;
    for (const pgid of new Set(members.map((m) => m.pgid))) signalQuietly(-pgid, 'SIGKILL');
    for (const m of members) if (signalQuietly(m.pid, 'SIGKILL')) killed++;
  }
  return killed;
}

// ---------------------------------------------------------------------------------------

let cgroupSerial = 0;

/**
 * The command, entering the job cgroup before run.sh exists: a root shell writes its own pid to
 * the cgroup, then execs setpriv, which drops to the runner user and execs run.sh — same pid, so
 * nothing run.sh forks is ever outside. Without setpriv (uid/gid spawn options), the parent moves
 * it right after the spawn instead (and the uid scan backs that up).
 */
export function enterCgroupFirst(
  command: { file: string; args: string[]; uid?: number; gid?: number },
  cgroup: JobCgroup | undefined,
): { file: string; args: string[]; uid?: number; gid?: number; inCgroup: boolean } {
  if (!cgroup || command.uid !== undefined || !command.file.endsWith('setpriv')) return { ...command, inCgroup: false };
  return { file: '/bin/sh', args: ['-c', 'echo $$ > "$0" && exec "$@"', join(cgroup.dir, 'cgroup.procs'), command.file, ...command.args], inCgroup: true };
}

/** A process the agent starts for the job must not keep the agent's negative OOM score. */
export function raiseOomScoreAdj(pid: number): void {
  try {
    const current = Number(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());
    if (current < 0) writeFileSync(`/proc/${pid}/oom_score_adj`, '0');
  } catch {
    /* not Linux, or gone already */
  }
}

export interface RunnerProcessOptions {
  settings: Settings;
  jobSpec: JobSpec;
  runner: InstalledRunner;
  logger: Logger;
  vault: SecretVault;
  onLine: OnRunnerLine;
  /** Called with run.sh's pid (= its session id) once it runs, and its job cgroup: the reaper watches both. */
  onSpawn?: (pid: number, cgroupDir?: string) => void;
  /** Machine events (sendBack). */
  send: (event: RunnerEvent) => void;
  /** The agent's environment, for the allow-list (default `process.env`). */
  env?: Env;
  /** The runner user, as registering resolved it (the machine always gives it). */
  user: RunnerUser;
  /** The job hooks registering installed, when the runner user can run them. */
  hooks?: JobHookPaths;
  /** Wall clock for line timestamps (default Date.now). */
  now?: () => number;
  outputDrainMs?: number;
}

export interface RunnerProcessHandle {
  /**
   * Graceful stop: SIGTERM to run.sh's process group (sent as soon as it is spawned, if it is not yet).
   * `notice` (why) is put first where the job-completed hook prints it, as an `::error` annotation.
   */
  stop(notice?: string): void;
  /** A `::warning` annotation for the job's log (the job-completed hook prints it), the job going on. */
  note(notice: string): void;
  /** SIGKILL to all of the job: its session, its cgroup, its uid. */
  kill(): void;
  /** The owner is done: kill whatever is left, send no more events. */
  dispose(): void;
  /** run.sh's pid (= its process group and session id), once spawned. */
  readonly pid: number | undefined;
  /** Resolves after RUNNER_EXITED was sent (or would have been, after dispose). */
  readonly done: Promise<void>;
}

/** Start run.sh. Never throws: every failure ends in RUNNER_EXITED (and an error logged). */
export function startRunnerProcess(options: RunnerProcessOptions): RunnerProcessHandle {
  return new RunnerProcess(options).handle();
}

class RunnerProcess {
  private readonly log: Logger;
  private readonly now: () => number;
  private pid: number | undefined;
  private disposed = false;
  private exitSent = false;
  private leaderExited = false;
  /** STOP or KILL came before run.sh was spawned: carried out as soon as it is. */
  private requested: { stop?: number; kill?: number } = {};
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((r) => (this.resolveDone = r));
  private cgroup: JobCgroup | undefined;
  private runnerUid: number | undefined;
  /** Annotation lines for the job's log so far (job-hooks.ts `writeNotice`). */
  private readonly notices: string[] = [];
  private readonly onAgentExit = () => {
    if (this.pid !== undefined) this.killEverything();
  };

  constructor(private readonly o: RunnerProcessOptions) {
    this.log = o.logger.child({ component: 'runner' });
    this.now = o.now ?? Date.now;
    void this.run().catch((error: unknown) => {
      this.log.error({ err: describeError(error) }, 'runner process supervision failed');
      this.finish(null, null);
    });
  }

  handle(): RunnerProcessHandle {
    const self = this;
    return {
      stop: (notice?: string) => {
        if (notice) this.note(annotation('error', notice), true);
        this.stop();
      },
      note: (notice: string) => this.note(annotation('warning', notice)),
      kill: () => this.kill('the drain grace is over'),
      dispose: () => this.dispose(),
      get pid() {
        return self.pid;
      },
      done: this.done,
    };
  }

  private async run(): Promise<void> {
    const { jobSpec, runner, vault, user, hooks } = this.o;

    const runSh = join(runner.dir, 'run.sh');
    try {
      await access(runSh);
    } catch (error) {
      this.log.error({ err: describeError(error), path: runSh }, 'run.sh is missing: the runner cannot start');
      return this.finish(null, null);
    }
    if (this.disposed) return this.finish(null, null);

    const env: Record<string, string> = buildRunnerEnv({
      agentEnv: this.o.env ?? process.env,
      user,
      jobSpec,
      cacheToken: vault.get('cache_token'),
      hooks, // only when the runner user can run them (registering checked): a hook it cannot run would fail the job
      vault,
    });
    // JIT mode: registering decoded the config into the runner root (jit-files.ts); run.sh starts
    // configured, and the config is in no process's environment for the job to read.

    // Everything run.sh starts stays in this cgroup, however it detaches (services/runner/job-cgroup.ts).
    this.cgroup = user.switchUser ? JobCgroup.open(`runs-fleet-runner-${process.pid}-${++cgroupSerial}`) : undefined;
    this.runnerUid = user.switchUser ? user.uid : undefined;
    if (user.switchUser && !this.cgroup) this.log.warn('no cgroup v2 to hold the runner: leftovers are found by uid instead');

    const command = enterCgroupFirst(commandAs(user, runSh, []), this.cgroup);
    const subprocess = execa(command.file, command.args, {
      cwd: runner.dir,
      env,
      extendEnv: false,
      uid: command.uid,
      gid: command.gid,
      detached: true, // own session and process group: signals reach the whole runner
      cleanup: false, // we kill the whole session ourselves (on stop, dispose and agent exit)
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      encoding: 'buffer',
      reject: false,
      forceKillAfterDelay: false,
    });
    this.pid = subprocess.pid;
    // Spawn failures (ENOENT, EACCES) and anything else surface on the result; never reject.
    const result = subprocess.then(
      (r) => r,
      (error: unknown) => ({ failed: true, shortMessage: describeError(error) }) as { failed: boolean; shortMessage: string },
    );
    if (this.pid === undefined) {
      const r = await result;
      this.log.error({ err: vault.redact(r.shortMessage ?? 'spawn failed'), path: runSh }, 'run.sh could not be started');
      return this.finish(null, null);
    }
    // Into the cgroup (already done before exec when setpriv switches the user: see enterCgroupFirst),
    // and out of the agent's OOM protection (the unit's OOMScoreAdjust=-500 must not make a
    // memory-hungry job outlive sshd).
    if (this.cgroup && !command.inCgroup && !this.cgroup.add(this.pid)) this.log.warn({ cgroup: this.cgroup.dir }, 'run.sh could not be moved into its cgroup');
    raiseOomScoreAdj(this.pid);
    process.on('exit', this.onAgentExit);
    this.o.onSpawn?.(this.pid, this.cgroup?.dir);
    this.log.info({ pid: this.pid, user: user.name, uid: user.uid, mode: jobSpec.mode }, 'run.sh started');
    if (this.disposed || this.requested.kill !== undefined) this.killEverything();
    else if (this.requested.stop !== undefined) this.sendStop();
    else this.send({ type: 'RUNNER_SPAWNED', pid: this.pid });

    const ended = [this.readLines(subprocess.stdout, 'stdout'), this.readLines(subprocess.stderr, 'stderr')];
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      if (subprocess.exitCode !== null || subprocess.signalCode !== null) resolve([subprocess.exitCode, subprocess.signalCode]);
      else subprocess.once('exit', (c, s) => resolve([c, s]));
    });
    this.leaderExited = true;
    // The runner is over once run.sh is: whatever is left of it — its session, and whatever
    // detached from that (setsid, double forks) — is an orphan of the job.
    const leftovers = this.killEverything();
    if (leftovers > 0) this.log.warn({ leftovers }, 'killed runner processes left after run.sh exited');

    const drainMs = this.o.outputDrainMs ?? OUTPUT_DRAIN_MS;
    let drainTimer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.all(ended).then(() => true),
      new Promise<false>((r) => (drainTimer = setTimeout(() => r(false), drainMs))),
    ]);
    clearTimeout(drainTimer);
    if (!drained) {
      this.log.warn({ drainMs }, "run.sh exited but its output did not close (a process outside its session holds it): giving up on it");
      subprocess.stdout?.destroy();
      subprocess.stderr?.destroy();
    }
    void result; // settled by now or soon; never rejects
    this.log.info({ exitCode: code, signal }, 'run.sh exited');
    this.finish(code, signal);
  }

  /** Split a stream into lines; resolves when it ended (or was destroyed). */
  private readLines(stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr'): Promise<void> {
    if (!stream) return Promise.resolve();
    // Split, decode and redact in one place: a secret split across chunks or across the pieces
    // of a very long line is still caught, and `::add-mask::` values join the vault.
    const splitter = new LineRedactor(this.o.vault, (line, continued) => this.handleLine(line, continued, name));
    return new Promise<void>((resolve) => {
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        splitter.end();
        resolve();
      };
      stream.on('data', (chunk: Buffer | string) => splitter.push(chunk));
      stream.once('end', finish);
      stream.once('close', finish);
      stream.once('error', (error: Error) => {
        this.log.warn({ err: describeError(error), stream: name }, 'error reading the runner output');
        finish();
      });
    });
  }

  private handleLine(line: string, continued: boolean, stream: OutputStream): void {
    const timestampMs = this.now();
    try {
      this.o.onLine(line, timestampMs, stream, continued);
    } catch (error) {
      this.log.warn({ err: describeError(error) }, 'runner line handler failed');
    }
    if (continued) return;
    // The runner's own lines first: a job's display name is printed raw inside them, and must
    // never read as an error line. Error lines come on stderr (Terminal.WriteError), the rest on stdout.
    const parsed = stream === 'stdout' ? parseRunnerLine(line) : undefined;
    if (!parsed) {
      const fatal = fatalRunnerLine(line);
      if (fatal) {
        this.log.warn({ reason: fatal.reason, stream }, 'the runner printed a line after which it will not get its job');
        this.send({ type: 'RUNNER_FATAL', reason: fatal.reason, line: fatal.line });
      }
      return;
    }
    switch (parsed.kind) {
      case 'connected':
        this.log.info('runner connected to GitHub');
        return;
      case 'listening':
        this.log.info('runner listening for jobs');
        return this.send({ type: 'RUNNER_LISTENING' });
      case 'job-started':
        this.log.info({ jobName: parsed.jobName }, 'job started');
        return this.send({ type: 'JOB_STARTED', jobName: parsed.jobName, at: new Date(timestampMs).toISOString() });
      case 'job-completed':
        this.log.info({ jobName: parsed.jobName, result: parsed.result }, 'job completed');
        return this.send({ type: 'JOB_COMPLETED', jobName: parsed.jobName, result: parsed.result });
    }
  }

  private send(event: RunnerEvent): void {
    if (this.disposed) return;
    try {
      this.o.send(event);
    } catch (error) {
      this.log.error({ err: describeError(error), event: event.type }, 'sending a runner event failed');
    }
  }

  /** `always`: the stop's reason, kept however many warnings came before it. */
  private note(notice: string, always = false): void {
    if (!this.o.hooks || (!always && this.notices.length >= 20) || this.notices.includes(notice)) return;
    this.notices.push(notice);
    try {
      writeNotice(this.o.hooks.jobNotice, this.notices);
    } catch (error) {
      this.log.warn({ err: describeError(error) }, "the notice for the job's log could not be written");
    }
  }

  private stop(): void {
    if (this.leaderExited || this.disposed || this.requested.stop !== undefined) return;
    this.requested.stop = performance.now();
    if (this.pid !== undefined) this.sendStop();
    // else: sent as soon as run.sh is spawned
  }

  private sendStop(): void {
    const pid = this.pid!;
    signalQuietly(-pid, 'SIGTERM');
    const latencyMs = Math.round((performance.now() - this.requested.stop!) * 100) / 100;
    this.log.info({ pid, latencyMs }, 'sent SIGTERM to the runner process group');
  }

  private kill(why: string): void {
    if (this.leaderExited || this.disposed) return;
    this.requested.kill ??= performance.now();
    if (this.pid === undefined) return; // killed as soon as it is spawned
    const killed = this.killEverything();
    const sinceStopMs = this.requested.stop !== undefined ? Math.round(performance.now() - this.requested.stop) : undefined;
    this.log.warn({ pid: this.pid, killed, sinceStopMs }, `SIGKILL to the runner's processes: ${why}`);
  }

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.pid !== undefined) {
      const killed = this.killEverything();
      if (killed > 0) this.log.warn({ pid: this.pid, killed }, 'runner process actor stopped: SIGKILL to what was left');
    }
    this.cgroup?.remove();
    // Output still flows to onLine until the pipes close; events are no longer sent.
  }

  /**
   * SIGKILL all of the runner: run.sh's session, the job cgroup (what escaped the session), and,
   * with no cgroup, every process of the runner's uid. Synchronous: usable in an exit handler.
   */
  private killEverything(): number {
    let killed = this.pid !== undefined ? killSession(this.pid) : 0;
    if (this.cgroup) {
      for (let round = 0; round < 10 && this.cgroup.pids().length > 0; round++) killed += this.cgroup.killAll();
    }
    // And every process of the runner's uid: what left the cgroup through a root daemon (cron, at,
    // an ssh login with a planted key) runs elsewhere, but still as the runner.
    if (this.runnerUid !== undefined) killed += killProcessesOfUid(this.runnerUid);
    return killed;
  }

  private finish(code: number | null, signal: string | null): void {
    if (this.exitSent) return;
    this.exitSent = true;
    this.cgroup?.remove();
    process.removeListener('exit', this.onAgentExit);
    this.send({ type: 'RUNNER_EXITED', exitCode: code, signal });
    this.resolveDone();
  }
}
