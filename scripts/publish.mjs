// Upload a release to S3 for deploy/user-data.sh (fleets that do not bake the agent into the AMI):
//
//   s3://BUCKET/PREFIX/{version}/{arch}/runs-fleet-agent-{version}-linux-{arch}.tar.gz
//   s3://BUCKET/PREFIX/{version}/{arch}/runs-fleet-agent-{version}-linux-{arch}.tar.gz.sha256
//   s3://BUCKET/PREFIX/latest          text: the version (written last, after both objects)
//
//   make publish BUCKET=my-bucket [PREFIX=agent]
//   node scripts/publish.mjs --bucket B [--prefix agent] [--file dist/….tar.gz] [--no-latest]
//
// Version and arch come from the tarball's name. Credentials and region are the AWS SDK's usual
// ones (AWS_PROFILE, AWS_REGION, instance role, ...); AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3
// point it elsewhere (moto in tests, MinIO), with path-style addressing. --no-latest uploads
// without moving the pointer: publish every architecture of a version, then move `latest`
// (the pointer is per prefix, not per arch).
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fail = (message) => {
  process.stderr.write(`publish: ${message}\n`);
  process.exit(1);
};

const { values: opts } = parseArgs({
  options: {
    bucket: { type: 'string', default: process.env.BUCKET },
    prefix: { type: 'string', default: process.env.PREFIX || 'agent' },
    file: { type: 'string' },
    'no-latest': { type: 'boolean', default: false },
  },
});
if (!opts.bucket) fail('usage: publish.mjs --bucket BUCKET [--prefix agent] [--file dist/runs-fleet-agent-V-linux-ARCH.tar.gz]');
const prefix = opts.prefix.replace(/^\/+|\/+$/g, '');
if (!prefix) fail('--prefix must not be empty');

const file = resolve(opts.file ?? defaultTarball());
const name = basename(file);
const match = /^runs-fleet-agent-(.+)-linux-(x64|arm64)\.tar\.gz$/.exec(name);
if (!match) fail(`${name} is not a release tarball name (runs-fleet-agent-{version}-linux-{x64|arm64}.tar.gz)`);
const [, version, arch] = match;
if (!existsSync(file)) fail(`${file} is missing: run make dist`);
if (!existsSync(`${file}.sha256`)) fail(`${file}.sha256 is missing: run make dist`);

// Never publish a tarball that does not match its checksum file.
const body = readFileSync(file);
const checksumText = readFileSync(`${file}.sha256`, 'utf8');
const [expected, listed] = checksumText.trim().split(/\s+\*?/);
const actual = createHash('sha256').update(body).digest('hex');
if (listed !== name || expected !== actual) fail(`${name}.sha256 does not match ${name} (sha256 ${actual}): rebuild with make dist`);

const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
const client = new S3Client({
  region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
  forcePathStyle: Boolean(endpoint),
  followRegionRedirects: true,
});
const dir = `${prefix}/${version}/${arch}`;
const put = async (key, data, contentType, extra = {}) => {
  await client.send(new PutObjectCommand({ Bucket: opts.bucket, Key: key, Body: data, ContentType: contentType, ...extra }));
  console.log(`uploaded s3://${opts.bucket}/${key}`);
};

try {
  await put(`${dir}/${name}`, body, 'application/gzip', {
    Metadata: { sha256: actual },
    ChecksumSHA256: Buffer.from(actual, 'hex').toString('base64'),
  });
  await put(`${dir}/${name}.sha256`, checksumText, 'text/plain');
  if (!opts['no-latest']) await put(`${prefix}/latest`, `${version}\n`, 'text/plain', { CacheControl: 'no-cache' });
} catch (error) {
  fail(`upload to s3://${opts.bucket}/${dir}/ failed: ${error?.name ?? 'Error'}: ${error?.message ?? error}`);
} finally {
  client.destroy();
}
console.log(`published ${version} (${arch}) to s3://${opts.bucket}/${dir}/${opts['no-latest'] ? '' : `, latest → ${version}`}`);

function defaultTarball() {
  const { version: pkgVersion } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const archName = { x64: 'x64', arm64: 'arm64' }[process.arch];
  const wanted = `runs-fleet-agent-${pkgVersion}-linux-${archName}.tar.gz`;
  const found = existsSync(join(root, 'dist')) ? readdirSync(join(root, 'dist')).includes(wanted) : false;
  if (!found) fail(`dist/${wanted} is missing: run make dist (or pass --file)`);
  return join(root, 'dist', wanted);
}
