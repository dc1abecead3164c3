/**
 * The agent's configuration, read from the environment (SPEC §2).
 *
 * Every variable is parsed on its own: a bad value becomes an error that names the
 * variable, and the default stands in so the agent can still report and terminate.
 * Parsing is pure (no I/O), so the machine can do it when it is created.
 */
export type Env = Readonly<Record<string, string | undefined>>;

export interface Settings {
  /** From `AWS_REGION`; undefined = ask IMDS. */
  region?: string;
  /** From `RUNS_FLEET_INSTANCE_ID`; undefined = ask IMDS. */
  instanceId?: string;
  /** SSM parameter name; `{instance-id}` is replaced once the id is known. Its credential is beside it (`…/credential`). */
  ssmParameterTemplate: string;
  /** How long to wait for the runner config before giving up: exit 0, nothing reported (RUNS_FLEET_STANDBY_DEADLINE_MINUTES). */
  standbyDeadlineMs: number;
  /** Each SSM call gives up after this (RUNS_FLEET_SSM_TIMEOUT_SECONDS): a hanging SSM is a failed poll. */
  ssmTimeoutMs: number;
  /** Download the runner while waiting for the config (RUNS_FLEET_PREFETCH_RUNNER). */
  prefetchRunner: boolean;
  /** The operator's pinned runner checksums by arch (RUNS_FLEET_RUNNER_SHA256): trusted for the S3 cache and checked on GitHub downloads. */
  runnerSha256: Partial<Record<'x64' | 'arm64', string>>;
  /** Instances upload a GitHub download to the S3 cache (RUNS_FLEET_CACHE_UPLOAD; off: the example role grants GetObject only). */
  cacheUpload: boolean;
  /** The job may reach IMDS, and so the instance role (RUNS_FLEET_JOB_IMDS=allow); default blocked. */
  jobImds: 'block' | 'allow';
  configBucket?: string;
  terminationQueueUrl?: string;
  logGroup?: string;
  maxRuntimeMs: number;
  idleTimeoutMs: number;
  drainGraceMs: number;
  /**
   * After the job's result line, how long run.sh has to exit by itself before it is drained
   * (RUNS_FLEET_RESULT_EXIT_GRACE_SECONDS; default 45 s, above the listener's and worker's own 30 s waits).
   */
  resultExitGraceMs: number;
  runnerDir: string;
  runnerVersion: string;
  runnerUser?: string;
  githubApiUrl: string;
  githubUrl: string;
  diskMinFreeMb: number;
  downloadMinFreeMb: number;
  memMinAvailableMb: number;
  monitorIntervalMs: number;
  spotPollMs: number;
  terminate: boolean;
  stateDir: string;
  reportTimeoutMs: number;
  logFlushTimeoutMs: number;
  terminateTimeoutMs: number;
}

export interface SettingsResult {
  settings: Settings;
  /** One readable message per bad variable, each naming it. */
  errors: string[];
}

export const DEFAULT_SSM_PARAMETER = '/runs-fleet/runners/{instance-id}/config';

const MINUTE = 60_000;
const SECOND = 1_000;

/**
 * The largest value each duration and size setting takes, in its own unit (docs/operations.md).
 * Every timer the machine sets stays far below Node's limit (2^31 - 1 ms, about 24.8 days:
 * a larger delay fires at once), and so does the process's hard deadline, their sum.
 */
export const SETTING_MAXIMA: Readonly<Record<string, number>> = {
  RUNS_FLEET_MAX_RUNTIME_MINUTES: 7_200, // 5 days: GitHub's limit for a job on a self-hosted runner
  RUNS_FLEET_IDLE_TIMEOUT_MINUTES: 1_440,
  RUNS_FLEET_STANDBY_DEADLINE_MINUTES: 10_080,
  RUNS_FLEET_DRAIN_GRACE_SECONDS: 3_600,
  RUNS_FLEET_RESULT_EXIT_GRACE_SECONDS: 3_600,
  RUNS_FLEET_SSM_TIMEOUT_SECONDS: 60,
  RUNS_FLEET_REPORT_TIMEOUT_SECONDS: 600,
  RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS: 600,
  RUNS_FLEET_TERMINATE_TIMEOUT_SECONDS: 600,
  RUNS_FLEET_MONITOR_INTERVAL_SECONDS: 3_600,
  RUNS_FLEET_SPOT_POLL_SECONDS: 300,
  RUNS_FLEET_DISK_MIN_FREE_MB: 10_000_000,
  RUNS_FLEET_DOWNLOAD_MIN_FREE_MB: 10_000_000,
  RUNS_FLEET_MEM_MIN_AVAILABLE_MB: 10_000_000,
};

/** Node runs a setTimeout delay above this at once: nothing may ever ask for more. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function parseSettings(env: Env): SettingsResult {
  const errors: string[] = [];
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };

  const number = (names: string[], fallback: number, unitMs: number, opts: { min?: number } = {}): number => {
    const name = names.find((n) => read(n) !== undefined);
    if (name === undefined) return fallback * unitMs;
    const raw = read(name)!;
    const value = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
    const max = SETTING_MAXIMA[names[0]!];
    if (!Number.isFinite(value) || value < (opts.min ?? 0)) {
      errors.push(`${name}=${JSON.stringify(raw)} is not a valid number (expected a non-negative number, e.g. ${fallback})`);
      return fallback * unitMs;
    }
    if (max !== undefined && value > max) {
      errors.push(`${name}=${JSON.stringify(raw)} is above its maximum of ${max}`);
      return fallback * unitMs;
    }
    return Math.round(value * unitMs);
  };

  const url = (name: string, fallback?: string): string | undefined => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      errors.push(`${name}=${JSON.stringify(raw)} is not a URL`);
      return fallback;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      errors.push(`${name}=${JSON.stringify(raw)} has the unsupported scheme "${parsed.protocol}" (use https:// or http://)`);
      return fallback;
    }
    return raw.replace(/\/+$/, '');
  };

  const boolean = (name: string, fallback: boolean): boolean => {
    const raw = read(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    errors.push(`${name}=${JSON.stringify(read(name))} is not a boolean (use true or false)`);
    return fallback;
  };

  const runnerVersion = read('RUNS_FLEET_RUNNER_VERSION') ?? 'latest';
  const versionOk = runnerVersion === 'latest' || /^v?\d+\.\d+\.\d+$/.test(runnerVersion);
  if (!versionOk) {
    errors.push(`RUNS_FLEET_RUNNER_VERSION=${JSON.stringify(runnerVersion)} is not "latest" or a version like 2.330.0`);
  }

  const runnerDir = read('RUNS_FLEET_RUNNER_DIR') ?? '/opt/actions-runner';
  if (!runnerDir.startsWith('/')) errors.push(`RUNS_FLEET_RUNNER_DIR=${JSON.stringify(runnerDir)} must be an absolute path`);
  const stateDir = read('RUNS_FLEET_STATE_DIR') ?? '/var/lib/runs-fleet-agent';
  if (!stateDir.startsWith('/')) errors.push(`RUNS_FLEET_STATE_DIR=${JSON.stringify(stateDir)} must be an absolute path`);

  const instanceId = read('RUNS_FLEET_INSTANCE_ID');
  if (instanceId !== undefined && !/^i-[0-9a-zA-Z]+$/.test(instanceId)) {
    errors.push(`RUNS_FLEET_INSTANCE_ID=${JSON.stringify(instanceId)} is not an instance id like i-0123456789abcdef0`);
  }

  const settings: Settings = {
    region: read('AWS_REGION') ?? read('AWS_DEFAULT_REGION'),
    instanceId: instanceId !== undefined && /^i-[0-9a-zA-Z]+$/.test(instanceId) ? instanceId : undefined,
    ssmParameterTemplate: read('RUNS_FLEET_SSM_PARAMETER') ?? DEFAULT_SSM_PARAMETER,
    standbyDeadlineMs: number(['RUNS_FLEET_STANDBY_DEADLINE_MINUTES'], 120, MINUTE),
    ssmTimeoutMs: number(['RUNS_FLEET_SSM_TIMEOUT_SECONDS'], 10, SECOND),
    prefetchRunner: boolean('RUNS_FLEET_PREFETCH_RUNNER', true),
    runnerSha256: pinnedChecksums(read('RUNS_FLEET_RUNNER_SHA256'), errors),
    cacheUpload: boolean('RUNS_FLEET_CACHE_UPLOAD', false),
    jobImds: choice('RUNS_FLEET_JOB_IMDS', ['block', 'allow'] as const, 'block', read, errors),
    configBucket: read('RUNS_FLEET_CONFIG_BUCKET'),
    terminationQueueUrl: url('RUNS_FLEET_TERMINATION_QUEUE_URL'),
    logGroup: read('RUNS_FLEET_LOG_GROUP'),
    maxRuntimeMs: number(['RUNS_FLEET_MAX_RUNTIME_MINUTES', 'RUNS_FLEET_MAX_RUNTIME'], 360, MINUTE),
    idleTimeoutMs: number(['RUNS_FLEET_IDLE_TIMEOUT_MINUTES'], 15, MINUTE),
    drainGraceMs: number(['RUNS_FLEET_DRAIN_GRACE_SECONDS'], 90, SECOND),
    resultExitGraceMs: number(['RUNS_FLEET_RESULT_EXIT_GRACE_SECONDS'], 45, SECOND),
    runnerDir: runnerDir.replace(/\/+$/, '') || '/',
    runnerVersion: runnerVersion.replace(/^v/, ''),
    runnerUser: read('RUNS_FLEET_RUNNER_USER'),
    githubApiUrl: url('RUNS_FLEET_GITHUB_API_URL', 'https://api.github.com')!,
    githubUrl: url('RUNS_FLEET_GITHUB_URL', 'https://github.com')!,
    diskMinFreeMb: number(['RUNS_FLEET_DISK_MIN_FREE_MB'], 500, 1),
    downloadMinFreeMb: number(['RUNS_FLEET_DOWNLOAD_MIN_FREE_MB'], 1024, 1),
    memMinAvailableMb: number(['RUNS_FLEET_MEM_MIN_AVAILABLE_MB'], 200, 1),
    monitorIntervalMs: number(['RUNS_FLEET_MONITOR_INTERVAL_SECONDS'], 30, SECOND),
    spotPollMs: number(['RUNS_FLEET_SPOT_POLL_SECONDS'], 5, SECOND),
    terminate: boolean('RUNS_FLEET_TERMINATE', true),
    stateDir: stateDir.replace(/\/+$/, ''),
    reportTimeoutMs: number(['RUNS_FLEET_REPORT_TIMEOUT_SECONDS'], 30, SECOND),
    logFlushTimeoutMs: number(['RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS'], 10, SECOND),
    terminateTimeoutMs: number(['RUNS_FLEET_TERMINATE_TIMEOUT_SECONDS'], 30, SECOND),
  };
  if (read('AWS_EC2_METADATA_SERVICE_ENDPOINT') !== undefined) url('AWS_EC2_METADATA_SERVICE_ENDPOINT');
  for (const name of Object.keys(env)) {
    if (name.startsWith('AWS_ENDPOINT_URL') && read(name) !== undefined) url(name);
  }
  return { settings, errors };
}

/** `RUNS_FLEET_RUNNER_SHA256`: `<hex>` (this machine's arch) or `x64=<hex>,arm64=<hex>`. */
function pinnedChecksums(raw: string | undefined, errors: string[]): Partial<Record<'x64' | 'arm64', string>> {
  if (raw === undefined) return {};
  const here = process.arch === 'arm64' ? 'arm64' : 'x64';
  const pins: Partial<Record<'x64' | 'arm64', string>> = {};
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [arch, hex] = part.includes('=') ? (part.split('=') as [string, string]) : [here, part];
    if ((arch !== 'x64' && arch !== 'arm64') || !/^[0-9a-fA-F]{64}$/.test(hex ?? '')) {
      errors.push(`RUNS_FLEET_RUNNER_SHA256 is not a SHA-256 (64 hex digits), or x64=<sha256>,arm64=<sha256>`);
      return {};
    }
    pins[arch] = hex!.toLowerCase();
  }
  return pins;
}

function choice<T extends string>(name: string, values: readonly T[], fallback: T, read: (n: string) => string | undefined, errors: string[]): T {
  const raw = read(name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if ((values as readonly string[]).includes(raw)) return raw as T;
  errors.push(`${name}=${JSON.stringify(read(name))} is not one of ${values.join(', ')}`);
  return fallback;
}

/** The SSM parameter name for this instance. */
export function ssmParameterName(settings: Settings, instanceId: string): string {
  return settings.ssmParameterTemplate.replaceAll('{instance-id}', instanceId);
}

/**
 * The credential parameter beside the config (the orchestrator's split layout,
 * pkg/secrets/ssm.go): `{prefix}/{instance-id}/config` → `{prefix}/{instance-id}/credential`.
 */
export function credentialParameterName(configName: string): string {
  return configName.endsWith('/config') ? `${configName.slice(0, -'/config'.length)}/credential` : `${configName}/credential`;
}
