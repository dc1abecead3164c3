/**
 * The runs-fleet AMI's buildx layer-cache shim (pkg/agent/buildkitcache.go): it reads
 * `RUNS_FLEET_BUILDKIT_CACHE_{BUCKET,REGION,PREFIX,OUTCOME}` from the runner's `.env`
 * (run.sh loads it at start) and appends its outcome (`engaged|skipped|failed|disabled`,
 * detail after a colon) to the OUTCOME file, which the agent reports as
 * `build_cache_interception`.
 *
 * `.env` is written before run.sh starts, when nothing of the job runs yet; the outcome
 * file is the job's to write, so it is read as root without following a link, a small
 * regular file only.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

export const BUILDKIT_OUTCOME_FILE = '_rf_buildkit_cache_outcome';
export const BUILD_CACHE_OUTCOMES = ['engaged', 'skipped', 'failed', 'disabled'] as const;
const MAX_OUTCOME_BYTES = 64 * 1024;

export interface BuildkitCacheConfig {
  bucket: string;
  region?: string;
  prefix?: string;
}

/** `.env` values are one line each. */
const oneLine = (value: string) => value.replace(/[\r\n]/g, '');

/** Append the shim's variables to `{runnerDir}/.env`; returns the outcome file the shim writes. */
export async function writeBuildkitCacheEnv(runnerDir: string, cache: BuildkitCacheConfig): Promise<string> {
  const outcomeFile = join(runnerDir, BUILDKIT_OUTCOME_FILE);
  const lines = [
    ['RUNS_FLEET_BUILDKIT_CACHE_BUCKET', cache.bucket],
    ['RUNS_FLEET_BUILDKIT_CACHE_REGION', cache.region ?? ''],
    ['RUNS_FLEET_BUILDKIT_CACHE_PREFIX', cache.prefix ?? ''],
    ['RUNS_FLEET_BUILDKIT_CACHE_OUTCOME', outcomeFile],
  ].map(([name, value]) => `${name}=${oneLine(value!)}\n`);
  await appendNoFollow(join(runnerDir, '.env'), lines.join(''));
  return outcomeFile;
}

async function appendNoFollow(path: string, text: string): Promise<void> {
  const handle = await open(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    // A .env that does not end with a newline (config.sh's env.sh writes one line per variable) gets one first.
    const prefix = st.size > 0 ? await lastByteIsNewline(handle, st.size).then((nl) => (nl ? '' : '\n')) : '';
    await handle.write(prefix + text);
  } finally {
    await handle.close();
  }
}

async function lastByteIsNewline(handle: import('node:fs/promises').FileHandle, size: number): Promise<boolean> {
  const buf = Buffer.alloc(1);
  const { bytesRead } = await handle.read(buf, 0, 1, size - 1);
  return bytesRead === 1 && buf[0] === 0x0a;
}

/**
 * The shim's outcome: the last non-empty line's word before any colon; "disabled" when the
 * feature is off, the shim never ran (no file), or the file is not a small regular file.
 */
export async function readBuildCacheOutcome(outcomeFile: string | undefined): Promise<string> {
  if (!outcomeFile) return 'disabled';
  let handle;
  try {
    handle = await open(outcomeFile, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile() || st.nlink !== 1) return 'disabled';
    const start = Math.max(0, st.size - MAX_OUTCOME_BYTES);
    const buf = Buffer.alloc(st.size - start);
    await handle.read(buf, 0, buf.length, start);
    const last = buf.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
    if (!last) return 'disabled';
    const word = last.split(':')[0]!.trim();
    // The orchestrator turns it into a metric label: keep it to the shim's own words.
    return (BUILD_CACHE_OUTCOMES as readonly string[]).includes(word) ? word : 'failed';
  } catch {
    return 'disabled';
  } finally {
    await handle?.close();
  }
}
