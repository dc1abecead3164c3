/**
 * What keeps a job in its place, unit by unit: the IMDS firewall's rules and fallbacks, the job
 * cgroup (real cgroup v2 here, as root), and the kill-by-uid fallback where there is none.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockForUid, imdsTargets, probeBlocked, type FirewallDeps } from '../services/runner/imds-firewall.js';
import { JobCgroup, killProcessesOfUid, processesOfUid } from '../services/runner/job-cgroup.js';
import { RunnerReaper } from '../services/runner/reaper.js';

/** A fake command runner: which tools exist, and what they were asked. */
function fakeFirewall(tools: Record<string, (args: string[], input?: string) => { exitCode: number; stdout?: string; stderr?: string }>) {
  const calls: string[] = [];
  const deps: FirewallDeps = {
    run: async (file, args, input) => {
      calls.push(`${file} ${args.join(' ')}${input ? ` <<< ${input.trim()}` : ''}`);
      const tool = tools[file];
      if (!tool) throw Object.assign(new Error(`spawn ${file} ENOENT`), { code: 'ENOENT' });
      const r = tool(args, input);
      return { exitCode: r.exitCode, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
  };
  return { deps, calls };
}

describe('keeping the job off IMDS', () => {
  it('targets the real IMDS on both families, and the configured endpoint by address and port', async () => {
    expect(await imdsTargets(undefined)).toEqual([
      { address: '169.254.169.254', family: 4 },
      { address: 'fd00:ec2::254', family: 6 },
    ]);
    expect((await imdsTargets('http://127.0.0.1:8123'))[2]).toEqual({ address: '127.0.0.1', family: 4, port: 8123 });
    expect(await imdsTargets('http://[fd00:ec2::254]')).toHaveLength(2); // the real IPv6 IMDS is blocked whole already
  });

  it('nftables: one table of its own, owner-match rules for the runner uid, added once', async () => {
    let listed = '';
    const { deps, calls } = fakeFirewall({
      nft: (args, input) => {
        if (args[0] === '-f' && input?.includes('add rule')) listed += input;
        return { exitCode: 0, stdout: args[0] === 'list' ? listed : '' };
      },
    });
    const targets = await imdsTargets('http://127.0.0.1:8123');
    expect(await blockForUid(1001, targets, deps)).toBe('nft');
    expect(calls.join('\n')).toContain('add chain inet runs_fleet_agent job_imds { type filter hook output priority 0 ; policy accept ; }');
    expect(calls.join('\n')).toContain('meta skuid 1001 ip daddr 169.254.169.254 counter reject');
    expect(calls.join('\n')).toContain('meta skuid 1001 ip6 daddr fd00:ec2::254 counter reject');
    expect(calls.join('\n')).toContain('meta skuid 1001 ip daddr 127.0.0.1 tcp dport 8123 counter reject with tcp reset');
    expect(calls.join('\n')).toContain('add rule inet runs_fleet_agent job_imds_forward ip daddr 169.254.169.254 counter drop'); // bridged containers
    const before = calls.filter((c) => c.includes('meta skuid')).length;
    await blockForUid(1001, targets, deps);
    expect(calls.filter((c) => c.includes('meta skuid')).length).toBe(before); // idempotent
  });

  it('no nft: iptables and ip6tables owner matches; neither: an error naming both, so the job does not run', async () => {
    const added: string[] = [];
    const iptables = (args: string[]) => (args[0] === '-C' ? { exitCode: 1 } : (added.push(args.join(' ')), { exitCode: 0 }));
    const withIptables = fakeFirewall({ iptables, ip6tables: iptables });
    expect(await blockForUid(1001, await imdsTargets(undefined), withIptables.deps)).toBe('iptables');
    expect(added).toEqual([
      '-I OUTPUT 1 -m owner --uid-owner 1001 -d 169.254.169.254 -j REJECT',
      '-I OUTPUT 1 -m owner --uid-owner 1001 -d fd00:ec2::254 -j REJECT',
    ]);
    const nothing = fakeFirewall({});
    await expect(blockForUid(1001, await imdsTargets(undefined), nothing.deps)).rejects.toThrow(/cannot keep the job off the instance metadata service: nft: not installed; iptables: not installed/);
    await expect(blockForUid(0, [], nothing.deps)).rejects.toThrow(/only an unprivileged runner user/);
  });

  it('a block that does not hold (the runner still connects) stops the job', async () => {
    const connects = fakeFirewall({ '/usr/bin/setpriv': () => ({ exitCode: 0 }) });
    await expect(probeBlocked({ uid: 1001, gid: 1001, setpriv: '/usr/bin/setpriv' }, [{ address: '169.254.169.254', family: 4 }], connects.deps)).rejects.toThrow(
      /still reaches 169\.254\.169\.254:80/,
    );
    const refused = fakeFirewall({ '/usr/bin/setpriv': () => ({ exitCode: 1 }) });
    await expect(probeBlocked({ uid: 1001, gid: 1001, setpriv: '/usr/bin/setpriv' }, [{ address: '169.254.169.254', family: 4 }], refused.deps)).resolves.toBeUndefined();
    expect(refused.calls[0]).toContain('--reuid 1001 --regid 1001 --clear-groups -- timeout 3 bash -c exec 3<>/dev/tcp/169.254.169.254/80');
  });

  it('probes every target at once (a rejected connect takes ~1 s to fail), and names the one the runner still reaches', async () => {
    const targets = await imdsTargets('http://127.0.0.1:8123');
    let inFlight = 0;
    let most = 0;
    const probes: string[] = [];
    const deps: FirewallDeps = {
      run: async (_file, args) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        probes.push(args.at(-1)!);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight -= 1;
        return { exitCode: args.at(-1)!.includes('fd00:ec2::254') ? 0 : 1, stdout: '', stderr: '' };
      },
    };
    await expect(probeBlocked({ uid: 1001, gid: 1001, setpriv: '/usr/bin/setpriv' }, targets, deps)).rejects.toThrow(/still reaches fd00:ec2::254:80/);
    expect(most).toBe(3);
    expect(probes).toEqual(['exec 3<>/dev/tcp/169.254.169.254/80', 'exec 3<>/dev/tcp/fd00:ec2::254/80', 'exec 3<>/dev/tcp/127.0.0.1/8123']);
  });
});

describe('the job cgroup', () => {
  const children: number[] = [];
  afterEach(() => {
    for (const pid of children.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });

  it('holds what detached from the session (setsid) and kills all of it at once', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root to make a cgroup');
    const cgroup = JobCgroup.open(`rfa-test-${process.pid}`);
    expect(cgroup).toBeDefined();
    const procs = join(cgroup!.dir, 'cgroup.procs');
    // Entered before exec, as run.sh is: the shell writes its pid, then forks an escapee.
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0" && exec bash -c "setsid sleep 300 & exec sleep 300"', procs], { detached: true, stdio: 'ignore' });
    children.push(child.pid!);
    for (let i = 0; i < 50 && cgroup!.pids().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const members = cgroup!.pids();
    expect(members.length).toBe(2); // the sleep and the escaped setsid sleep
    expect(cgroup!.killAll()).toBe(2);
    for (let i = 0; i < 50 && cgroup!.pids().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(cgroup!.pids()).toEqual([]);
    cgroup!.remove();
  });

  it('the reaper companion kills the job cgroup whole when the agent\'s end of its pipe closes', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root to make a cgroup');
    const cgroup = JobCgroup.open(`rfa-reap-${process.pid}`);
    expect(cgroup).toBeDefined();
    const procs = join(cgroup!.dir, 'cgroup.procs');
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0" && exec bash -c "setsid sleep 300 & exec sleep 300"', procs], { detached: true, stdio: 'ignore' });
    children.push(child.pid!);
    for (let i = 0; i < 50 && cgroup!.pids().length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(cgroup!.pids()).toHaveLength(2);
    const reaper = new RunnerReaper();
    reaper.start();
    reaper.watchCgroup(cgroup!.dir);
    reaper.watchCgroup('relative/path'); // ignored: only absolute cgroup paths are written
    // What the kernel does when the agent dies: the write end closes, the companion reads EOF.
    reaper.stop();
    for (let i = 0; i < 100 && cgroup!.pids().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(cgroup!.pids()).toEqual([]);
    cgroup!.remove();
  });

  it('without a cgroup: every process of the runner uid, found in /proc', () => {
    const proc = mkdtempSync(join(tmpdir(), 'rfa-proc-'));
    try {
      const fake = (pid: number, uid: number, state = 'S') => {
        mkdirSync(join(proc, String(pid)));
        writeFileSync(join(proc, String(pid), 'status'), `Name:\tx\nState:\t${state} (sleeping)\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\n`);
      };
      fake(10, 1001);
      fake(11, 1001, 'Z');
      fake(12, 0);
      fake(13, 1002);
      expect(processesOfUid(1001, proc)).toEqual([10]);
      const killed: number[] = [];
      expect(killProcessesOfUid(1001, proc, (pid) => (killed.push(pid), rmSync(join(proc, String(pid)), { recursive: true }), true))).toBe(1);
      expect(killed).toEqual([10]);
      expect(killProcessesOfUid(0, proc, () => true)).toBe(0); // never root
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });
});

describe('the job and the OOM killer', () => {
  it('run.sh does not inherit the agent’s negative oom_score_adj', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root to lower an oom_score_adj');
    const { raiseOomScoreAdj } = await import('../services/runner/process.js');
    const child = spawn('/bin/sh', ['-c', 'echo -500 > /proc/self/oom_score_adj; exec sleep 30'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    raiseOomScoreAdj(child.pid!);
    const adj = spawnSync('cat', [`/proc/${child.pid}/oom_score_adj`], { encoding: 'utf8' }).stdout.trim();
    child.kill('SIGKILL');
    expect(adj).toBe('0');
  });
});
