/**
 * The operator's `runs-fleet-agent cache-runner` (the built bundle) against moto and the fake
 * GitHub: both architectures verified and cached with the manifest instances trust; an
 * instance then installs a pinned version from the cache with zero GitHub requests, while a
 * tarball swapped into the cache afterwards (what a job holding an instance role could do) is
 * refused against the manifest.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { acquireRunner } from '../services/install/runner-download.js';
import { RunnerCache, runnerCacheKey, runnerManifestKey } from '../services/install/s3-cache.js';
import { parseSettings } from '../services/settings.js';
import { AGENT_BUNDLE } from './support/agent-world.js';
import { startFakeGitHub, type FakeGitHub } from './support/fake-github.js';
import { buildFakeRunnerTarball, sha256 } from './support/fake-runner.js';
import { MOTO_REGION, startMoto, type Moto } from './support/moto.js';

const VERSION = '2.330.0';
const BUCKET = 'runs-fleet-cache-runner-test';
let moto: Moto;
let github: FakeGitHub;
let s3: S3Client;
let x64: Buffer;
let arm64: Buffer;

beforeAll(async () => {
  moto = await startMoto();
  x64 = await buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed' });
  arm64 = await buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed', jobName: 'arm' });
  github = await startFakeGitHub({ version: VERSION, tarballs: { x64, arm64 } });
  s3 = new S3Client({ endpoint: moto.endpoint, region: MOTO_REGION, forcePathStyle: true, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});
afterAll(async () => {
  s3.destroy();
  await github.close();
  await moto.stop();
});

describe('runs-fleet-agent cache-runner', () => {
  it('caches both architectures verified against GitHub and writes the manifest', async () => {
    // Not spawnSync: the fake GitHub answers from this process.
    const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [AGENT_BUNDLE, 'cache-runner', '--version', VERSION], {
        env: { ...moto.env(), PATH: process.env.PATH, RUNS_FLEET_CONFIG_BUCKET: BUCKET, RUNS_FLEET_GITHUB_API_URL: github.apiUrl },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`wrote the manifest s3://${BUCKET}/${runnerManifestKey(VERSION)}`);
    const manifest = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    expect(manifest).toMatchObject({ version: VERSION, sha256: { x64: sha256(x64), arm64: sha256(arm64) } });
  });

  it('an instance then installs the pinned version from the cache with zero GitHub requests, and refuses a swapped tarball', async () => {
    const root = await mkdtemp(join(tmpdir(), 'rfa-cache-runner-'));
    try {
      const settings = parseSettings({ RUNS_FLEET_RUNNER_VERSION: VERSION, RUNS_FLEET_RUNNER_DIR: join(root, 'one'), RUNS_FLEET_GITHUB_API_URL: github.apiUrl, RUNS_FLEET_DOWNLOAD_MIN_FREE_MB: '1' }).settings;
      const before = github.requests.length;
      const one = await acquireRunner({ settings, logger: pino({ level: 'silent' }), cache: new RunnerCache(s3, BUCKET), arch: 'x64' });
      expect(one.runner.source).toBe('s3');
      expect(github.requests.length).toBe(before);

      // The job of some instance, holding its role, swaps the tarball (and writes matching metadata).
      const substitute = Buffer.concat([arm64]);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: runnerCacheKey(VERSION, 'x64'), Body: substitute, Metadata: { sha256: sha256(substitute) } }));
      const two = await acquireRunner({ settings: { ...settings, runnerDir: join(root, 'two') }, logger: pino({ level: 'silent' }), cache: new RunnerCache(s3, BUCKET), arch: 'x64' });
      expect(two.runner.source).toBe('github'); // refused against the manifest, served by GitHub
      const manifest = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: runnerManifestKey(VERSION) }));
      expect(JSON.parse(await manifest.Body!.transformToString()).sha256.x64).toBe(sha256(x64));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
