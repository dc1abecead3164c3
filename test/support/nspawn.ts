/**
 * The instance in a box: a real systemd as PID 1 of a systemd-nspawn container, booted from a
 * cached Debian base rootfs with a fresh overlay per run (issue 14).
 *
 * - `ensureBaseRootfs()` builds the base once with debootstrap (Debian's packages only) into
 *   /var/cache/runs-fleet-test/rootfs-<suite>-<key>, atomically (a temporary dir, then a rename)
 *   and under a lock (flock), so that two jest processes never build it at once. The key hashes
 *   the suite, the variant, the package list and the mirror: changing any of them rebuilds it.
 * - `Container.create()` mounts an overlay (lowerdir = the base, upper/work in a temporary dir)
 *   and makes a cgroup of its own on the host's cgroup2 mount, so the `payload/` and
 *   `supervisor/` cgroups nspawn leaves behind are ours to remove, and `cgroup.kill` ends
 *   everything of one container (nspawn included) at once.
 * - `boot()` starts `systemd-nspawn --boot --register=no --keep-unit` (no host D-Bus is needed),
 *   cgroup v2 inside (`SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1`, as on EC2), the host's network
 *   namespace (moto and the fakes on 127.0.0.1 are reachable), `CAP_NET_ADMIN` kept (the agent is
 *   root on an instance and sets up its IMDS firewall). Every boot is bounded: a container that
 *   has not ended by its deadline is killed and the boot reports `timedOut`.
 * - `teardown()` kills what is left, unmounts, removes the cgroups and the temporary dir —
 *   unless RFA_KEEP_CONTAINER=1, which keeps the overlay mounted and prints how to look inside
 *   (docs/testing.md).
 *
 * Nothing here powers off the host: "poweroff" inside the container is nspawn exiting, and the
 * only signal sent to a container's PID 1 is systemd's own poweroff request (SIGRTMIN+4).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { constants as os } from 'node:os';
import { join, relative } from 'node:path';

export const SUITE = 'bookworm';
export const VARIANT = 'minbase';
/**
 * What the base image has beyond minbase, all of it on every AMI: systemd as init (and dbus, which
 * its tools expect), nftables for the agent's IMDS block (it refuses to run a job without nft or
 * iptables), procps (the agent's reaper uses pkill), and sudo, so that "the runner user has no
 * sudo" is a statement about sudo's rules rather than about a missing binary.
 */
export const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'nftables', 'procps', 'sudo'];
export const CACHE_DIR = process.env.RFA_NSPAWN_CACHE ?? '/var/cache/runs-fleet-test';
/** Keep the container's overlay after a test (mounted), for a look inside by hand. */
export const KEEP = process.env.RFA_KEEP_CONTAINER === '1';

const SIGRTMIN = 34; // glibc's SIGRTMIN on Linux; systemd: SIGRTMIN+4 = poweroff
export const SIG_POWEROFF = SIGRTMIN + 4;
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------------------------------------------------------------------------------------
// Prerequisites and the base rootfs

/** The host's cgroup2 mount point (`/sys/fs/cgroup` on a pure v2 host, `/sys/fs/cgroup/unified` on a hybrid one). */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [before, after] = line.split(' - ');
    if (after?.startsWith('cgroup2 ')) return before!.split(' ')[4];
  }
  return undefined;
}

/** Why this machine cannot boot a container here, or [] when it can. */
export function nspawnProblems(): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('the tests do not run as root (nspawn, mount and debootstrap need root)');
  for (const tool of ['systemd-nspawn', 'debootstrap', 'nsenter', 'flock', 'journalctl', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH } }).status !== 0) {
      problems.push(`${tool} is missing (make nspawn installs Debian's systemd-container and debootstrap)`);
    }
  }
  if (!cgroup2Mount()) problems.push('no cgroup2 mount on this host (nspawn needs one for the unified hierarchy)');
  if (!/\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'))) problems.push('the kernel has no overlay filesystem');
  return problems;
}

/** The Debian mirror apt uses here: `URIs:` of a deb822 .sources stanza for the suite, else a sources.list line. */
export function debianMirror(suite = SUITE): string {
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir) ? readdirSync(dir).sort().map((f) => join(dir, f)) : [];
  for (const file of files.filter((f) => f.endsWith('.sources'))) {
    for (const stanza of readFileSync(file, 'utf8').split(/\n\s*\n/)) {
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (field('Enabled')[0] === 'no' || !field('Types').includes('deb') || !field('Suites').includes(suite)) continue;
      const uri = field('URIs').find((u) => /^https?:\/\//.test(u));
      if (uri) return uri;
    }
  }
  for (const file of ['/etc/apt/sources.list', ...files.filter((f) => f.endsWith('.list'))]) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+)\s+(\S+)/.exec(line.trim());
      if (m && m[2] === suite) return m[1]!;
    }
  }
  throw new Error(`no Debian mirror for ${suite} in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list`);
}

/** The base rootfs for these inputs, built when missing; its path. */
export async function ensureBaseRootfs(): Promise<string> {
  const mirror = debianMirror();
  const inputs = { suite: SUITE, variant: VARIANT, packages: PACKAGES, mirror };
  const key = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 12);
  const final = join(CACHE_DIR, `rootfs-${SUITE}-${key}`);
  if (existsSync(join(final, 'usr/lib/systemd/systemd'))) return final;
  mkdirSync(CACHE_DIR, { recursive: true });
  // Under the lock: built by whoever gets it first, into a temporary dir renamed into place at the end.
  const script = `set -eu
final=$1 suite=$2 mirror=$3 include=$4 variant=$5
[ -d "$final" ] && exit 0
tmp=$(mktemp -d "$final.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "nspawn tests: building the base rootfs $final (debootstrap $suite from $mirror, once)" >&2
if ! debootstrap --variant="$variant" --include="$include" "$suite" "$tmp/root" "$mirror" >"$tmp/log" 2>&1; then
  tail -n 40 "$tmp/log" >&2
  exit 1
fi
mv "$tmp/root" "$final"`;
  writeFileSync(`${final}.json`, `${JSON.stringify(inputs, null, 2)}\n`);
  const result = await run('flock', ['-w', '900', join(CACHE_DIR, '.rootfs.lock'), 'sh', '-c', script, 'sh', final, SUITE, mirror, PACKAGES.join(','), VARIANT], 900_000);
  if (result.code !== 0 || !existsSync(join(final, 'usr/lib/systemd/systemd'))) {
    throw new Error(`could not build the base rootfs ${final} (exit ${result.code}):\n${result.stderr}`);
  }
  return final;
}

function run(file: string, args: string[], timeoutMs: number, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { PATH, LANG: 'C.UTF-8' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

// ---------------------------------------------------------------------------------------------
// One container

export interface JournalEntry {
  MESSAGE: string;
  /** Microseconds since the epoch, as a string. */
  __REALTIME_TIMESTAMP: string;
  _BOOT_ID?: string;
  _PID?: string;
  SYSLOG_IDENTIFIER?: string;
  UNIT?: string;
  _SYSTEMD_UNIT?: string;
  UNIT_RESULT?: string;
  EXIT_CODE?: string;
  EXIT_STATUS?: string;
  MESSAGE_ID?: string;
  [field: string]: unknown;
}

/** When an entry was written, in ms since the epoch (the container shares the host's clock). */
export const entryTime = (e: JournalEntry) => Number(e.__REALTIME_TIMESTAMP) / 1000;

export interface Ending {
  /** nspawn's exit code (0 after a poweroff), null when killed. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Host time when nspawn exited: the container is gone, "powered off". */
  at: number;
  /** The container did not end by the boot's deadline and was killed. */
  timedOut: boolean;
  /** nspawn's stdout and stderr: the container's console. */
  console: string[];
}

export interface ExecResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class Boot {
  /** Host pid of the container's PID 1 (systemd). */
  leader = 0;
  readonly startedAt = Date.now();
  readonly ended: Promise<Ending>;
  private consoleText = '';
  private finished?: Ending;

  constructor(
    private readonly container: Container,
    child: ChildProcess,
    timeoutMs: number,
  ) {
    const collect = (chunk: Buffer) => (this.consoleText += chunk.toString());
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      container.killAll();
    }, timeoutMs);
    this.ended = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.finished = { code, signal, at: Date.now(), timedOut, console: this.console() };
        resolve(this.finished);
      });
    });
  }

  get running(): boolean {
    return this.finished === undefined;
  }

  /** Console lines so far, without terminal colours. */
  console(): string[] {
    // eslint-disable-next-line no-control-regex
    return this.consoleText.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split(/\r?\n/).filter((l) => l.trim() !== '');
  }

  /** Wait for the container's PID 1 to appear (its host pid). */
  async waitLeader(timeoutMs = 15_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.running) {
      // PID 1 of the container once nspawn exec'd systemd (its mounts, the fresh boot_id included, are set up).
      const pid = this.container.pids().find((p) => nsPid(p) === 1 && exe(p).endsWith('/systemd'));
      if (pid !== undefined) {
        this.leader = pid;
        this.bootId();
        return pid;
      }
      await sleep(20);
    }
    throw new Error(`container ${this.container.name}: no PID 1 within ${timeoutMs} ms\n${this.console().slice(-20).join('\n')}`);
  }

  /** Run a shell script inside the running container, as root or as `user`. */
  exec(script: string, options: { user?: string; timeoutMs?: number } = {}): ExecResult {
    if (!this.leader) throw new Error('exec before the container has a PID 1');
    const inner = options.user ? ['setpriv', `--reuid=${options.user}`, `--regid=${options.user}`, '--init-groups', '--reset-env', '--'] : [];
    const result = spawnSync(
      'nsenter',
      ['--target', String(this.leader), '--mount', '--uts', '--ipc', '--pid', '--cgroup', '--', '/usr/bin/env', '-i', `PATH=${PATH}`, 'LANG=C.UTF-8', ...inner, '/bin/sh', '-c', script],
      { encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, env: { PATH } },
    );
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  }

  /** Wait until systemd in the container has finished booting (running or degraded). */
  async waitRunning(timeoutMs = 30_000): Promise<string> {
    await this.waitLeader();
    const deadline = Date.now() + timeoutMs;
    let state = '';
    while (Date.now() < deadline && this.running) {
      state = this.exec('systemctl is-system-running', { timeoutMs: 5_000 }).stdout.trim();
      if (state === 'running' || state === 'degraded') return state;
      await sleep(100);
    }
    throw new Error(`container ${this.container.name}: systemd not up within ${timeoutMs} ms (last state "${state}")\n${this.console().slice(-20).join('\n')}`);
  }

  /** Ask the container's systemd to power off, as the host (or EC2's StopInstances) would: SIGRTMIN+4 to its PID 1. */
  requestPoweroff(): number {
    process.kill(this.leader, SIG_POWEROFF);
    return Date.now();
  }

  /** The container's journal for this boot (systemd's messages and every unit's output). */
  journal(unit?: string): JournalEntry[] {
    return this.container.journal(this.bootId(), unit);
  }

  private bootIdValue?: string;
  /** This boot's id, as journald records it (nspawn gives every boot a fresh one). */
  bootId(): string | undefined {
    if (this.bootIdValue) return this.bootIdValue;
    if (!this.leader) return undefined;
    try {
      // PID 1's view of /proc: nspawn mounts a fresh boot_id over the host's for every boot.
      this.bootIdValue = readFileSync(`/proc/${this.leader}/root/proc/sys/kernel/random/boot_id`, 'utf8').trim().replaceAll('-', '');
    } catch {
      /* gone */
    }
    return this.bootIdValue;
  }

  /** Poll the journal until `match` finds an entry (of `unit`), or fail after `timeoutMs`. */
  async waitForJournal(match: (e: JournalEntry) => boolean, options: { unit?: string; timeoutMs?: number; what: string }): Promise<JournalEntry> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    while (Date.now() < deadline) {
      const found = this.journal(options.unit).find(match);
      if (found) return found;
      if (!this.running) break;
      await sleep(150);
    }
    // The agent's own account first (its warnings, errors and the outcome), then the journal's tail.
    const entries = this.journal(options.unit);
    const notable = entries.filter((e) => /"level":"(warn|error|fatal)"|"msg":"lifecycle finished"/.test(e.MESSAGE)).map((e) => e.MESSAGE);
    const tail = [...notable, '…', ...entries.slice(-30).map((e) => e.MESSAGE)];
    throw new Error(`container ${this.container.name}: ${options.what} did not happen${this.running ? ` within ${options.timeoutMs ?? 30_000} ms` : ' before the container ended'}\n${tail.join('\n')}`);
  }

  /** Host pids of the processes in a unit's cgroup (and below it: the agent's job cgroup). */
  unitPids(unit: string): number[] {
    return this.container.pids(join('payload', 'system.slice', unit));
  }
}

export class Container {
  private boots: Boot[] = [];
  private torn = false;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly base: string,
    readonly cgroup: string,
  ) {}

  /** The container's root as the host sees it (the overlay). */
  get root(): string {
    return join(this.dir, 'merged');
  }

  get upper(): string {
    return join(this.dir, 'upper');
  }

  static create(base: string, label: string): Container {
    const cgroupRoot = cgroup2Mount();
    if (!cgroupRoot) throw new Error('no cgroup2 mount');
    const dir = mkdtempSync('/var/tmp/rfa-nspawn-');
    const name = `rfa-${label}-${dir.slice(-6)}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 60);
    for (const sub of ['upper', 'work', 'merged']) mkdirSync(join(dir, sub));
    const mount = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`, join(dir, 'merged')], { encoding: 'utf8', env: { PATH } });
    if (mount.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`overlay mount failed: ${mount.stderr}`);
    }
    const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
    const cgroup = join(cgroupRoot, own, name);
    mkdirSync(cgroup);
    return new Container(name, dir, base, cgroup);
  }

  /**
   * Boot the container (systemd as PID 1). `timeoutMs` bounds the whole boot, from start to the
   * container's end: past it, everything is killed and `ended` says `timedOut`.
   */
  boot(timeoutMs: number): Boot {
    if (this.boots.some((b) => b.running)) throw new Error(`container ${this.name} is already running`);
    const args = [
      '-D', this.root, '--boot', '--register=no', '--keep-unit', '-M', this.name,
      '--console=read-only', '--link-journal=no', '--capability=CAP_NET_ADMIN',
    ];
    // The shell puts itself (then nspawn, same pid) into the container's own cgroup before exec.
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec systemd-nspawn "$@"', this.cgroup, ...args], {
      env: { PATH, LANG: 'C.UTF-8', SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const boot = new Boot(this, child, timeoutMs);
    this.boots.push(boot);
    return boot;
  }

  /** Host pids in the container's cgroup, or in `sub` below it. */
  pids(sub = ''): number[] {
    const out: number[] = [];
    const walk = (dir: string) => {
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        return;
      }
      try {
        for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (p) out.push(Number(p));
      } catch {
        /* gone */
      }
      for (const e of entries) {
        const path = join(dir, e);
        try {
          if (lstatSync(path).isDirectory()) walk(path);
        } catch {
          /* gone */
        }
      }
    };
    walk(join(this.cgroup, sub));
    return out;
  }

  /** SIGKILL everything of this container at once (nspawn, its systemd, every process inside). */
  killAll(): void {
    try {
      writeFileSync(join(this.cgroup, 'cgroup.kill'), '1');
    } catch {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
  }

  /** Journal entries of the boot `bootId` (all boots when undefined), of `unit` when given. */
  journal(bootId?: string, unit?: string): JournalEntry[] {
    const dir = join(this.root, 'var/log/journal');
    if (!existsSync(dir)) return [];
    const args = ['--directory', dir, '--no-pager', '-o', 'json', '--output-fields=MESSAGE,SYSLOG_IDENTIFIER,UNIT,_SYSTEMD_UNIT,UNIT_RESULT,EXIT_CODE,EXIT_STATUS,MESSAGE_ID,_PID,_BOOT_ID,_COMM'];
    if (bootId) args.push(`_BOOT_ID=${bootId}`);
    if (unit) args.push('-u', unit);
    const result = spawnSync('journalctl', args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, env: { PATH } });
    const entries: JournalEntry[] = [];
    for (const line of (result.stdout ?? '').split('\n')) {
      if (!line.startsWith('{')) continue;
      const e = JSON.parse(line) as JournalEntry;
      // journald gives MESSAGE as a byte array when it is not valid UTF-8 (or has control chars).
      if (Array.isArray(e.MESSAGE)) e.MESSAGE = Buffer.from(e.MESSAGE as number[]).toString('utf8');
      entries.push(e);
    }
    return entries;
  }

  /** Write a file into the container's tree (as the host, root-owned). */
  writeFile(path: string, content: string, mode = 0o644): void {
    const full = join(this.root, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content, { mode });
  }

  /** Everything under `paths` in the container: type, mode, owner, content hash or link target — comparable. */
  snapshot(paths: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (path: string) => {
      let st;
      try {
        st = lstatSync(path);
      } catch {
        return;
      }
      const rel = `/${relative(this.root, path)}`;
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isDirectory()) {
        out[`${rel}/`] = `dir ${mode} ${st.uid}:${st.gid}`;
        for (const e of readdirSync(path).sort()) walk(join(path, e));
      } else if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(path)}`;
      else out[rel] = `file ${mode} ${st.uid}:${st.gid} ${st.size} ${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`;
    };
    for (const p of paths) walk(join(this.root, p));
    return out;
  }

  /** Kill what still runs, unmount, remove the cgroups and the temporary dir (kept with RFA_KEEP_CONTAINER=1). */
  async teardown(): Promise<string[]> {
    if (this.torn) return [];
    this.torn = true;
    const problems: string[] = [];
    if (this.boots.some((b) => b.running)) {
      this.killAll();
      await Promise.race([Promise.all(this.boots.map((b) => b.ended)), sleep(10_000)]);
      if (this.boots.some((b) => b.running)) problems.push(`container ${this.name} still running 10 s after cgroup.kill`);
    }
    // nspawn leaves payload/ and supervisor/ (and what the container's systemd made below) behind: depth first.
    const removeCgroup = (dir: string) => {
      let entries: string[] = [];
      try {
        entries = readdirSync(dir);
      } catch {
        return;
      }
      for (const e of entries) {
        const path = join(dir, e);
        try {
          if (lstatSync(path).isDirectory()) removeCgroup(path);
        } catch {
          /* gone */
        }
      }
      for (let i = 0; ; i += 1) {
        try {
          rmdirSync(dir);
          return;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          if (i >= 20) {
            problems.push(`cannot remove cgroup ${dir}: ${(error as Error).message}`);
            return;
          }
          spawnSync('sleep', ['0.05']);
        }
      }
    };
    removeCgroup(this.cgroup);
    if (KEEP) {
      process.stdout.write(
        `\nRFA_KEEP_CONTAINER=1: kept container ${this.name}, its overlay mounted at ${this.root}\n` +
          `  look inside:   journalctl --directory ${this.root}/var/log/journal -u runs-fleet-agent\n` +
          `  boot it again: SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -D ${this.root} --boot --register=no --keep-unit -M ${this.name}-again\n` +
          `  a shell in it: systemd-nspawn -D ${this.root} --register=no --keep-unit\n` +
          `  remove it:     umount ${this.root} && rm -rf ${this.dir}\n`,
      );
      return problems;
    }
    for (let i = 0; ; i += 1) {
      const umount = spawnSync('umount', [this.root], { encoding: 'utf8', env: { PATH } });
      if (umount.status === 0 || !isMounted(this.root)) break;
      if (i >= 20) {
        spawnSync('umount', ['-l', this.root], { env: { PATH } });
        problems.push(`umount ${this.root} failed (lazily unmounted): ${umount.stderr.trim()}`);
        break;
      }
      await sleep(100);
    }
    if (!isMounted(this.root)) rmSync(this.dir, { recursive: true, force: true });
    return problems;
  }
}

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

/** A host pid's pid in its innermost pid namespace (`NSpid:` last field). */
export function nsPid(pid: number): number | undefined {
  try {
    const m = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]!.trim().split(/\s+/).at(-1)) : undefined;
  } catch {
    return undefined;
  }
}

/** The executable of a host pid ('' when gone). */
export function exe(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

/** The command line of a host pid ('' when gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Signal names, for the table. */
export const signalName = (n: number) => Object.entries(os.signals).find(([, v]) => v === n)?.[0] ?? String(n);
