/**
 * The runner's `_diag` logs to S3 before cleanup wipes them, exactly where the
 * orchestrator's readers look (pkg/agent/logship/logship.go): every `Worker_*.log` and
 * `Runner_*.log`, gzipped, at
 *
 *   {runner_logs_prefix or "runner-logs/"}{run_id}/{job_id or "unknown-job"}/{instance_id}/{file}.gz
 *
 * with Content-Encoding gzip and SSE AES256, within a budget (60 s), skipping files over
 * 128 MiB. The outcome is the orchestrator's: uploaded | partial | failed | skipped | disabled.
 *
 * `_diag` belongs to the runner user, whose job may have planted links there: the directory is
 * pinned by a handle and each file opened without following a link (services/safe-fs.ts), so
 * nothing but the runner's own logs can leave the instance.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { LogUploadOutcome } from '../domain.js';
import { describeError } from '../errors.js';
import { raceAbort } from '../retry.js';
import { pinnedPath, withRegularFile } from '../safe-fs.js';

export const DEFAULT_RUNNER_LOGS_PREFIX = 'runner-logs/';
export const RUNNER_LOG_MAX_FILE_BYTES = 128 * 1024 * 1024;
/** A runner writes a handful of logs per job: the newest this many are uploaded (a job could make thousands). */
export const RUNNER_LOG_MAX_FILES = 50;
/** Logs last written this long before the agent started are not this job's (a runner dir baked into the AMI). */
const SINCE_SLACK_MS = 5 * 60_000;
const UNKNOWN_JOB = 'unknown-job';

export interface RunnerLogsTarget {
  bucket: string;
  prefix?: string;
  runId?: string;
  jobId?: string;
  instanceId: string;
  repo?: string;
}

export interface UploadRunnerLogsOptions {
  client: S3Client;
  target: RunnerLogsTarget;
  /** The runner's dir; its `_diag` is read. */
  runnerDir: string;
  budgetMs: number;
  signal?: AbortSignal;
  maxFileBytes?: number;
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

/** The object key of one log (logship.BuildKey): the single definition of the layout readers rely on. */
export function runnerLogKey(target: Pick<RunnerLogsTarget, 'prefix' | 'runId' | 'jobId' | 'instanceId'>, fileName: string): string {
  const prefix = target.prefix || DEFAULT_RUNNER_LOGS_PREFIX;
  return `${prefix}${target.runId ?? ''}/${target.jobId || UNKNOWN_JOB}/${target.instanceId}/${fileName}`;
}

type FileOutcome = 'uploaded' | 'skipped' | 'failed';

export async function uploadRunnerLogs(options: UploadRunnerLogsOptions): Promise<LogUploadOutcome> {
  const { target, log } = options;
  const budget = AbortSignal.any([AbortSignal.timeout(Math.max(0, options.budgetMs)), ...(options.signal ? [options.signal] : [])]);
  const diag = join(options.runnerDir, '_diag');
  let dir;
  try {
    dir = await open(diag, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return 'skipped'; // no _diag: the runner never ran
  }
  try {
    const base = pinnedPath(dir, diag);
    const since = Date.now() - process.uptime() * 1000 - SINCE_SLACK_MS;
    const candidates: { name: string; mtimeMs: number }[] = [];
    for (const name of (await readdir(base)).filter((n) => /^(Worker|Runner)_.*\.log$/.test(n))) {
      const st = await lstat(join(base, name)).catch(() => undefined);
      if (st?.isFile() && st.mtimeMs >= since) candidates.push({ name, mtimeMs: st.mtimeMs });
    }
    const newest = candidates.sort((a, b) => b.mtimeMs - a.mtimeMs).slice(0, RUNNER_LOG_MAX_FILES);
    if (candidates.length > newest.length) log?.warn({ files: candidates.length, uploaded: newest.length }, 'more runner logs than expected: only the newest are uploaded');
    // The orchestrator's order: Worker_* then Runner_*.
    const names = newest.map((c) => c.name).sort((a, b) => Number(a.startsWith('Runner_')) - Number(b.startsWith('Runner_')) || (a < b ? -1 : 1));
    if (names.length === 0) return 'skipped';
    const counts: Record<FileOutcome, number> = { uploaded: 0, skipped: 0, failed: 0 };
    for (const name of names) {
      if (budget.aborted) {
        counts.failed += 1;
        continue;
      }
      const outcome = await uploadOne(join(base, name), name, options, budget).catch((error: unknown) => {
        log?.warn({ file: name, err: describeError(error) }, 'runner log upload failed');
        return 'failed' as const;
      });
      counts[outcome] += 1;
    }
    const result: LogUploadOutcome = counts.uploaded === 0 ? 'failed' : counts.failed > 0 || counts.skipped > 0 ? 'partial' : 'uploaded';
    log?.info({ bucket: target.bucket, ...counts, outcome: result }, 'runner logs uploaded to S3');
    return result;
  } catch (error) {
    log?.warn({ err: describeError(error) }, 'runner logs could not be read');
    return 'failed';
  } finally {
    await dir.close().catch(() => {});
  }
}

async function uploadOne(path: string, name: string, options: UploadRunnerLogsOptions, signal: AbortSignal): Promise<FileOutcome> {
  const max = options.maxFileBytes ?? RUNNER_LOG_MAX_FILE_BYTES;
  const body = await withRegularFile(path, async (handle, size) => {
    if (size > max) return 'too-big' as const;
    const chunks: Buffer[] = [];
    const collect = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    await pipeline(handle.createReadStream({ start: 0, end: Math.max(0, size - 1), autoClose: false }), createGzip(), collect, { signal });
    return Buffer.concat(chunks);
  });
  if (body === undefined) {
    options.log?.warn({ file: name }, 'runner log is not a regular file: not uploaded');
    return 'failed';
  }
  if (body === 'too-big') {
    options.log?.warn({ file: name, maxBytes: max }, 'runner log over the size cap: skipped');
    return 'skipped';
  }
  const { target } = options;
  const metadata: Record<string, string> = {};
  if (target.repo) metadata.repo = target.repo;
  if (target.jobId) metadata['job-id'] = target.jobId;
  if (target.runId) metadata['run-id'] = target.runId;
  await raceAbort(
    options.client.send(
      new PutObjectCommand({
        Bucket: target.bucket,
        Key: runnerLogKey(target, `${name}.gz`),
        Body: body,
        ContentLength: body.length,
        ContentType: 'text/plain',
        ContentEncoding: 'gzip',
        ServerSideEncryption: 'AES256',
        Metadata: metadata,
      }),
      { abortSignal: signal },
    ),
    signal,
  );
  return 'uploaded';
}
