/**
 * An EC2 instance in a box (issue 14): a container booted from the cached Debian base, built the
 * way an AMI is — the release tarball copied in and its own `install.sh` run as root on the
 * running system (`sudo ./install.sh`, docs/operations.md), the operator's EnvironmentFile
 * written, the image powered off — then booted again as the instance, where systemd starts the
 * agent at boot. Moto, the fake IMDS and the fake GitHub of an agent world answer on loopback
 * (the container shares the host's network namespace).
 *
 * `provision()` is the AMI build; `runInstance()` the instance's one life, from boot to the
 * container's end, with what the issue asks to see: how it ended and when, the unit's result
 * from the journal, the console, the agent's JSON log, and moto's state.
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { World } from './agent-world.js';
import { Boot, Container, entryTime, type Ending, type ExecResult, type JournalEntry } from './nspawn.js';

export const UNIT = 'runs-fleet-agent.service';
/** What install.sh touches, and everything beside it that an install must not change. */
export const INSTALL_TREE = ['/etc', '/home', '/opt', '/usr/local', '/var/lib/runs-fleet-agent'];

/** The release tarball `make dist` built for this machine (make test builds it first). */
export function releaseTarball(): string {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const file = resolve(`dist/runs-fleet-agent-${version}-linux-${arch}.tar.gz`);
  if (!existsSync(file)) throw new Error(`${file} is missing: run make dist (make test does)`);
  return file;
}

/**
 * The agent's environment on the instance: exactly the end-to-end tests' (world.env(): moto
 * through AWS_ENDPOINT_URL, the fake IMDS through AWS_EC2_METADATA_SERVICE_ENDPOINT, the fake
 * GitHub, short timers), without what belongs to the host test process (its PATH and HOME, its
 * temporary runner and state dirs, its runner user): the instance uses the product's defaults.
 */
export function instanceEnv(world: World, overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const env = world.env({
    PATH: undefined,
    HOME: undefined,
    LANG: undefined,
    RUNS_FLEET_RUNNER_DIR: undefined,
    RUNS_FLEET_STATE_DIR: undefined,
    RUNS_FLEET_RUNNER_USER: undefined,
    RUNS_FLEET_TERMINATION_QUEUE_URL: world.queueUrl,
    ...overrides,
  });
  return env;
}

/** An EnvironmentFile (systemd.exec(5)): KEY=VALUE lines, values double-quoted. */
export function environmentFile(env: Record<string, string>): string {
  const lines = ['# written by the nspawn tests (test/support/instance-box.ts), as an operator would'];
  for (const [key, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || /[\n"\\$`]/.test(value)) throw new Error(`cannot write ${key} into an EnvironmentFile`);
    lines.push(`${key}="${value}"`);
  }
  return `${lines.join('\n')}\n`;
}

export interface ProvisionOptions {
  /** The agent's environment (written to /etc/runs-fleet-agent/agent.env). */
  env: Record<string, string>;
  /** A drop-in for the unit (/etc/systemd/system/runs-fleet-agent.service.d/50-test.conf), as `systemctl edit` writes one. */
  dropIn?: string;
  /** Run install.sh a second time and snapshot the tree before and after. */
  installTwice?: boolean;
  /** Checks on the running image after the install (systemctl, users). */
  inImage?: (image: Boot) => void | Promise<void>;
}

export interface Provisioned {
  installs: ExecResult[];
  /** INSTALL_TREE after each install. */
  snapshots: Record<string, string>[];
  /** The image boot's ending (a poweroff requested once it was built). */
  imageEnding: Ending;
}

/** Build the image in `container`: boot it, run the release's install.sh, write agent.env, power off. */
export async function provision(container: Container, options: ProvisionOptions): Promise<Provisioned> {
  const tarball = releaseTarball();
  const name = basename(tarball).replace(/\.tar\.gz$/, '');
  // Like a Packer file provisioner: the tarball is uploaded, then unpacked and installed on the machine.
  copyFileSync(tarball, join(container.root, 'root', basename(tarball)));
  const image = container.boot(90_000);
  const installs: ExecResult[] = [];
  const snapshots: Record<string, string>[] = [];
  try {
    await image.waitRunning();
    const install = () => image.exec(`cd /root/${name} && ./install.sh`, { timeoutMs: 60_000 });
    const unpack = image.exec(`cd /root && tar -xzf ${basename(tarball)}`, { timeoutMs: 60_000 });
    if (unpack.status !== 0) throw new Error(`unpacking the release failed: ${unpack.stderr}`);
    installs.push(install());
    if (installs[0]!.status !== 0) throw new Error(`install.sh failed (exit ${installs[0]!.status}):\n${installs[0]!.stdout}${installs[0]!.stderr}`);
    snapshots.push(container.snapshot(INSTALL_TREE));
    if (options.installTwice) {
      installs.push(install());
      snapshots.push(container.snapshot(INSTALL_TREE));
    }
    await options.inImage?.(image);
    // The operator's configuration for this fleet: agent.env edited in place (install.sh made it 0600), a drop-in.
    const envFile = join(container.root, 'etc/runs-fleet-agent/agent.env');
    if (!existsSync(envFile)) throw new Error('install.sh did not create /etc/runs-fleet-agent/agent.env');
    container.writeFile('etc/runs-fleet-agent/agent.env', environmentFile(options.env), 0o600);
    if (options.dropIn) container.writeFile(`etc/systemd/system/${UNIT}.d/50-test.conf`, options.dropIn);
    image.requestPoweroff();
  } catch (error) {
    container.killAll();
    await image.ended;
    throw error;
  }
  const imageEnding = await image.ended;
  if (imageEnding.timedOut || imageEnding.code !== 0) {
    throw new Error(`the image did not power off cleanly (code ${imageEnding.code}, timed out ${imageEnding.timedOut}):\n${imageEnding.console.slice(-20).join('\n')}`);
  }
  return { installs, snapshots, imageEnding };
}

export interface UnitFacts {
  /** systemd's own lines about the unit, in order. */
  lines: string[];
  /** `Main process exited, code=…, status=…`. */
  mainExit?: { code: string; status: string; at: number };
  /** The unit's result: 'success' (Deactivated successfully), else systemd's UNIT_RESULT ('signal', 'timeout', 'exit-code', …). */
  result?: string;
  resultAt?: number;
  /** `Service reached runtime time limit. Stopping.` */
  runtimeLimitAt?: number;
  /** Processes systemd killed at the unit's stop: `Killing process N (comm) with signal SIGKILL.` */
  killed: { pid: number; comm: string; signal: string }[];
}

export interface InstanceRun {
  boot: Boot;
  ending: Ending;
  journal: JournalEntry[];
  unit: UnitFacts;
  /** The agent's JSON log lines (its stdout, in the journal). */
  logs: Record<string, any>[];
  /** The agent's non-JSON output (stderr: the timeline). */
  text: string[];
  /** systemd's emergency action when it logged one ("Powering off: unit failed", …; SuccessAction's is logged at debug level only). */
  action?: string;
  /**
   * systemd in the container powering it off: `Reached target poweroff.target` (an orderly
   * poweroff) or `Shutting down.` right after a unit's failure (poweroff-force: no units stopped),
   * and systemd-shutdown's `Powering off.` on the console.
   */
  poweroff?: { at: number; forced: boolean; console: boolean };
  /** Moto after the container ended. */
  instanceState?: string;
  telemetry: Record<string, any>[];
  parameterLeft: boolean;
}

/** systemd's messages about the unit (UNIT=…, from PID 1). */
export function unitFacts(journal: JournalEntry[]): UnitFacts {
  const own = journal.filter((e) => e.UNIT === UNIT && e._PID === '1');
  const facts: UnitFacts = { lines: own.map((e) => e.MESSAGE), killed: [] };
  for (const e of own) {
    const exit = /Main process exited, code=(\w+), status=(\S+)/.exec(e.MESSAGE);
    if (exit) facts.mainExit = { code: exit[1]!, status: exit[2]!, at: entryTime(e) };
    if (/Deactivated successfully/.test(e.MESSAGE)) (facts.result = 'success'), (facts.resultAt = entryTime(e));
    const failed = /Failed with result '([^']+)'/.exec(e.MESSAGE);
    if (failed) (facts.result = e.UNIT_RESULT ?? failed[1]), (facts.resultAt = entryTime(e));
    if (/reached runtime time limit/.test(e.MESSAGE)) facts.runtimeLimitAt = entryTime(e);
    const killed = /Killing process (\d+) \((.*)\) with signal (SIG\w+)/.exec(e.MESSAGE);
    if (killed) facts.killed.push({ pid: Number(killed[1]), comm: killed[2]!, signal: killed[3]! });
  }
  return facts;
}

function poweroffOf(journal: JournalEntry[], ending: Ending): InstanceRun['poweroff'] {
  const console = ending.console.some((l) => /^Powering off\.$/.test(l.trim()));
  const orderly = journal.find((e) => e._PID === '1' && /^Reached target poweroff\.target/.test(e.MESSAGE));
  if (orderly) return { at: entryTime(orderly), forced: false, console };
  const forced = journal.find((e) => e._PID === '1' && /^Shutting down\.$/.test(e.MESSAGE));
  if (forced) return { at: entryTime(forced), forced: true, console };
  return undefined;
}

/** The agent's JSON log lines of a journal. */
export function agentLogs(journal: JournalEntry[]): Record<string, any>[] {
  return journal
    .filter((e) => e.SYSLOG_IDENTIFIER === 'runs-fleet-agent' && e.MESSAGE.startsWith('{'))
    .map((e) => {
      try {
        return JSON.parse(e.MESSAGE) as Record<string, any>;
      } catch {
        return { unparsed: e.MESSAGE };
      }
    });
}

/**
 * Boot the provisioned container as the instance and wait for it to end (bounded by
 * `timeoutMs`); `during` drives the case while it runs (signals, a poweroff request).
 */
export async function runInstance(container: Container, world: World, options: { timeoutMs: number; during?: (boot: Boot) => Promise<void> }): Promise<InstanceRun> {
  const boot = container.boot(options.timeoutMs);
  let duringError: unknown;
  const during = (async () => {
    await boot.waitLeader();
    await options.during?.(boot);
  })().catch((error) => {
    duringError = error;
    container.killAll(); // the case cannot go on: end the container now, and fail
  });
  const ending = await boot.ended;
  await during;
  const journal = boot.journal();
  const run: InstanceRun = {
    boot,
    ending,
    journal,
    unit: unitFacts(journal),
    logs: agentLogs(journal),
    text: journal.filter((e) => e.SYSLOG_IDENTIFIER === 'runs-fleet-agent' && !e.MESSAGE.startsWith('{')).map((e) => e.MESSAGE),
    action: journal.filter((e) => e._PID === '1').map((e) => e.MESSAGE).find((m) => /powering off/i.test(m)),
    poweroff: poweroffOf(journal, ending),
    instanceState: await world.instanceState(),
    telemetry: await world.telemetry(),
    parameterLeft: await world.parameterExists(),
  };
  if (duringError) {
    const error = duringError instanceof Error ? duringError : new Error(String(duringError));
    error.message += `\n--- unit ---\n${run.unit.lines.join('\n')}\n--- console (tail) ---\n${ending.console.slice(-15).join('\n')}`;
    throw error;
  }
  if (ending.timedOut) {
    throw new Error(
      `the instance did not end within ${options.timeoutMs} ms: killed\n--- unit ---\n${run.unit.lines.join('\n')}\n--- agent (tail) ---\n` +
        `${journal.filter((e) => e.SYSLOG_IDENTIFIER === 'runs-fleet-agent').slice(-15).map((e) => e.MESSAGE).join('\n')}\n--- console (tail) ---\n${ending.console.slice(-15).join('\n')}`,
    );
  }
  return run;
}

/** States the agent logged entering, in order. */
export const statesOf = (logs: Record<string, any>[]) => logs.filter((l) => l.msg === 'state').map((l) => l.state as string);
