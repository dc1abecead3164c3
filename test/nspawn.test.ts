/**
 * The instance in a box (issue 14): a real systemd, PID 1 of a systemd-nspawn container, boots the
 * agent the release tarball's install.sh installed, and the three never-a-zombie layers are proved
 * on it — the agent's TerminateInstances (in moto), the unit's poweroff actions, RuntimeMaxSec and
 * KillMode (the container really ends), and the instance state the launch template's
 * `InstanceInitiatedShutdownBehavior=terminate` would turn a poweroff into.
 *
 * One file, so that its containers boot one after the other in one jest worker. A machine where
 * nspawn cannot boot fails here with the reason; nothing is skipped. By hand: docs/testing.md.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { AGENT_BINARY, createWorld, JIT_SECRET, type World } from './support/agent-world.js';
import type { FakeRunnerOptions } from './support/fake-runner.js';
import { instanceEnv, provision, runInstance, statesOf, UNIT, type InstanceRun, type ProvisionOptions } from './support/instance-box.js';
import { startMoto, type Moto } from './support/moto.js';
import { cmdline, Container, ensureBaseRootfs, entryTime, nsPid, nspawnProblems, type Boot, type ExecResult } from './support/nspawn.js';
import { evaluateIn } from './support/node-inspector.js';

let moto: Moto;
let base: string;
let world: World | undefined;
let container: Container | undefined;
const rows: string[] = [];

beforeAll(async () => {
  const problems = nspawnProblems();
  if (problems.length > 0) {
    throw new Error(`this machine cannot boot a systemd container, so the nspawn tests cannot run:\n- ${problems.join('\n- ')}\nRun make nspawn (make test does) as root.`);
  }
  [moto, base] = await Promise.all([startMoto(), ensureBaseRootfs()]);
}, 900_000);

afterEach(async () => {
  const problems = (await container?.teardown()) ?? [];
  container = undefined;
  await world?.close();
  world = undefined;
  expect(problems).toEqual([]);
}, 60_000);

afterAll(async () => {
  if (rows.length > 0) {
    process.stdout.write(
      `\nnspawn lifecycles (a real systemd boots the installed agent):\n` +
        `| case | how the container ended | event → poweroff | instance in moto | messages in the queue |\n|---|---|---|---|---|\n${rows.join('\n')}\n`,
    );
  }
  await moto?.stop();
});

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function row(what: string, run: InstanceRun, event: string, eventAt: number): void {
  const how = run.poweroff ? (run.poweroff.forced ? 'forced poweroff' : 'orderly poweroff') : 'no poweroff seen';
  const ended = `unit ${run.unit.result ?? '?'} → ${how}${run.action ? ` (${run.action})` : ''}, nspawn exit ${run.ending.code ?? run.ending.signal}`;
  const statuses = run.telemetry.map((m) => m.status).join(', ') || 'none';
  rows.push(`| ${what} | ${ended} | ${seconds(run.ending.at - eventAt)} (from ${event}) | ${run.instanceState} | ${statuses} |`);
}

async function instance(label: string, options: { runner?: Partial<FakeRunnerOptions>; config?: boolean; env?: Record<string, string | undefined> } & Omit<ProvisionOptions, 'env'>) {
  world = await createWorld({ moto, runner: { behavior: 'succeed', ...options.runner } });
  if (options.config !== false) await world.putRunnerConfig({ jit_config: JIT_SECRET });
  container = Container.create(base, label);
  const provisioned = await provision(container, { ...options, env: instanceEnv(world, options.env) });
  return { world, container, provisioned };
}

/** The unit's main process as a host pid (systemd's MainPID is its pid inside the container). */
function agentPid(boot: Boot): { host: number; inside: number } {
  const inside = Number(boot.exec(`systemctl show -p MainPID --value ${UNIT}`).stdout.trim());
  const host = boot.unitPids(UNIT).find((p) => nsPid(p) === inside);
  if (!inside || host === undefined) throw new Error(`no main process for ${UNIT} (MainPID ${inside})`);
  return { host, inside };
}

const runningJob = (boot: Boot) =>
  boot.waitForJournal((e) => e.SYSLOG_IDENTIFIER === 'runs-fleet-agent' && e.MESSAGE.includes('Running job'), { unit: UNIT, timeoutMs: 40_000, what: 'the job starting' });

/** The uid a host pid runs as. */
function uidOf(pid: number): number | undefined {
  try {
    return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

const passwdEntry = (container: Container, user: string) => readFileSync(`${container.root}/etc/passwd`, 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));

describe('lifecycles under a real systemd, the single binary as installed', () => {
  it('a whole job: started at boot, the job as the runner user, TerminateInstances, exit 0, SuccessAction powers off', async () => {
    const { world, container } = await instance('job', { runner: { behavior: 'lines', lines: 3, jobScript: 'echo "job identity: $(id -un) uid=$(id -u) groups=$(id -Gn)"' } });
    const uid = passwdEntry(container, 'runner')!.split(':')[2];

    const run = await runInstance(container, world, { timeoutMs: 90_000 });

    expect(run.ending).toMatchObject({ code: 0, timedOut: false });
    expect(run.unit.lines[0]).toMatch(/^Starting runs-fleet-agent\.service/); // started by systemd at boot, not by the test
    expect(run.unit.result).toBe('success');
    expect(run.poweroff).toMatchObject({ forced: false, console: true });
    expect(run.poweroff!.at).toBeGreaterThanOrEqual(run.unit.resultAt!);
    expect(statesOf(run.logs)).toEqual(['booting', 'downloading', 'registering', 'running', 'draining', 'reporting', 'terminating']);
    expect(run.logs.find((l) => l.msg === 'lifecycle finished')).toMatchObject({ status: 'success', terminationRequested: true, exitCode: 0 });
    const jobLine = run.logs.find((l) => l.msg === 'runner' && String(l.line).includes('job identity:'));
    expect(jobLine?.line).toBe(`job identity: runner uid=${uid} groups=runner`);
    expect(run.telemetry.map((m) => m.status)).toEqual(['started', 'success']);
    expect(run.instanceState).toBe('terminated');
    expect(run.parameterLeft).toBe(false);
    row('whole job', run, 'the unit ended', run.unit.resultAt!);
  }, 180_000);

  /**
   * A job running in a booted instance, then `kill(agent, unit pids)` from the host: the runner's
   * processes as they were, and what the unit's end must show either way — the agent SIGKILLed, the
   * unit failed (`signal`) with no process left for a timeout, FailureAction's forced poweroff,
   * only `started` sent and no TerminateInstances (the poweroff is the termination, layer 3).
   */
  async function agentKilledMidJob(label: string, kill: (agent: { host: number; inside: number }, pids: number[]) => void) {
    const { world, container } = await instance(label, { runner: { behavior: 'hang' } });
    const runnerUid = Number(passwdEntry(container, 'runner')!.split(':')[2]);
    let killedAt = 0;
    let runner: { inside: number; cmd: string }[] = [];
    const run = await runInstance(container, world, {
      timeoutMs: 90_000,
      during: async (boot) => {
        await runningJob(boot);
        const agent = agentPid(boot);
        const pids = boot.unitPids(UNIT);
        runner = pids.filter((p) => uidOf(p) === runnerUid).map((p) => ({ inside: nsPid(p)!, cmd: cmdline(p) }));
        killedAt = Date.now();
        kill(agent, pids);
      },
    });
    // The job's processes were in the unit's cgroup (its job cgroup below it) when the agent died.
    expect(runner.map((p) => p.cmd)).toEqual(expect.arrayContaining([expect.stringContaining('run.sh'), expect.stringContaining('Runner.Listener')]));
    expect(run.unit.mainExit).toMatchObject({ code: 'killed', status: '9/KILL' });
    expect(run.unit.result).toBe('signal');
    expect(run.ending).toMatchObject({ code: 0, timedOut: false });
    expect(run.poweroff).toMatchObject({ forced: true, console: true }); // FailureAction=poweroff-force
    expect(run.poweroff!.at).toBeGreaterThanOrEqual(run.unit.resultAt!);
    expect(run.telemetry.map((m) => m.status)).toEqual(['started']);
    expect(run.instanceState).toBe('running');
    return { run, runner, killedAt };
  }

  it('the agent SIGKILLed mid-job from the host: the unit fails, FailureAction powers off, nothing of the runner outlives the unit', async () => {
    const { run, runner, killedAt } = await agentKilledMidJob('sigkill', (agent) => process.kill(agent.host, 'SIGKILL'));
    // systemd declares the unit failed only once its cgroup is empty: none was left behind for a timeout.
    expect(run.unit.lines.some((l) => /still around|remains running|timed out/i.test(l))).toBe(false);
    const bySystemd = runner.filter((p) => run.unit.killed.some((k) => k.pid === p.inside)).length;
    row(`agent SIGKILLed mid-job (runner: ${bySystemd}/${runner.length} processes killed by the unit's stop, the rest by the agent's reaper)`, run, 'SIGKILL', killedAt);
  }, 180_000);

  it('the agent and its reaper SIGKILLed mid-job: KillMode=mixed alone kills every runner process, then FailureAction powers off', async () => {
    const { run, runner, killedAt } = await agentKilledMidJob('killmode', (agent, pids) => {
      const reaper = pids.filter((p) => p !== agent.host && uidOf(p) === 0 && cmdline(p).startsWith('/bin/sh -c sids='));
      if (reaper.length !== 1) throw new Error(`expected one reaper in the unit, found ${reaper.length}: ${pids.map(cmdline).join(' | ')}`);
      // Stopped first, so that the agent cannot see its reaper die; then both killed.
      process.kill(agent.host, 'SIGSTOP');
      process.kill(reaper[0]!, 'SIGKILL');
      process.kill(agent.host, 'SIGKILL');
    });
    // Nothing but systemd was left to kill them: each one is in its "Killing process N (…) with signal SIGKILL".
    const killed = run.unit.killed.filter((k) => k.signal === 'SIGKILL').map((k) => k.pid);
    expect(runner.filter((p) => !killed.includes(p.inside))).toEqual([]);
    row(`agent and reaper SIGKILLed mid-job (KillMode killed ${runner.length} runner processes)`, run, 'SIGKILL', killedAt);
  }, 180_000);

  it('a hung agent past a shortened RuntimeMaxSec (drop-in): stopped, SIGKILLed after TimeoutStopSec, FailureAction powers off', async () => {
    const { world, container } = await instance('runtimemax', { runner: { behavior: 'hang' }, dropIn: '[Service]\nRuntimeMaxSec=20s\nTimeoutStopSec=4s\n' });
    let hungAt = 0;

    const run = await runInstance(container, world, {
      timeoutMs: 120_000,
      during: async (boot) => {
        await runningJob(boot);
        const agent = agentPid(boot);
        // A busy loop on the agent's event loop: no timer, no SIGTERM handler of its own runs any more.
        await evaluateIn(agent.host, agent.inside, 'setImmediate(() => { for (;;) {} }), "hanging"');
        hungAt = Date.now();
      },
    });

    const started = run.journal.find((e) => e._PID === '1' && e.UNIT === UNIT && /^Started /.test(e.MESSAGE))!;
    expect(hungAt).toBeGreaterThan(0);
    expect(run.unit.runtimeLimitAt! - entryTime(started)).toBeGreaterThanOrEqual(19_900); // stopped at the limit, not before
    expect(run.unit.lines.some((l) => /State 'stop-sigterm' timed out\. Killing\./.test(l))).toBe(true);
    expect(run.unit.killed.map((k) => k.comm)).toEqual(expect.arrayContaining(['runs-fleet-agen', 'Runner.Listener']));
    expect(run.unit.mainExit).toMatchObject({ code: 'killed', status: '9/KILL' });
    expect(run.unit.result).toBe('timeout');
    // Hung for real: the agent never saw the SIGTERM systemd sent at the limit.
    expect(run.logs.filter((l) => l.msg === 'signal received')).toEqual([]);
    expect(run.ending).toMatchObject({ code: 0, timedOut: false });
    expect(run.poweroff).toMatchObject({ forced: true, console: true });
    expect(run.telemetry.map((m) => m.status)).toEqual(['started']);
    expect(run.instanceState).toBe('running');
    row('hung agent past RuntimeMaxSec=20s (TimeoutStopSec=4s)', run, 'the runtime limit', run.unit.runtimeLimitAt!);
  }, 180_000);

  it('a warm-pool stop while waiting for a config: SIGTERM from systemd, exit 0 within 5 s, no TerminateInstances, no message', async () => {
    const { world, container } = await instance('warmpool', { config: false });
    let stopAt = 0;

    const run = await runInstance(container, world, {
      timeoutMs: 90_000,
      during: async (boot) => {
        await boot.waitForJournal((e) => e.MESSAGE.includes('standby: waiting for the runner config'), { unit: UNIT, what: 'standby' });
        stopAt = boot.requestPoweroff(); // what StopInstances does to the machine: an orderly poweroff
      },
    });

    expect(run.logs.find((l) => l.msg === 'signal received')).toMatchObject({ signal: 'SIGTERM' });
    expect(run.logs.find((l) => l.msg === 'lifecycle finished')).toMatchObject({ standbyEnd: 'sigterm', terminationRequested: false, exitCode: 0 });
    expect(run.unit.result).toBe('success'); // exit 0: "Deactivated successfully"
    expect(run.unit.resultAt! - stopAt).toBeLessThan(5_000);
    expect(run.ending).toMatchObject({ code: 0, timedOut: false });
    expect(run.poweroff).toMatchObject({ forced: false, console: true });
    expect(run.logs.some((l) => l.msg === 'requesting TerminateInstances')).toBe(false);
    expect(run.instanceState).toBe('running');
    expect(run.telemetry).toEqual([]);
    row(`warm-pool stop in standby (agent exited 0 ${seconds(run.unit.resultAt! - stopAt)} after the request)`, run, 'the poweroff request', stopAt);
  }, 180_000);

  it('a crash (PANIC) while running: the final message is sent, then TerminateInstances, exit 0, SuccessAction powers off', async () => {
    const { world, container } = await instance('panic', { runner: { behavior: 'hang' } });
    let panicAt = 0;

    const run = await runInstance(container, world, {
      timeoutMs: 90_000,
      during: async (boot) => {
        await runningJob(boot);
        const agent = agentPid(boot);
        await evaluateIn(agent.host, agent.inside, 'setImmediate(() => { throw new Error("injected from the host: an uncaught exception") }), "armed"');
        panicAt = Date.now();
      },
    });

    expect(run.logs.find((l) => l.msg === 'agent crashed (uncaught)')?.err?.message).toBe('injected from the host: an uncaught exception');
    expect(run.telemetry.map((m) => m.status)).toEqual(['started', 'failure']);
    expect(run.telemetry[1]!.error).toContain('injected from the host: an uncaught exception');
    const sent = run.logs.findIndex((l) => l.msg === 'telemetry sent' && l.status === 'failure');
    const terminate = run.logs.findIndex((l) => l.msg === 'requesting TerminateInstances');
    expect(sent).toBeGreaterThan(-1);
    expect(terminate).toBeGreaterThan(sent);
    expect(run.instanceState).toBe('terminated');
    expect(run.unit.result).toBe('success');
    expect(run.ending).toMatchObject({ code: 0, timedOut: false });
    expect(run.poweroff).toMatchObject({ forced: false, console: true });
    row('PANIC while running', run, 'the crash', panicAt);
  }, 180_000);

  it('a bad environment value: bootstrap_failed reported, TerminateInstances, powered off', async () => {
    const { world, container } = await instance('badenv', { env: { RUNS_FLEET_MAX_RUNTIME_MINUTES: 'soon' } });

    const run = await runInstance(container, world, { timeoutMs: 90_000 });

    expect(run.telemetry.map((m) => m.status)).toEqual(['bootstrap_failed']);
    expect(run.telemetry[0]!.error).toMatch(/RUNS_FLEET_MAX_RUNTIME_MINUTES/);
    expect(statesOf(run.logs)).not.toContain('running');
    expect(run.instanceState).toBe('terminated');
    expect(run.unit.result).toBe('success');
    expect(run.ending).toMatchObject({ code: 0, timedOut: false });
    expect(run.poweroff).toMatchObject({ forced: false, console: true });
    row('bootstrap_failed (RUNS_FLEET_MAX_RUNTIME_MINUTES=soon)', run, 'the unit ended', run.unit.resultAt!);
  }, 180_000);
});

/** The table of docs/operations.md's "The unit's settings" section: property → value ('' for "— (empty)"). */
function documentedUnitSettings(): Record<string, string> {
  const doc = readFileSync('docs/operations.md', 'utf8');
  const section = doc.slice(doc.indexOf("### The unit's settings")).split('\n');
  const first = section.findIndex((l) => l.startsWith('|'));
  const rest = section.slice(first);
  const table = rest.slice(0, rest.findIndex((l) => !l.startsWith('|'))).join('\n');
  const settings: Record<string, string> = {};
  for (const m of table.matchAll(/^\| `(\w+)` \| (?:`([^`]*)`|— \(empty\)) \|/gm)) settings[m[1]!] = m[2] ?? '';
  return settings;
}

describe('the installed tree is the product (install.sh, run as root on a booted image)', () => {
  it('install.sh is idempotent: a second install over the first changes nothing', async () => {
    const { container, provisioned } = await instance('install', { installTwice: true });
    const [first, second] = provisioned.installs;
    const [before, after] = provisioned.snapshots;

    expect(second!.status).toBe(0);
    expect(second!.stdout).toMatch(/kept \/etc\/runs-fleet-agent\/agent\.env \(never overwritten\)/);
    expect(second!.stdout).toMatch(/user runner exists/);
    expect(first!.stdout).toMatch(/created system user runner/);
    expect(after).toEqual(before);
    // And the first install put down what it says, from the release: the binary of make dist, the unit of deploy/.
    const runner = passwdEntry(container, 'runner')!.split(':');
    const file = (path: string) => `${statSync(path).size} ${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`;
    expect(before).toMatchObject({
      '/usr/local/bin/runs-fleet-agent': `file 0755 0:0 ${file(AGENT_BINARY)}`,
      '/etc/systemd/system/runs-fleet-agent.service': `file 0644 0:0 ${file('deploy/systemd/runs-fleet-agent.service')}`,
      '/etc/systemd/system/multi-user.target.wants/runs-fleet-agent.service': 'link /etc/systemd/system/runs-fleet-agent.service',
      '/etc/runs-fleet-agent/': 'dir 0755 0:0',
      '/etc/runs-fleet-agent/agent.env': `file 0600 0:0 ${file('deploy/agent.env.example')}`,
      '/opt/actions-runner/': `dir 0755 ${runner[2]}:${runner[3]}`,
      [`${runner[5]}/`]: expect.stringMatching(new RegExp(`^dir 07[0-7]{2} ${runner[2]}:${runner[3]}$`)),
    });
  }, 180_000);

  it('the runner user exists, a system user in no group but its own, and has no sudo', async () => {
    let facts: Record<string, ExecResult> = {};
    await instance('user', {
      inImage: (image) => {
        facts = {
          passwd: image.exec('getent passwd runner'),
          groups: image.exec('id -Gn runner'),
          sudoList: image.exec('sudo -l -U runner'),
          sudoAsRunner: image.exec('sudo -n true', { user: 'runner' }),
          sudoers: image.exec('grep -rs runner /etc/sudoers /etc/sudoers.d/; true'),
        };
      },
    });

    const [, , uid, , , home, shell] = facts.passwd!.stdout.trim().split(':');
    expect(Number(uid)).toBeLessThan(1000); // --system
    expect({ home, shell }).toEqual({ home: '/home/runner', shell: '/bin/bash' });
    expect(facts.groups!.stdout.trim()).toBe('runner'); // not in sudo, adm, docker, …: none is root-equivalent
    expect(facts.sudoList!.stdout).toMatch(/User runner is not allowed to run sudo/);
    expect(facts.sudoAsRunner!.status).not.toBe(0);
    expect(facts.sudoers!.stdout).toBe('');
  }, 180_000);

  it('the EnvironmentFile, the state dir and the agent\'s environment are not readable by the runner user (mid-job)', async () => {
    const { world, container } = await instance('perms', { runner: { behavior: 'hang' } });
    let facts: Record<string, ExecResult> = {};

    const run = await runInstance(container, world, {
      timeoutMs: 90_000,
      during: async (boot) => {
        await runningJob(boot);
        const agent = agentPid(boot);
        facts = {
          modes: boot.exec('stat -c "%n %a %U:%G" /etc/runs-fleet-agent/agent.env /var/lib/runs-fleet-agent'),
          envFile: boot.exec('cat /etc/runs-fleet-agent/agent.env', { user: 'runner' }),
          stateDir: boot.exec('ls -a /var/lib/runs-fleet-agent', { user: 'runner' }),
          environ: boot.exec(`cat /proc/${agent.inside}/environ`, { user: 'runner' }),
          hooks: boot.exec('test -x /var/lib/runs-fleet-agent/hooks/job-started.sh', { user: 'runner' }),
        };
        boot.requestPoweroff();
      },
    });

    expect(facts.envFile).toMatchObject({ status: 1, stdout: '' });
    expect(facts.envFile!.stderr).toMatch(/Permission denied/);
    expect(facts.stateDir!.status).not.toBe(0);
    expect(facts.stateDir!.stderr).toMatch(/Permission denied/);
    expect(facts.environ).toMatchObject({ status: 1, stdout: '' });
    expect(facts.hooks!.status).toBe(0); // what it must reach below the state dir, it still can
    expect(facts.modes!.stdout).toMatch(/^\/etc\/runs-fleet-agent\/agent\.env 600 root:root$/m);
    expect(run.ending).toMatchObject({ code: 0, timedOut: false });
  }, 180_000);

  it('systemctl show reports the unit\'s settings as docs/operations.md documents them', async () => {
    const documented = documentedUnitSettings();
    expect(Object.keys(documented)).toEqual(expect.arrayContaining(['SuccessAction', 'FailureAction', 'RuntimeMaxUSec', 'TimeoutStopUSec', 'KillMode', 'Delegate', 'Restart', 'EnvironmentFiles']));
    let shown = '';
    await instance('show', { inImage: (image) => void (shown = image.exec(`systemctl show ${UNIT} -p ${Object.keys(documented).join(',')}`).stdout) });

    const reported = Object.fromEntries(shown.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(reported).toEqual(documented);
  }, 180_000);
});
