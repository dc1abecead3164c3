/**
 * Runner acquisition end to end at service level: the fake GitHub (Releases API and
 * redirecting download), moto's S3 and a real runner dir on disk.
 * Covers the three sources, the cache upload, checksum handling, failure
 * classification, abort, stall, disk check and progress logging.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { dirname, join } from 'node:path';
import pino, { type Logger } from 'pino';
import { ChecksumMismatchError, DownloadError } from '../services/errors.js';
import type { Fetch } from '../services/install/github-releases.js';
import { acquireRunner, installedRunnerVersion, type AcquireRunnerOptions } from '../services/install/runner-download.js';
import { RunnerCache, runnerCacheKey, uploadToCache } from '../services/install/s3-cache.js';
import { parseSettings, type Settings } from '../services/settings.js';
import { startFakeGitHub, type FakeGitHub } from './support/fake-github.js';
import { buildFakeRunnerTarball, sha256 } from './support/fake-runner.js';
import { startMoto, type Moto } from './support/moto.js';

const VERSION = '2.330.0';
const BUCKET = 'runs-fleet-config';

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

let x64: Buffer;
let arm64: Buffer;
let moto: Moto;
let s3: S3Client;
let root: string;
let runnerDir: string;
let lines: LogLine[];
let logger: Logger;
let github: FakeGitHub | undefined;

beforeAll(async () => {
  [x64, arm64, moto] = await Promise.all([
    buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed' }),
    buildFakeRunnerTarball({ version: VERSION, behavior: 'fail' }),
    startMoto(),
  ]);
  s3 = new S3Client({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    logger: { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
});
afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'runs-fleet-download-'));
  runnerDir = join(root, 'actions-runner');
  lines = [];
  logger = pino({ level: 'debug', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  await moto.reset();
});
afterEach(async () => {
  await github?.close();
  github = undefined;
  await rm(root, { recursive: true, force: true });
});

async function fakeGitHub(checksum: 'digest' | 'body' | 'none' | 'wrong' = 'digest'): Promise<FakeGitHub> {
  github = await startFakeGitHub({ version: VERSION, tarballs: { x64, arm64 }, checksum });
  return github;
}

function settings(env: Record<string, string> = {}): Settings {
  const parsed = parseSettings({
    RUNS_FLEET_RUNNER_DIR: runnerDir,
    RUNS_FLEET_RUNNER_VERSION: VERSION,
    RUNS_FLEET_GITHUB_API_URL: github?.apiUrl ?? 'http://127.0.0.1:9/api',
    RUNS_FLEET_DOWNLOAD_MIN_FREE_MB: '1',
    ...env,
  });
  expect(parsed.errors).toEqual([]);
  return parsed.settings;
}

function acquire(overrides: Partial<AcquireRunnerOptions> = {}) {
  return acquireRunner({ settings: settings(), logger, arch: 'x64', ...overrides });
}

async function rejection(promise: Promise<unknown>): Promise<DownloadError> {
  try {
    await promise;
  } catch (error) {
    return error as DownloadError;
  }
  throw new Error('expected a rejection');
}

async function createBucket() {
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
}

/** Install the tarball the way an AMI build would (plain tar, no marker of ours). */
async function bakeIntoAmi(tarball: Buffer) {
  await mkdir(runnerDir, { recursive: true });
  execFileSync('tar', ['-xzf', '-', '-C', runnerDir], { input: tarball });
}

const downloads = (gh: FakeGitHub) => gh.requests.filter((r) => !r.path.startsWith('/api/'));
/** The logger the acquisitions use (its lines are in `lines`), for the cache upload too. */
const log = { info: (o: object, m?: string) => logger.info(o, m), warn: (o: object, m?: string) => logger.warn(o, m) };
const logged = (msg: string | RegExp) => lines.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));

describe('source 1: already installed', () => {
  it('AMI-baked runner at the pinned version: no request at all (GitHub or S3)', async () => {
    const gh = await fakeGitHub();
    await bakeIntoAmi(x64);
    let s3Calls = 0;
    const countingS3 = { send: async () => void s3Calls++ } as unknown as S3Client;

    const { runner } = await acquire({
      settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET }),
      cache: new RunnerCache(countingS3, BUCKET),
    });

    expect(runner).toEqual({ dir: runnerDir, version: VERSION, source: 'installed' }); // nothing kept for the cache
    expect(gh.requests).toEqual([]);
    expect(s3Calls).toBe(0);
    expect(logged(`runner ${VERSION} ready from installed`)).toHaveLength(1);
  });

  it('with latest: one API call, and no download when the latest is installed', async () => {
    const gh = await fakeGitHub();
    await bakeIntoAmi(x64);

    const { runner } = await acquire({ settings: settings({ RUNS_FLEET_RUNNER_VERSION: 'latest' }) });

    expect(runner.source).toBe('installed');
    expect(gh.requests).toEqual([{ method: 'GET', path: '/api/repos/actions/runner/releases/latest' }]);
  });

  it('a different installed version is replaced by the wanted one', async () => {
    const gh = await fakeGitHub();
    await bakeIntoAmi(await buildFakeRunnerTarball({ version: '2.329.0', behavior: 'succeed' }));
    expect(await installedRunnerVersion(runnerDir)).toBe('2.329.0');

    const { runner } = await acquire();

    expect(runner).toEqual({ dir: runnerDir, version: VERSION, source: 'github' });
    expect(await installedRunnerVersion(runnerDir)).toBe(VERSION);
    expect(downloads(gh).length).toBeGreaterThan(0);
    expect(logged(/is installed but 2\.330\.0 is wanted/)).toHaveLength(1);
  });

  it('reads the version from bin/Runner.Listener.deps.json or our marker, and needs run.sh', async () => {
    await bakeIntoAmi(x64);
    expect(await installedRunnerVersion(runnerDir)).toBe(VERSION);

    await writeFile(join(runnerDir, '.runner-version'), '2.331.0\n');
    expect(await installedRunnerVersion(runnerDir)).toBe('2.331.0');

    await rm(join(runnerDir, 'run.sh'));
    expect(await installedRunnerVersion(runnerDir)).toBeUndefined();
    expect(await installedRunnerVersion(join(root, 'nothing-here'))).toBeUndefined();
  });
});

describe('source 2: the S3 cache', () => {
  const putCached = (body: Buffer, meta: string, checksum = true) =>
    s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: runnerCacheKey(VERSION, 'x64'),
        Body: body,
        Metadata: { sha256: meta },
        ...(checksum ? { ChecksumSHA256: Buffer.from(sha256(body), 'hex').toString('base64') } : {}),
      }),
    );

  it("pinned version found in S3 with the operator's manifest: installed from it with zero GitHub requests", async () => {
    const gh = await fakeGitHub();
    await createBucket();
    await putCached(x64, sha256(x64));
    await new RunnerCache(s3, BUCKET).writeManifest({ version: VERSION, sha256: { x64: sha256(x64) } });

    const { runner, timings } = await acquire({ settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET }), cache: new RunnerCache(s3, BUCKET) });

    expect(runner).toEqual({ dir: runnerDir, version: VERSION, source: 's3' });
    expect(gh.requests).toEqual([]);
    expect(await stat(join(runnerDir, 'bin/Runner.Listener'))).toBeTruthy();
    expect(await readFile(join(runnerDir, '.runner-version'), 'utf8')).toBe(`${VERSION}\n`);
    expect(timings.s3).toBeGreaterThan(0);
    expect(timings.github_api).toBeUndefined();
    expect(logged(/ready from s3/)[0]).toMatchObject({ checksumSource: 'manifest' });
  });

  it('with RUNS_FLEET_RUNNER_SHA256 pinned: zero GitHub requests too', async () => {
    const gh = await fakeGitHub();
    await createBucket();
    await putCached(x64, sha256(x64));
    const { runner } = await acquire({ settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET, RUNS_FLEET_RUNNER_SHA256: `x64=${sha256(x64)}` }), cache: new RunnerCache(s3, BUCKET) });
    expect(runner.source).toBe('s3');
    expect(gh.requests).toEqual([]);
  });

  it('no pin and no manifest: the cached tarball is verified against the GitHub digest (one API call, no download)', async () => {
    const gh = await fakeGitHub();
    await createBucket();
    await putCached(x64, sha256(x64));
    const { runner } = await acquire({ settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET }), cache: new RunnerCache(s3, BUCKET) });
    expect(runner.source).toBe('s3');
    expect(gh.requests.map((r) => r.path)).toEqual([`/api/repos/actions/runner/releases/tags/v${VERSION}`]);
  });

  it('a poisoned cache is refused: a substitute tarball with matching metadata never installs, GitHub serves the real one', async () => {
    // What a job holding the instance role could do: upload its own tarball with its own checksums.
    await fakeGitHub();
    await createBucket();
    await putCached(arm64, sha256(arm64)); // metadata and S3 checksum both match the substitute
    const { runner } = await acquire({ settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET }), cache: new RunnerCache(s3, BUCKET) });
    expect(runner.source).toBe('github');
    const refusal = logged('S3 cache unavailable or refused: falling back to GitHub')[0]!;
    // Hashed while streaming, refused before anything moved into place (moto returns no ChecksumSHA256;
    // against real S3 the refusal comes before the first byte: see the RunnerCache unit test).
    expect(refusal.err).toMatch(/checksum mismatch .*expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/);
    expect(await readFile(join(runnerDir, 'bin/Runner.Listener.deps.json'), 'utf8')).toContain(VERSION);
  });

  it("S3's own checksum refuses a substitute before a byte is read (checksum first)", async () => {
    const fake = mockClient(S3Client);
    const destroyed: boolean[] = [];
    const body = Readable.from([arm64]);
    body.on('close', () => destroyed.push(true));
    fake.on(GetObjectCommand).resolves({ Body: sdkStreamMixin(body), ChecksumSHA256: Buffer.from(sha256(arm64), 'hex').toString('base64'), Metadata: { sha256: sha256(arm64) } });
    const error = await new RunnerCache(new S3Client({ region: 'us-east-1' }), BUCKET).open(VERSION, 'x64', undefined, sha256(x64)).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/S3 holds sha256 [0-9a-f]{64}, the trusted checksum is [0-9a-f]{64}; not a byte was extracted/);
    expect(fake.commandCalls(GetObjectCommand)[0]!.args[0].input).toMatchObject({ ChecksumMode: 'ENABLED' });
    fake.restore();
  });

  it('a cache miss falls back to GitHub; instances upload only with RUNS_FLEET_CACHE_UPLOAD=true', async () => {
    const gh = await fakeGitHub();
    await createBucket();

    const off = await acquire({ settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET }), cache: new RunnerCache(s3, BUCKET) });
    expect(off.runner.cacheArchive).toBeUndefined();
    await rm(runnerDir, { recursive: true, force: true });

    const first = await acquire({ settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET, RUNS_FLEET_CACHE_UPLOAD: 'true' }), cache: new RunnerCache(s3, BUCKET) });
    const archive = first.runner.cacheArchive!;
    expect(archive).toMatchObject({ version: VERSION, arch: 'x64', sha256: sha256(x64), bytes: x64.length });
    expect(dirname(archive.file)).toBe(dirname(runnerDir)); // beside the runner dir, never inside the tree that is chowned
    expect(await uploadToCache(new RunnerCache(s3, BUCKET), archive, log)).toBe('uploaded');
    expect(first.runner.source).toBe('github');
    expect(logged(/^S3 cache miss/)).toHaveLength(2);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: runnerCacheKey(VERSION, 'x64') }));
    expect(head.Metadata?.sha256).toBe(sha256(x64));
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: runnerCacheKey(VERSION, 'x64') }));
    expect(Buffer.from(await object.Body!.transformToByteArray()).equals(x64)).toBe(true);
    expect((await readdir(dirname(runnerDir))).filter((n) => n.startsWith('.cache-upload-'))).toEqual([]);
    expect(logged('runner tarball uploaded to the S3 cache')).toHaveLength(1);

    // The next instance with the same pin gets it from S3, verified against the GitHub digest (no download).
    const before = gh.requests.filter((r) => r.path.includes('/download/')).length;
    runnerDir = join(root, 'second-instance');
    const second = await acquire({ settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET }), cache: new RunnerCache(s3, BUCKET) });
    expect(second.runner.source).toBe('s3');
    expect(gh.requests.filter((r) => r.path.includes('/download/')).length).toBe(before);
  });

  it('the upload is not on the critical path, and its lifetime is its caller\'s: aborted, it stops and removes the file', async () => {
    await fakeGitHub();
    await createBucket();
    const slowS3 = {
      send: async (command: unknown, options?: { abortSignal?: AbortSignal }) => {
        if (command instanceof PutObjectCommand) {
          await new Promise((_, reject) => options?.abortSignal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))));
        }
        return s3.send(command as GetObjectCommand);
      },
    } as unknown as S3Client;
    const result = await acquire({ settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET, RUNS_FLEET_CACHE_UPLOAD: 'true' }), cache: new RunnerCache(slowS3, BUCKET) });
    expect(result.runner.source).toBe('github'); // back before any upload started
    const controller = new AbortController();
    const upload = uploadToCache(new RunnerCache(slowS3, BUCKET), result.runner.cacheArchive!, log, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    expect(await upload).toBe('failed');
    expect((await readdir(dirname(runnerDir))).filter((n) => n.startsWith('.cache-upload-'))).toEqual([]);
  });

  it('S3 unavailable (no such bucket) is logged and GitHub is used', async () => {
    await fakeGitHub();

    const { runner } = await acquire({
      settings: settings({ RUNS_FLEET_CONFIG_BUCKET: BUCKET, RUNS_FLEET_CACHE_UPLOAD: 'true' }),
      cache: new RunnerCache(s3, BUCKET),
    });
    expect(await uploadToCache(new RunnerCache(s3, BUCKET), runner.cacheArchive!, log)).toBe('failed'); // no bucket: logged, never rejects

    expect(runner.source).toBe('github');
    const warning = logged('S3 cache unavailable or refused: falling back to GitHub')[0]!;
    expect(warning.err).toMatch(/NoSuchBucket/);
    expect(logged('S3 cache upload failed (best effort)')).toHaveLength(1);
  });
});

describe('source 3: GitHub Releases', () => {
  it('downloads the pinned release (following the redirect), verifies and extracts it', async () => {
    const gh = await fakeGitHub();

    const { runner, timings } = await acquire();

    expect(runner).toEqual({ dir: runnerDir, version: VERSION, source: 'github' });
    expect(runner.cacheArchive).toBeUndefined();
    expect(gh.requests.map((r) => r.path)).toEqual([
      `/api/repos/actions/runner/releases/tags/v${VERSION}`,
      `/actions/runner/releases/download/v${VERSION}/actions-runner-linux-x64-${VERSION}.tar.gz`,
      `/_objects/x64/actions-runner-linux-x64-${VERSION}.tar.gz?sig=fake`,
    ]);
    expect((await stat(join(runnerDir, 'run.sh'))).mode & 0o111).toBeTruthy();
    expect(await installedRunnerVersion(runnerDir)).toBe(VERSION);
    expect((await readdir(runnerDir)).filter((n) => n.startsWith('.staging-'))).toEqual([]);
    expect(timings).toEqual(expect.objectContaining({ github_api: expect.any(Number), github_download: expect.any(Number), total: expect.any(Number) }));
  });

  it('picks the asset of the architecture', async () => {
    const gh = await fakeGitHub();

    await acquire({ arch: 'arm64' });

    expect(downloads(gh)[0]!.path).toContain(`actions-runner-linux-arm64-${VERSION}.tar.gz`);
    expect(JSON.parse(await readFile(join(runnerDir, '.fake-runner.json'), 'utf8')).behavior).toBe('fail');
  });

  it('uses the release-body checksum markers when assets have no digest', async () => {
    await fakeGitHub('body');

    const { runner } = await acquire();

    expect(runner.source).toBe('github');
    expect(logged(`runner ${VERSION} ready from github`)[0]!.checksumSource).toBe('body');
  });

  it('no checksum in the release: terminal, nothing downloaded', async () => {
    const gh = await fakeGitHub('none');

    const error = await rejection(acquire());

    expect(error).toBeInstanceOf(DownloadError);
    expect(error.retriable).toBe(false);
    expect(downloads(gh)).toEqual([]);
  });

  it('checksum mismatch: terminal, both hashes in the message, runner dir left without the files', async () => {
    await fakeGitHub('wrong');
    const wrong = sha256(Buffer.concat([x64, Buffer.from('tampered')]));

    const error = await rejection(acquire());

    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('checksum mismatch');
    expect(error.message).toContain(`expected sha256 ${wrong}`);
    expect(error.message).toContain(`got ${sha256(x64)}`);
    expect(await readdir(runnerDir)).toEqual([]);
  });

  it('API 500: retriable', async () => {
    const gh = await fakeGitHub();
    gh.failNext(1, 500);

    const error = await rejection(acquire());

    expect(error.retriable).toBe(true);
    expect(error.message).toContain('500');
  });

  it('download 503: retriable, and nothing is left in the runner dir', async () => {
    const gh = await fakeGitHub();
    const failingDownload: Fetch = (url, init) => {
      if (String(url).includes('/releases/download/')) gh.failNext(1, 503);
      return fetch(url, init);
    };

    const error = await rejection(acquire({ fetch: failingDownload }));

    expect(error.retriable).toBe(true);
    expect(error.message).toContain('503');
    expect(await readdir(runnerDir).catch(() => [])).toEqual([]);
  });

  it('404 (no such version): terminal, naming the URL', async () => {
    const gh = await fakeGitHub();

    const error = await rejection(acquire({ settings: settings({ RUNS_FLEET_RUNNER_VERSION: '9.9.9' }) }));

    expect(error.retriable).toBe(false);
    expect(error.message).toContain(`${gh.apiUrl}/repos/actions/runner/releases/tags/v9.9.9 answered 404`);
  });

  it('a hostile release is refused as a whole, naming the entry', async () => {
    const { hostileTarballs } = await import('./support/hostile-tarballs.js');
    const outside = join(root, 'outside');
    await mkdir(outside);
    const hostile = hostileTarballs(outside).find((h) => h.name.startsWith('symlink to an absolute dir'))!;
    github = await startFakeGitHub({ version: VERSION, tarballs: { x64: hostile.tarball } });

    const error = await rejection(acquire());

    expect(error.message).toContain('refusing the runner archive: entry "link"');
    expect(await readdir(outside)).toEqual([]);
    expect(await readdir(runnerDir)).toEqual([]);
  });
});

describe('while downloading', () => {
  it('abort mid-download rejects within a second and cleans up', async () => {
    const gh = await fakeGitHub();
    gh.setThrottle(2_000); // ~2 s for the tarball
    const controller = new AbortController();
    const pending = rejection(acquire({ signal: controller.signal }));
    while (!gh.requests.some((r) => r.path.startsWith('/_objects/'))) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));

    const abortedAt = performance.now();
    controller.abort(new Error('SIGTERM'));
    const error = await pending;

    expect(performance.now() - abortedAt).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('aborted');
    expect(await readdir(runnerDir)).toEqual([]);
  });

  it('a download that stalls is aborted as a retriable failure', async () => {
    const gh = await fakeGitHub();
    gh.setThrottle(0); // headers, then nothing

    const error = await rejection(acquire({ stallTimeoutMs: 300 }));

    expect(error.retriable).toBe(true);
    expect(error.message).toContain('stalled');
  });

  it('logs progress (bytes, total, rate, ETA) while bytes flow, and a final line per source', async () => {
    const gh = await fakeGitHub();
    gh.setThrottle(9_000); // ~0.5 s

    await acquire({ progressIntervalMs: 100 });

    const progress = logged('runner download progress');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toMatchObject({
      source: 'github',
      bytes: expect.any(Number),
      totalBytes: x64.length,
      rateMBps: expect.any(Number),
      etaSeconds: expect.any(Number),
    });
    expect(progress.at(-1)!.bytes as number).toBeGreaterThan(0);
    const final = logged(`runner ${VERSION} ready from github`)[0]!;
    expect(final).toMatchObject({ source: 'github', bytes: x64.length, sha256: sha256(x64) });
    expect(final.secondsBySource).toEqual(expect.objectContaining({ github_api: expect.any(Number), github_download: expect.any(Number) }));
  });

  it('not enough free disk: a terminal error naming the variable, before any request', async () => {
    const gh = await fakeGitHub();

    const error = await rejection(acquire({ settings: settings({ RUNS_FLEET_DOWNLOAD_MIN_FREE_MB: '9999999' }) }));

    expect(error.retriable).toBe(false);
    expect(error.message).toMatch(/not enough disk space .* at least 9999999 MB required \(RUNS_FLEET_DOWNLOAD_MIN_FREE_MB\)/);
    expect(gh.requests).toEqual([]);
  });
});
