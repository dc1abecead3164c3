/**
 * What the job's own log says about the machine it ran on.
 *
 * `.setup_info` in the runner root (`[{"group","detail"}]`, src/Runner.Worker/JobExtension.cs,
 * WellKnownConfigFile.SetupInfo) is shown by the runner in the job's "Set up job" step: the
 * instance (from IMDS), the agent and runner versions, where the runner came from and how long
 * the boot took. A field IMDS does not give is left out, never an error.
 *
 * The runner root belongs to the runner user, so the file is written as root without following
 * anything there (safe-fs.ts `writeFilesInto`).
 */
import { join } from 'node:path';
import type { MetadataClient } from '../aws/identity.js';
import type { InstalledRunner } from '../domain.js';
import { writeFilesInto } from '../safe-fs.js';

export interface InstanceFacts {
  instanceId?: string;
  instanceType?: string;
  availabilityZone?: string;
  amiId?: string;
  /** IMDS `instance-life-cycle`: `spot`, `on-demand` or `scheduled`. */
  lifecycle?: string;
}

const IMDS_PATHS: Record<keyof InstanceFacts, string> = {
  instanceId: 'latest/meta-data/instance-id',
  instanceType: 'latest/meta-data/instance-type',
  availabilityZone: 'latest/meta-data/placement/availability-zone',
  amiId: 'latest/meta-data/ami-id',
  lifecycle: 'latest/meta-data/instance-life-cycle',
};

/** A short, printable IMDS value, or undefined. */
function plain(value: string): string | undefined {
  const v = value.trim();
  return v.length > 0 && v.length <= 128 && /^[\x21-\x7e]+$/.test(v) ? v : undefined;
}

/** The instance's facts from IMDS, in parallel; each one that fails or looks wrong is left out. */
export async function readInstanceFacts(client: MetadataClient, known: Partial<InstanceFacts> = {}): Promise<InstanceFacts> {
  const facts: InstanceFacts = {};
  await Promise.all(
    (Object.keys(IMDS_PATHS) as (keyof InstanceFacts)[]).map(async (key) => {
      const given = known[key];
      if (given) return void (facts[key] = given);
      try {
        const value = plain(await client.request(IMDS_PATHS[key], {}));
        if (value) facts[key] = value;
      } catch {
        /* left out */
      }
    }),
  );
  return facts;
}

export interface SetupInfoEntry {
  group: string;
  detail: string;
}

export interface AgentFacts {
  agentVersion: string;
  runner: Pick<InstalledRunner, 'version' | 'source'>;
  /** Seconds from the instance's boot to the agent's start (/proc/uptime), when known. */
  bootSeconds?: number;
  /** Seconds from the agent's start to run.sh about to start, and per state. */
  readySeconds: number;
  timings: Readonly<Record<string, number>>;
}

const SOURCES: Record<InstalledRunner['source'], string> = {
  installed: 'baked into the AMI',
  s3: 'from the S3 cache',
  github: 'downloaded from GitHub',
};

const secondsText = (s: number) => `${Math.round(s * 10) / 10} s`;

/** The `.setup_info` entries. */
export function setupInfo(instance: InstanceFacts, agent: AgentFacts): SetupInfoEntry[] {
  const lines = (pairs: [string, string | undefined][]) =>
    pairs.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}: ${v}`).join('\n');
  const lifecycle = instance.lifecycle === 'spot' ? 'spot' : instance.lifecycle === 'on-demand' ? 'on-demand' : instance.lifecycle;
  const states = ['booting', 'downloading', 'registering']
    .filter((s) => agent.timings[s] !== undefined)
    .map((s) => `${s} ${secondsText(agent.timings[s]!)}`)
    .join(', ');
  const entries: SetupInfoEntry[] = [];
  const machine = lines([
    ['Instance', instance.instanceId],
    ['Instance type', instance.instanceType],
    ['Availability zone', instance.availabilityZone],
    ['AMI', instance.amiId],
    ['Lifecycle', lifecycle],
  ]);
  if (machine) entries.push({ group: 'runs-fleet instance', detail: machine });
  entries.push({
    group: 'runs-fleet agent',
    detail: lines([
      ['Agent version', agent.agentVersion],
      ['Runner version', agent.runner.version],
      ['Runner', SOURCES[agent.runner.source]],
      ['Instance boot to agent start', agent.bootSeconds !== undefined ? secondsText(agent.bootSeconds) : undefined],
      ['Agent start to job ready', `${secondsText(agent.readySeconds)}${states ? ` (${states})` : ''}`],
    ]),
  });
  return entries;
}

/** Write `{runnerDir}/.setup_info` as root, following nothing the runner user could have planted. */
export async function writeSetupInfo(runnerDir: string, entries: readonly SetupInfoEntry[]): Promise<string> {
  await writeFilesInto(runnerDir, [['.setup_info', JSON.stringify(entries, null, 2) + '\n']], { mode: 0o644 });
  return join(runnerDir, '.setup_info');
}

/**
 * What the job-started hook prints in the job's "Set up runner" step: the instance, and what
 * would make the agent stop the job. The runner skips the completed hook once it is signalled
 * (StepsRunner.cs), so this is the one place of the job's log that names them before a stop.
 */
export function startedNotice(instance: InstanceFacts, limits: { maxRuntimeMinutes: number; maxRuntimeAtMs: number; diskMinFreeMb: number }): string[] {
  const about = [instance.instanceType, instance.lifecycle, instance.availabilityZone].filter(Boolean).join(', ');
  const at = `${new Date(limits.maxRuntimeAtMs).toISOString().slice(11, 19)}Z`;
  return [
    `runs-fleet: this job runs on instance ${instance.instanceId ?? '(unknown)'}${about ? ` (${about})` : ''}.`,
    `runs-fleet: the agent stops it at its max runtime of ${limits.maxRuntimeMinutes} minutes (${at}), on a spot interruption notice, ` +
      `when the instance is shut down, or when the runner's disk has less than ${limits.diskMinFreeMb} MB free. ` +
      'The job then ends with "The runner has received a shutdown signal"; the reason is in the agent\'s log and telemetry for this instance.',
  ];
}
