/**
 * The runner must not outlive the agent, even when the agent is SIGKILLed or dies
 * of OOM and can run no cleanup. A tiny companion shell holds the read end of a pipe
 * whose write end only the agent holds: when the agent dies, however it dies, the
 * kernel closes that end, the companion reads EOF and SIGKILLs every process of the
 * runner's session. (Under systemd the unit's cgroup is killed too; this covers the
 * window before that, and any agent run outside systemd.)
 */
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = [
  // One line each: a session id (config.sh's, run.sh's) or a job cgroup's path.
  'sids= cgs=',
  'while read -r line; do case "$line" in /*) cgs="$cgs $line" ;; *) sids="$sids $line" ;; esac; done',
  // The job cgroup first: everything of the job is in it, however it detached.
  'for cg in $cgs; do if [ -e "$cg/cgroup.kill" ]; then echo 1 > "$cg/cgroup.kill"; else for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; fi; done',
  // Every process of those sessions (the listener has its own process group, not its own session).
  'for sid in $sids; do for i in 1 2 3; do pkill -KILL -s "$sid" 2>/dev/null || break; sleep 0.2; done; done',
].join('\n');

export class RunnerReaper {
  private child: ChildProcess | undefined;

  /** Start the companion (idempotent). It costs one idle `sh`. */
  start(): void {
    if (this.child) return;
    this.child = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    this.child.on('error', () => (this.child = undefined));
    // Not a reason to keep the agent's event loop alive.
    this.child.unref();
    (this.child.stdin as unknown as { unref?: () => void })?.unref?.();
  }

  /** A session to end if the agent dies: config.sh's or run.sh's pid (each is spawned as a session leader). */
  watch(sid: number): void {
    this.child?.stdin?.write(`${sid}\n`);
  }

  /** A job cgroup (services/runner/job-cgroup.ts) to kill whole if the agent dies. */
  watchCgroup(dir: string): void {
    if (dir.startsWith('/') && !/\s/.test(dir)) this.child?.stdin?.write(`${dir}\n`);
  }

  /** Normal end: the agent already killed the runner; the companion checks once more and exits. */
  stop(): void {
    this.child?.stdin?.end();
    this.child = undefined;
  }
}
