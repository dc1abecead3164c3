/**
 * Nothing of the job outlives draining, however it detached (a `setsid` escapes run.sh's
 * session; a double fork escapes its process group). run.sh and config.sh go into a cgroup of
 * their own, below the agent's (the unit has `Delegate=yes`), and a process cannot leave a
 * cgroup without write access to another one's `cgroup.procs`, which only root has. Killing
 * them all is then one write to `cgroup.kill` (cgroup v2, Linux 5.14+), or a freeze and a kill
 * of every member on older kernels.
 *
 * Where no cgroup v2 is there to use, the fallback is a scan of /proc for every process of
 * the runner's uid, killed in rounds until none is left.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CgroupFs {
  /** /proc/self/mountinfo and /proc/self/cgroup, for where the agent's own cgroup is. */
  procRoot: string;
}

/** The cgroup v2 directory the agent runs in (`<mount><path>`), if any. */
export function ownCgroupDir(fs: CgroupFs = { procRoot: '/proc' }): string | undefined {
  let mountinfo: string;
  let membership: string;
  try {
    mountinfo = readFileSync(join(fs.procRoot, 'self/mountinfo'), 'utf8');
    membership = readFileSync(join(fs.procRoot, 'self/cgroup'), 'utf8');
  } catch {
    return undefined;
  }
  // `4 1 0:26 / /sys/fs/cgroup rw,... - cgroup2 cgroup2 rw`
  const mount = mountinfo
    .split('\n')
    .map((line) => line.split(' - '))
    .find(([, after]) => after?.startsWith('cgroup2 '))?.[0]
    ?.split(' ')[4];
  const path = membership.split('\n').find((line) => line.startsWith('0::'))?.slice(3);
  if (!mount || path === undefined) return undefined;
  return join(mount, path);
}

export class JobCgroup {
  private constructor(readonly dir: string) {}

  /** A cgroup named `name` below the agent's own; undefined when none can be made (no cgroup v2, not root). */
  static open(name: string, fs?: CgroupFs): JobCgroup | undefined {
    const own = ownCgroupDir(fs);
    if (!own || !existsSync(join(own, 'cgroup.procs'))) return undefined;
    const dir = join(own, name);
    try {
      mkdirSync(dir, { recursive: true });
      if (!existsSync(join(dir, 'cgroup.procs'))) return undefined; // not a cgroup fs after all
      return new JobCgroup(dir);
    } catch {
      return undefined;
    }
  }

  /** Move `pid` (and so everything it starts from now on) into the cgroup. */
  add(pid: number): boolean {
    try {
      writeFileSync(join(this.dir, 'cgroup.procs'), String(pid));
      return true;
    } catch {
      return false;
    }
  }

  pids(): number[] {
    try {
      return readFileSync(join(this.dir, 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  }

  /**
   * SIGKILL every process in the cgroup, synchronously (usable in an exit handler): cgroup.kill
   * where the kernel has it, else freeze, kill each member, thaw. Returns how many there were.
   */
  killAll(): number {
    const before = this.pids().length;
    if (before === 0) return 0;
    const kill = join(this.dir, 'cgroup.kill');
    if (existsSync(kill)) {
      try {
        writeFileSync(kill, '1');
        return before;
      } catch {
        /* fall through to the member-by-member kill */
      }
    }
    const freeze = join(this.dir, 'cgroup.freeze');
    const canFreeze = existsSync(freeze);
    if (canFreeze) writeFileSafely(freeze, '1');
    for (let round = 0; round < 20; round++) {
      const pids = this.pids();
      if (pids.length === 0) break;
      for (const pid of pids) signalQuietly(pid, 'SIGKILL');
    }
    if (canFreeze) writeFileSafely(freeze, '0');
    return before;
  }

  /** Remove the (empty) cgroup; best effort. */
  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      /* still populated for a moment, or gone */
    }
  }
}

function writeFileSafely(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch {
    /* best effort */
  }
}

function signalQuietly(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** `/proc/<pid>/<file>` of every process there is (one that exited meanwhile is left out). */
export function procFiles(procRoot: string, file: 'stat' | 'status'): { pid: number; text: string }[] {
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return [];
  }
  const found: { pid: number; text: string }[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      found.push({ pid: Number(entry), text: readFileSync(join(procRoot, entry, file), 'utf8') });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Pids of live processes whose real or effective uid is `uid`, from /proc. */
export function processesOfUid(uid: number, procRoot = '/proc'): number[] {
  const pids: number[] = [];
  for (const { pid, text } of procFiles(procRoot, 'status')) {
    const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(text);
    const state = /^State:\s+(\S)/m.exec(text)?.[1];
    if (!uids || state === 'Z' || state === 'X') continue;
    if (Number(uids[1]) === uid || Number(uids[2]) === uid) pids.push(pid);
  }
  return pids;
}

/**
 * The fallback where no cgroup is there: SIGKILL every process of the runner's uid, in rounds
 * (a process may fork while we kill). Never for uid 0 or the agent's own uid.
 */
export function killProcessesOfUid(uid: number, procRoot = '/proc', kill: (pid: number) => boolean = (pid) => signalQuietly(pid, 'SIGKILL')): number {
  if (uid === 0 || uid === process.getuid?.()) return 0;
  let killed = 0;
  for (let round = 0; round < 20; round++) {
    const pids = processesOfUid(uid, procRoot);
    if (pids.length === 0) break;
    for (const pid of pids) if (kill(pid)) killed++;
  }
  return killed;
}
