/**
 * What the orchestrator learns about a job beyond its status: the runner logs in S3
 * (pkg/agent/logship), tool-cache misses (pkg/agent/toolcache.go) and the buildx shim's
 * outcome (pkg/agent/buildkitcache.go) — and that a hostile job cannot turn them against root.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { link, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readBuildCacheOutcome, writeBuildkitCacheEnv } from '../services/runner/buildkit-cache.js';
import { RUNNER_LOG_MAX_FILES, runnerLogKey, uploadRunnerLogs } from '../services/logs/runner-logs.js';
import { snapshotToolCache, toolCacheMisses } from '../services/runner/tool-cache.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rfa-job-facts-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runner logs to S3', () => {
  const s3 = mockClient(S3Client);
  const target = { bucket: 'logs', runId: '42', jobId: '4242', instanceId: 'i-1', repo: 'acme/app' };
  const upload = (extra: Partial<Parameters<typeof uploadRunnerLogs>[0]> = {}) =>
    uploadRunnerLogs({ client: new S3Client({ region: 'us-east-1' }), target, runnerDir: dir, budgetMs: 5_000, ...extra });
  beforeEach(() => {
    s3.reset();
    s3.on(PutObjectCommand).resolves({});
  });

  it('uses exactly the orchestrator’s key layout', () => {
    expect(runnerLogKey(target, 'Runner_1.log.gz')).toBe('runner-logs/42/4242/i-1/Runner_1.log.gz');
    expect(runnerLogKey({ ...target, prefix: 'custom/', jobId: undefined }, 'W.log.gz')).toBe('custom/42/unknown-job/i-1/W.log.gz');
  });

  it('gzips Worker_* then Runner_* logs, gzip-encoded and SSE AES256; other files stay', async () => {
    await mkdir(join(dir, '_diag'));
    await writeFile(join(dir, '_diag', 'Runner_20261201-100000-utc.log'), 'runner line\n');
    await writeFile(join(dir, '_diag', 'Worker_20261201-100001-utc.log'), 'worker line\n');
    await writeFile(join(dir, '_diag', 'env.txt'), 'not a log');
    expect(await upload()).toBe('uploaded');
    const puts = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
    expect(puts.map((p) => p.Key)).toEqual(['runner-logs/42/4242/i-1/Worker_20261201-100001-utc.log.gz', 'runner-logs/42/4242/i-1/Runner_20261201-100000-utc.log.gz']);
    expect(puts[0]).toMatchObject({ Bucket: 'logs', ContentEncoding: 'gzip', ContentType: 'text/plain', ServerSideEncryption: 'AES256', Metadata: { repo: 'acme/app', 'job-id': '4242', 'run-id': '42' } });
    expect(gunzipSync(puts[1]!.Body as Buffer).toString()).toBe('runner line\n');
  });

  it('a link the job planted (symbolic or hard) is never followed: nothing but the runner’s own logs leaves; an oversized log is skipped', async () => {
    await mkdir(join(dir, '_diag'));
    await writeFile(join(dir, 'secret.txt'), 'root-only secret');
    await symlink(join(dir, 'secret.txt'), join(dir, '_diag', 'Runner_evil.log'));
    await link(join(dir, 'secret.txt'), join(dir, '_diag', 'Runner_hard.log')); // a hard link: O_NOFOLLOW does not see it
    await writeFile(join(dir, '_diag', 'Worker_big.log'), 'x'.repeat(2_000));
    await writeFile(join(dir, '_diag', 'Runner_ok.log'), 'fine\n');
    expect(await upload({ maxFileBytes: 1_000 })).toBe('partial');
    const bodies = s3.commandCalls(PutObjectCommand).map((c) => gunzipSync(c.args[0].input.Body as Buffer).toString());
    expect(bodies).toEqual(['fine\n']);
  });

  it('uploads at most the 50 newest logs, none from before the agent started', async () => {
    await mkdir(join(dir, '_diag'));
    const now = Date.now() / 1000;
    for (let i = 0; i < 60; i++) {
      const file = join(dir, '_diag', `Worker_${String(i).padStart(2, '0')}.log`);
      await writeFile(file, `${i}\n`);
      await utimes(file, now - 60 + i, now - 60 + i); // Worker_59 the newest
    }
    const stale = join(dir, '_diag', 'Runner_baked.log');
    await writeFile(stale, 'from the AMI build\n');
    await utimes(stale, now - 30 * 86_400, now - 30 * 86_400);
    expect(await upload()).toBe('uploaded');
    const keys = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input.Key!.split('/').at(-1));
    expect(keys).toHaveLength(RUNNER_LOG_MAX_FILES);
    expect(keys[0]).toBe('Worker_10.log.gz');
    expect(keys.at(-1)).toBe('Worker_59.log.gz');
    expect(keys).not.toContain('Runner_baked.log.gz');
  });

  it('no _diag or no logs: skipped; a failing S3: failed; no time left: failed', async () => {
    expect(await upload()).toBe('skipped');
    await mkdir(join(dir, '_diag'));
    expect(await upload()).toBe('skipped');
    await writeFile(join(dir, '_diag', 'Runner_1.log'), 'x\n');
    s3.on(PutObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));
    expect(await upload()).toBe('failed');
    s3.on(PutObjectCommand).callsFake(() => new Promise(() => {}));
    const started = Date.now();
    expect(await upload({ budgetMs: 200 })).toBe('failed');
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('tool cache misses', () => {
  it('are the <Tool>/<version>/<platform> markers that appeared, sorted and capped', async () => {
    const marker = async (tool: string, version: string, platform: string) => {
      await mkdir(join(dir, tool, version), { recursive: true });
      await writeFile(join(dir, tool, version, `${platform}.complete`), '');
    };
    await marker('node', '20.11.0', 'x64');
    await mkdir(join(dir, 'Python', '3.12.1', 'x64'), { recursive: true }); // a partial install: no marker
    const before = await snapshotToolCache(dir);
    expect(before.entries).toEqual(['node/20.11.0/x64']);
    await marker('Python', '3.12.1', 'x64');
    await marker('go', '1.22.0', 'arm64');
    await symlink('/etc', join(dir, 'evil')); // not followed
    const after = await snapshotToolCache(dir);
    expect(toolCacheMisses(before.entries, after.entries)).toEqual(['Python/3.12.1/x64', 'go/1.22.0/arm64']);
    expect(toolCacheMisses([], Array.from({ length: 80 }, (_, i) => `t/${i}/x64`))).toHaveLength(50);
  });

  it('a job writing many markers cannot make the walk unbounded', async () => {
    await mkdir(join(dir, 'tool'), { recursive: true });
    for (let i = 0; i < 60; i++) await mkdir(join(dir, 'tool', String(i)));
    const snapshot = await snapshotToolCache(dir, 30);
    expect(snapshot.truncated).toBe(true);
  });

  it('a missing tool cache is an error (no baseline, so no misses are reported)', async () => {
    await expect(snapshotToolCache(join(dir, 'nope'))).rejects.toThrow();
  });
});

describe('the buildx layer-cache shim', () => {
  it('gets its variables in the runner’s .env, after what config.sh wrote', async () => {
    await writeFile(join(dir, '.env'), 'LANG=C.UTF-8'); // env.sh's line, no trailing newline
    const outcome = await writeBuildkitCacheEnv(dir, { bucket: 'cache-bucket', region: 'eu-west-1', prefix: 'buildkit/\nEVIL=1' });
    expect(await readFile(join(dir, '.env'), 'utf8')).toBe(
      `LANG=C.UTF-8\nRUNS_FLEET_BUILDKIT_CACHE_BUCKET=cache-bucket\nRUNS_FLEET_BUILDKIT_CACHE_REGION=eu-west-1\nRUNS_FLEET_BUILDKIT_CACHE_PREFIX=buildkit/EVIL=1\nRUNS_FLEET_BUILDKIT_CACHE_OUTCOME=${outcome}\n`,
    );
  });

  it('its outcome is the last line’s word; disabled when absent; a planted link or unknown word never read as is', async () => {
    const file = join(dir, '_rf_buildkit_cache_outcome');
    expect(await readBuildCacheOutcome(undefined)).toBe('disabled');
    expect(await readBuildCacheOutcome(file)).toBe('disabled');
    await writeFile(file, 'skipped:no-builder\nengaged:s3\n\n');
    expect(await readBuildCacheOutcome(file)).toBe('engaged');
    await writeFile(file, 'x'.repeat(300));
    expect(await readBuildCacheOutcome(file)).toBe('failed');
    await rm(file);
    await writeFile(join(dir, 'elsewhere'), 'engaged');
    await symlink(join(dir, 'elsewhere'), file);
    expect(await readBuildCacheOutcome(file)).toBe('disabled');
  });
});
