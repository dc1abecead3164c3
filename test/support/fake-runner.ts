/**
 * Builds, at test time, a fake actions/runner tarball (tar.gz, entries at the archive
 * root like the real one: `./config.sh`, `./run.sh`, `./bin/Runner.Listener`, ...).
 * The bash scripts live in `./fake-runner/`; they honor the contracts of
 * /work/shared/docs/runner-and-aws-facts.md (root refusal, JIT env, output lines,
 * signals, exit codes).
 *
 * Test hooks inside the extracted runner dir:
 *   _diag/config-args.json   argv of the last config.sh call (JSON array)
 *   _diag/env.txt            environment the job sees (NUL-separated; `readRunnerEnv`)
 *   _diag/Runner_*-utc.log   a few diag lines
 *   .fake-runner.override.json  written by tests (`writeRunnerOverride`): wins key by key
 *                               over .fake-runner.json, read at run time.
 *   .fake-job-log.txt           the job's log as GitHub would show it: "Set up job" (.setup_info),
 *                               and what the job hooks print ("Set up runner", "Complete runner")
 *   .fake-setup-info-seen.json  .setup_info as the runner (user) read it at job start
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create as createTar } from 'tar';

export type FakeRunnerBehavior =
  | 'succeed'
  | 'fail'
  | 'hang' /* job runs until signalled */
  | 'ignore-sigterm' /* listener and job ignore INT/TERM: only SIGKILL ends them */
  | 'no-job' /* connects, listens, never gets a job */
  | 'crash' /* the listener exits 1 before listening */
  | 'lines' /* job prints `lines` output lines (`line 1`..`line N`) then succeeds */
  | 'deprecated' /* listens, then GitHub refuses the version: the line on stderr, exit 7 (with the variable) or 1 */
  | 'session-exists' /* "A session for this runner already exists." on stderr, retried forever */
  | 'runner-gone' /* listens, then "The runner no longer exists on the server" on stderr, exit 0 */
  | 'hang-after-result'; /* the job succeeds, its result line printed, then the listener never exits */

export interface FakeRunnerOptions {
  version: string;
  behavior: FakeRunnerBehavior;
  lines?: number;
  jobName?: string; // default 'build'
  jobSeconds?: number; // default 0.2 ('succeed' / 'fail')
  /** 'fail' = config.sh fails like a rejected registration token (default 'succeed'). */
  config?: 'succeed' | 'fail' | 'hang';
  /** Bash run as the job's steps, once the job started (as the runner user, with the job's environment). */
  jobScript?: string;
  /** 'deprecated': false = a runner older than v2.333.0, which ignores ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE (exit 1, not 7). */
  deprecatedExitCode?: boolean;
  /** Incompressible bytes in `bin/padding.bin`, so that a benchmark's download costs what a real one does. */
  paddingBytes?: number;
  /** A directory whose contents are added to the runner's root (a benchmark's runner-sized, runner-like payload). */
  extraTree?: string;
}

const SCRIPTS: [source: string, target: string][] = [
  ['config.sh', 'config.sh'],
  ['run.sh', 'run.sh'],
  ['Runner.Listener', 'bin/Runner.Listener'],
  ['lib.sh', 'bin/fake-runner-lib.sh'],
];
// Next to this module; from the repo root when this module was bundled (make demo, make bench).
const scriptDir = [fileURLToPath(new URL('./fake-runner/', import.meta.url)), resolvePath('test/support/fake-runner/')].find((dir) =>
  existsSync(dir),
)!;

/** A `bin/Runner.Listener.deps.json` shaped like the real one (the version is in a key). */
function depsJson(version: string): string {
  const target = '.NETCoreApp,Version=v8.0/linux-x64';
  return JSON.stringify(
    {
      runtimeTarget: { name: target, signature: '' },
      compilationOptions: {},
      targets: {
        '.NETCoreApp,Version=v8.0': {},
        [target]: {
          [`Runner.Listener/${version}`]: {
            dependencies: { 'Runner.Common': version, 'Runner.Sdk': version },
            runtime: { 'Runner.Listener.dll': {} },
          },
          [`Runner.Common/${version}`]: { runtime: { 'Runner.Common.dll': {} } },
        },
      },
      libraries: {
        [`Runner.Listener/${version}`]: { type: 'project', serviceable: false, sha512: '' },
      },
    },
    null,
    2,
  );
}

export async function buildFakeRunnerTarball(opts: FakeRunnerOptions): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-runner-build-'));
  try {
    await mkdir(join(dir, 'bin'));
    for (const [source, target] of SCRIPTS) {
      await copyFile(join(scriptDir, source), join(dir, target));
      await chmod(join(dir, target), 0o755);
    }
    await writeFile(join(dir, 'bin/Runner.Listener.deps.json'), depsJson(opts.version));
    // One key per line: the scripts read it with grep/sed (no jq needed).
    const { jobScript, paddingBytes, extraTree, ...flat } = opts;
    if (extraTree) await cp(extraTree, dir, { recursive: true });
    if (paddingBytes) await writeFile(join(dir, 'bin/padding.bin'), randomBytes(paddingBytes));
    await writeFile(join(dir, '.fake-runner.json'), JSON.stringify(flat, null, 2) + '\n');
    if (jobScript) await writeFile(join(dir, '.fake-runner-job.sh'), `${jobScript}\n`, { mode: 0o755 });
    const pack = createTar({ gzip: true, cwd: dir, portable: true, mtime: new Date('2025-01-01T00:00:00Z') }, ['.']);
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Change the behavior of an extracted fake runner without rebuilding it. */
export async function writeRunnerOverride(runnerDir: string, override: Partial<FakeRunnerOptions>): Promise<void> {
  await writeFile(join(runnerDir, '.fake-runner.override.json'), JSON.stringify(override, null, 2) + '\n');
}

/** The environment the fake runner's job saw (`_diag/env.txt`), as a map. */
export async function readRunnerEnv(runnerDir: string): Promise<Record<string, string>> {
  const raw = await readFile(join(runnerDir, '_diag/env.txt'), 'utf8');
  const env: Record<string, string> = {};
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** The argv of the last `config.sh` call (`_diag/config-args.json`). */
export async function readConfigArgs(runnerDir: string): Promise<string[]> {
  return JSON.parse(await readFile(join(runnerDir, '_diag/config-args.json'), 'utf8')) as string[];
}

/** Unpack a fake runner tarball into `dir` (which must exist), as an AMI bake would; `override` as in writeRunnerOverride. */
export async function extractFakeRunner(tarball: Buffer, dir: string, override?: Partial<FakeRunnerOptions>): Promise<void> {
  const tar = spawnSync('tar', ['-xzf', '-'], { cwd: dir, input: tarball, encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`could not extract the fake runner into ${dir}: ${tar.stderr}`);
  if (override) await writeRunnerOverride(dir, override);
}
