/**
 * The runs-fleet orchestrator's side of the wire, with its own semantics: the Go program in
 * test/contract/orchestrator (its RunnerConfig and Message types, its credential packing, its
 * termination handler's decode and validation, copied from Shatille/runs-fleet). `make test`
 * builds it; these helpers build it too when it is missing or older than its sources.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const SOURCE_DIR = resolve('test/contract/orchestrator');
export const MIRROR_BINARY = resolve('.build/orchestrator-mirror');

/** The orchestrator's Go RunnerConfig, by its JSON names. */
export interface OrchestratorConfig {
  org?: string;
  repo?: string;
  run_id?: string;
  jit_token?: string;
  jit_config?: string;
  labels?: string[] | null;
  runner_group?: string;
  runner_name?: string;
  job_id?: string;
  cache_token?: string;
  cache_url?: string;
  termination_queue_url?: string;
  is_org?: boolean;
  created_at?: string;
  buildkit_cache_bucket?: string;
  buildkit_cache_region?: string;
  buildkit_cache_prefix?: string;
  runner_logs_bucket?: string;
  runner_logs_prefix?: string;
}

export interface Rendered {
  layout: 'split' | 'legacy';
  config: string;
  credential: string | null;
  jit_config?: string;
  jit_config_sha256?: string;
  jit_config_chars?: number;
  /** `sha256sum .runner .credentials .credentials_rsaparams` of the files the JIT config carries. */
  jit_files_sha256?: string;
  config_chars: number;
  credential_chars: number;
  written_at?: string;
}

export interface Verdict {
  accepted: boolean;
  action: 'requeue' | 'confirm' | 'complete' | 'drop' | 'redeliver';
  reason?: string;
  /** The orchestrator's jobResult(status) for a completion: served, timeout, interrupted, error. */
  result?: 'served' | 'timeout' | 'interrupted' | 'error';
  message?: Record<string, unknown>;
}

/** Build the mirror when it is missing or stale (Debian's golang-go; `make test` installs it). */
export function ensureMirror(): string {
  const sources = readdirSync(SOURCE_DIR).filter((f) => f.endsWith('.go') || f === 'go.mod');
  const newest = Math.max(...sources.map((f) => statSync(join(SOURCE_DIR, f)).mtimeMs));
  if (existsSync(MIRROR_BINARY) && statSync(MIRROR_BINARY).mtimeMs >= newest) return MIRROR_BINARY;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0) {
    throw new Error('the orchestrator contract tests need Go (Debian: apt-get install golang-go; `make test` installs it): `go version` failed');
  }
  mkdirSync(resolve('.build/gocache'), { recursive: true });
  const build = spawnSync('go', ['build', '-o', MIRROR_BINARY, '.'], {
    cwd: SOURCE_DIR,
    encoding: 'utf8',
    env: { ...process.env, GOCACHE: resolve('.build/gocache'), GOFLAGS: '-mod=mod', GOPROXY: 'off', CGO_ENABLED: '0' },
  });
  if (build.status !== 0) throw new Error(`go build of the orchestrator mirror failed:\n${build.stderr}`);
  return MIRROR_BINARY;
}

function run(args: string[], input: string): Promise<string> {
  const binary = ensureMirror();
  return new Promise((resolveRun, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun(stdout) : reject(new Error(`orchestrator-mirror ${args[0]} exited ${code}: ${stderr}`))));
    child.stdin.end(input);
  });
}

/** The SSM parameter values the orchestrator writes for `config` (no SSM involved). */
export async function renderConfig(config: OrchestratorConfig, options: { layout?: 'split' | 'legacy'; realJit?: boolean } = {}): Promise<Rendered> {
  const args = ['render', '-layout', options.layout ?? 'split', ...(options.realJit ? ['-real-jit'] : [])];
  return JSON.parse(await run(args, JSON.stringify(config))) as Rendered;
}

/**
 * Write `config` to SSM as the orchestrator's SSMStore.Put does (credential first, then config;
 * Standard tier), after `delayMs`. Resolves once written.
 */
export async function putConfigAsOrchestrator(options: {
  endpoint: string;
  region: string;
  instanceId: string;
  config: OrchestratorConfig;
  layout?: 'split' | 'legacy';
  delayMs?: number;
  realJit?: boolean;
}): Promise<Rendered> {
  const args = [
    'put-config',
    '-endpoint', options.endpoint,
    '-region', options.region,
    '-instance', options.instanceId,
    '-layout', options.layout ?? 'split',
    '-delay', `${options.delayMs ?? 0}ms`,
    ...(options.realJit ? ['-real-jit'] : []),
  ];
  return JSON.parse(await run(args, JSON.stringify(options.config))) as Rendered;
}

/** What the orchestrator's termination handler does with each message body. */
export async function decodeAsOrchestrator(bodies: string[]): Promise<Verdict[]> {
  return JSON.parse(await run(['decode'], JSON.stringify(bodies))) as Verdict[];
}

/** The status → what the orchestrator must do with it, for the assertions of the e2e suites. */
export function expectedAction(status: string): Verdict['action'] {
  if (status === 'bootstrap_failed') return 'requeue';
  if (status === 'started') return 'confirm';
  return 'complete';
}

/**
 * Every message a world's queue received, decoded by the orchestrator's handler: each one must
 * have the effect its status means (a `started` confirms, a final completes, bootstrap_failed
 * requeues). Drains what the test has not read yet.
 */
export async function orchestratorVerdicts(world: { telemetry(): Promise<unknown[]>; bodies: string[] }): Promise<{ status: string; verdict: Verdict }[]> {
  await world.telemetry();
  const verdicts = world.bodies.length > 0 ? await decodeAsOrchestrator(world.bodies) : [];
  return verdicts.map((verdict, i) => ({ status: String((JSON.parse(world.bodies[i]!) as { status?: unknown }).status), verdict }));
}

/** The failures among `orchestratorVerdicts`, readable in a test failure ([] when all is well). */
export function misread(verdicts: { status: string; verdict: Verdict }[]): string[] {
  return verdicts
    .filter(({ status, verdict }) => !verdict.accepted || verdict.action !== expectedAction(status))
    .map(({ status, verdict }) => `${status}: ${verdict.action}${verdict.reason ? ` (${verdict.reason})` : ''}`);
}
