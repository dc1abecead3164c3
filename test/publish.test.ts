/**
 * The S3 deploy path against moto: scripts/release.mjs packs a release, scripts/publish.mjs
 * (what `make publish` runs) uploads it, and deploy/user-data.sh downloads, verifies, installs
 * and starts it — into a temporary root, with systemctl stubbed by SYSTEMCTL. A tarball that
 * does not match its checksum is refused and nothing is installed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startMoto, type Moto } from './support/moto.js';

const BUCKET = 'fleet-artifacts';
const VERSION = '0.1.0-test';
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64'; // what user-data.sh derives from uname -m
const NAME = `runs-fleet-agent-${VERSION}-linux-${ARCH}`;
const STUB_BINARY = `#!/bin/sh\necho ${VERSION}\n`;
const UNIT = 'runs-fleet-agent.service';

let moto: Moto;
let s3: S3Client;
let work: string;
let distDir: string;
let s3GetHelper: string;
let recorder: string;

const run = (command: string, args: string[], env: Record<string, string>, timeout = 60_000) =>
  spawnSync(command, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, ...env }, encoding: 'utf8', timeout });

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function body(key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function keys(prefix: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

/** Runs deploy/user-data.sh into a fresh DESTDIR; returns the result, the root and the systemctl calls. */
function userData(env: Record<string, string>) {
  const dest = mkdtempSync(join(work, 'root-'));
  const log = join(dest, '..', `${dest.split('/').pop()}.systemctl.log`);
  const result = run('bash', [resolve('deploy/user-data.sh')], {
    ...moto.env(),
    // Nothing may reach a real metadata service.
    AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9',
    TMPDIR: work,
    RETRY_SECONDS: '0',
    BUCKET,
    DESTDIR: dest,
    SYSTEMCTL: recorder,
    RECORD_LOG: log,
    ...env,
  });
  const calls = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
  return { result, dest, calls };
}

beforeAll(async () => {
  moto = await startMoto();
  const env = moto.env();
  s3 = new S3Client({
    endpoint: env.AWS_ENDPOINT_URL,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));

  work = mkdtempSync(join(tmpdir(), 'rfa-publish-'));
  distDir = join(work, 'dist');
  const stub = join(work, 'stub-binary');
  writeFileSync(stub, STUB_BINARY, { mode: 0o755 });
  // A release packed by the real script, around a stand-in binary (the SEA build is test/dist.test.ts's).
  const packed = run(process.execPath, ['scripts/release.mjs', '--binary', stub, '--out', distDir, '--version', VERSION, '--arch', ARCH], {
    SOURCE_DATE_EPOCH: '1700000000',
  });
  if (packed.status !== 0) throw new Error(`release.mjs failed: ${packed.stderr}`);

  // S3_GET for user-data.sh, as an operator would write one: `helper s3://BUCKET/KEY FILE`
  // (here with this repository's AWS SDK; moto refuses unsigned requests like S3 does).
  s3GetHelper = join(work, 's3-get.mjs');
  writeFileSync(
    s3GetHelper,
    [
      "import { createRequire } from 'node:module';",
      "import { writeFileSync } from 'node:fs';",
      `const require = createRequire(${JSON.stringify(resolve('package.json'))});`,
      "const { S3Client, GetObjectCommand } = require('@aws-sdk/client-s3');",
      'const [url, file] = process.argv.slice(2);',
      'const [, bucket, key] = /^s3:\\/\\/([^/]+)\\/(.+)$/.exec(url);',
      'const client = new S3Client({ forcePathStyle: true });',
      'try {',
      '  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));',
      '  writeFileSync(file, await out.Body.transformToByteArray());',
      '} catch (error) { console.error(`GET ${url}: ${error.name}`); process.exit(1); }',
    ].join('\n'),
  );
  recorder = join(work, 'record-systemctl');
  writeFileSync(recorder, '#!/bin/sh\necho "$*" >> "$RECORD_LOG"\n', { mode: 0o755 });
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('release tarball (scripts/release.mjs)', () => {
  it('holds the binary, unit, env example, install.sh and docs under one directory, with a sha256sum file', () => {
    const tarball = join(distDir, `${NAME}.tar.gz`);
    const listing = run('tar', ['-tzvf', tarball], {}).stdout.trim().split('\n');
    const entries = Object.fromEntries(listing.map((l) => [l.split(/\s+/).pop()!, l.split(/\s+/)[0]!]));
    expect(entries[`${NAME}/runs-fleet-agent`]).toBe('-rwxr-xr-x');
    expect(entries[`${NAME}/install.sh`]).toBe('-rwxr-xr-x');
    expect(entries[`${NAME}/${UNIT}`]).toBe('-rw-r--r--');
    expect(entries[`${NAME}/agent.env.example`]).toBe('-rw-r--r--');
    expect(entries[`${NAME}/README.md`]).toBe('-rw-r--r--');
    expect(entries[`${NAME}/docs/iam-policy.json`]).toBe('-rw-r--r--');
    for (const path of Object.keys(entries)) expect(path.startsWith(`${NAME}/`)).toBe(true);
    expect(listing.every((l) => l.includes(' 0/0 '))).toBe(true);

    const sumLine = readFileSync(`${tarball}.sha256`, 'utf8');
    expect(sumLine).toBe(`${sha256(readFileSync(tarball))}  ${NAME}.tar.gz\n`);
    const check = spawnSync('sha256sum', ['-c', `${NAME}.tar.gz.sha256`], { cwd: distDir, encoding: 'utf8' });
    expect(check.stdout).toBe(`${NAME}.tar.gz: OK\n`);
  });
});

describe('publish (scripts/publish.mjs, what make publish runs)', () => {
  it('uploads the tarball and its checksum under PREFIX/VERSION/ARCH and points PREFIX/latest at the version', async () => {
    const tarball = join(distDir, `${NAME}.tar.gz`);
    const result = run(process.execPath, ['scripts/publish.mjs', '--bucket', BUCKET, '--prefix', 'agent', '--file', tarball], moto.env());
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);

    expect(await keys('agent/')).toEqual([`agent/${VERSION}/${ARCH}/${NAME}.tar.gz`, `agent/${VERSION}/${ARCH}/${NAME}.tar.gz.sha256`, 'agent/latest']);
    expect((await body(`agent/${VERSION}/${ARCH}/${NAME}.tar.gz`)).equals(readFileSync(tarball))).toBe(true);
    expect((await body(`agent/${VERSION}/${ARCH}/${NAME}.tar.gz.sha256`)).toString()).toBe(readFileSync(`${tarball}.sha256`, 'utf8'));
    expect((await body('agent/latest')).toString()).toBe(`${VERSION}\n`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `agent/${VERSION}/${ARCH}/${NAME}.tar.gz` }));
    expect(head.Metadata?.sha256).toBe(sha256(readFileSync(tarball)));
  });

  it('honours PREFIX and --no-latest', async () => {
    const tarball = join(distDir, `${NAME}.tar.gz`);
    const result = run(process.execPath, ['scripts/publish.mjs', '--file', tarball, '--no-latest'], { ...moto.env(), BUCKET, PREFIX: 'staging/agent/' });
    expect(result.status).toBe(0);
    expect(await keys('staging/')).toEqual([
      `staging/agent/${VERSION}/${ARCH}/${NAME}.tar.gz`,
      `staging/agent/${VERSION}/${ARCH}/${NAME}.tar.gz.sha256`,
    ]);
  });

  it('refuses to publish a tarball that does not match its .sha256', async () => {
    const bad = join(work, 'bad-dist');
    mkdirSync(bad);
    const name = `runs-fleet-agent-9.9.9-linux-${ARCH}.tar.gz`;
    writeFileSync(join(bad, name), 'not the tarball');
    writeFileSync(join(bad, `${name}.sha256`), `${'0'.repeat(64)}  ${name}\n`);
    const result = run(process.execPath, ['scripts/publish.mjs', '--bucket', BUCKET, '--file', join(bad, name)], moto.env());
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/does not match/);
    expect(await keys('agent/9.9.9/')).toEqual([]);
  });

  it('needs a bucket', () => {
    const result = run(process.execPath, ['scripts/publish.mjs', '--file', join(distDir, `${NAME}.tar.gz`)], moto.env());
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/usage: publish\.mjs --bucket/);
  });
});

describe('deploy/user-data.sh', () => {
  const expectInstalled = (dest: string, calls: string[]) => {
    const bin = join(dest, 'usr/local/bin/runs-fleet-agent');
    expect(readFileSync(bin, 'utf8')).toBe(STUB_BINARY);
    expect(lstatSync(bin).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(dest, 'etc/systemd/system', UNIT), 'utf8')).toBe(readFileSync('deploy/systemd/runs-fleet-agent.service', 'utf8'));
    expect(lstatSync(join(dest, 'etc/runs-fleet-agent/agent.env')).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(dest, 'opt/actions-runner')).isDirectory()).toBe(true);
    // install.sh enables, then user-data starts without waiting for the job.
    expect(calls).toEqual([`enable ${UNIT}`, `start --no-block ${UNIT}`]);
  };

  it('installs the latest version with an S3_GET helper and starts the unit', () => {
    const { result, dest, calls } = userData({ S3_GET: `${process.execPath} ${s3GetHelper}` });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`latest version: ${VERSION}`);
    expect(result.stderr).toMatch(/verified .*sha256/);
    expectInstalled(dest, calls);
    // The work directory is cleaned up.
    expect(readdirSync(work).filter((e) => e.startsWith('runs-fleet-agent.'))).toEqual([]);
  });

  it('installs a pinned VERSION with the built-in curl SigV4 download (no AWS CLI needed)', () => {
    const { result, dest, calls } = userData({ S3_GET: 's3_get_curl', VERSION });
    expect(result.stderr).not.toMatch(/error/);
    expect(result.status).toBe(0);
    expectInstalled(dest, calls);
  });

  const hasAwsCli = spawnSync('aws', ['--version'], { encoding: 'utf8', timeout: 20_000 }).status === 0;
  (hasAwsCli ? it : it.skip)('installs with the AWS CLI (aws s3 cp, the default when present)', () => {
    const { result, dest, calls } = userData({ AWS_DEFAULT_REGION: 'us-east-1' });
    expect(result.status).toBe(0);
    expectInstalled(dest, calls);
  });

  it('refuses a corrupted tarball: clear error, nothing installed, nothing started, ON_FAILURE run', async () => {
    const bad = '0.0.1-corrupt';
    const name = `runs-fleet-agent-${bad}-linux-${ARCH}.tar.gz`;
    const good = readFileSync(join(distDir, `${NAME}.tar.gz`));
    const corrupted = Buffer.from(good);
    corrupted[Math.floor(corrupted.length / 2)] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `agent/${bad}/${ARCH}/${name}`, Body: corrupted }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `agent/${bad}/${ARCH}/${name}.sha256`, Body: `${sha256(good)}  ${name}\n` }));

    const failed = join(work, 'on-failure.log');
    const { result, dest, calls } = userData({
      S3_GET: `${process.execPath} ${s3GetHelper}`,
      VERSION: bad,
      ON_FAILURE: `echo called >> ${failed}`,
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(new RegExp(`checksum mismatch for s3://${BUCKET}/agent/${bad}/${ARCH}/${name.replace(/\./g, '\\.')}: refusing to install`));
    expect(readdirSync(dest)).toEqual([]);
    expect(calls).toEqual([]);
    expect(readFileSync(failed, 'utf8')).toBe('called\n');
  });

  it('with the checksum pinned in the launch template (SHA256), a tarball replaced together with its .sha256 is refused', async () => {
    const swapped = '0.0.3-swapped';
    const name = `runs-fleet-agent-${swapped}-linux-${ARCH}.tar.gz`;
    const good = readFileSync(join(distDir, `${NAME}.tar.gz`));
    const evil = Buffer.concat([good, Buffer.from('trailing bytes the attacker added')]);
    // Whoever can write the prefix writes a matching checksum file too.
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `agent/${swapped}/${ARCH}/${name}`, Body: evil }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `agent/${swapped}/${ARCH}/${name}.sha256`, Body: `${sha256(evil)}  ${name}\n` }));
    const { result, dest, calls } = userData({ S3_GET: `${process.execPath} ${s3GetHelper}`, VERSION: swapped, SHA256: sha256(good) });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`but the launch template pins ${sha256(good)}: refusing to install`);
    expect(readdirSync(dest)).toEqual([]);
    expect(calls).toEqual([]);
    // Into a DESTDIR (tests, images) a failure ends nothing by default: only a real install powers off.
    expect(result.stderr).not.toContain('running ON_FAILURE');
    // And the right pin installs.
    const pinned = userData({ S3_GET: `${process.execPath} ${s3GetHelper}`, VERSION, SHA256: sha256(good) });
    expect(pinned.result.status).toBe(0);
    expect(pinned.result.stderr).toContain('pinned by the launch template');
  });

  it('refuses a checksum file that names another file', async () => {
    const other = '0.0.2-renamed';
    const name = `runs-fleet-agent-${other}-linux-${ARCH}.tar.gz`;
    const good = readFileSync(join(distDir, `${NAME}.tar.gz`));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `agent/${other}/${ARCH}/${name}`, Body: good }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `agent/${other}/${ARCH}/${name}.sha256`, Body: `${sha256(good)}  ../../etc/elsewhere\n` }));
    const { result, dest, calls } = userData({ S3_GET: `${process.execPath} ${s3GetHelper}`, VERSION: other });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/is not one sha256sum line for .*: refusing to install/);
    expect(readdirSync(dest)).toEqual([]);
    expect(calls).toEqual([]);
  });

  it('fails clearly without BUCKET, and when the version does not exist', () => {
    const noBucket = userData({ BUCKET: '', S3_GET: `${process.execPath} ${s3GetHelper}` });
    expect(noBucket.result.status).not.toBe(0);
    expect(noBucket.result.stderr).toMatch(/BUCKET is not set/);

    const missing = userData({ S3_GET: `${process.execPath} ${s3GetHelper}`, VERSION: '7.7.7' });
    expect(missing.result.status).not.toBe(0);
    expect(missing.result.stderr).toMatch(/cannot download s3:\/\/fleet-artifacts\/agent\/7\.7\.7\//);
    expect(readdirSync(missing.dest)).toEqual([]);
    expect(missing.calls).toEqual([]);
  }, 30_000);
});
