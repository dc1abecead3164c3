// Pack the release tarball an AMI build (or deploy/user-data.sh) installs from:
//
//   dist/runs-fleet-agent-{version}-linux-{arch}.tar.gz          (+ .sha256, sha256sum format)
//   └── runs-fleet-agent-{version}-linux-{arch}/
//       ├── runs-fleet-agent            the single executable (0755)
//       ├── install.sh                  installs everything below; see its header (0755)
//       ├── runs-fleet-agent.service    the systemd unit
//       ├── agent.env.example           the EnvironmentFile template
//       ├── README.md
//       └── docs/operations.md, docs/iam-policy.json   (when present)
//
//   make dist                    # bundle, binary (scripts/sea.mjs), then this
//   node scripts/release.mjs [--binary PATH] [--out DIR] [--version V] [--arch x64|arm64]
//
// The archive is reproducible: sorted names, owner 0:0, mtimes from SOURCE_DATE_EPOCH
// (else the last commit), gzip without a timestamp. Options exist for tests, which pack a
// stand-in binary into a temporary directory.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fail = (message) => {
  process.stderr.write(`release: ${message}\n`);
  process.exit(1);
};

const { values: opts } = parseArgs({
  options: {
    binary: { type: 'string' },
    out: { type: 'string', default: join(root, 'dist') },
    version: { type: 'string' },
    arch: { type: 'string' },
  },
});
const version = opts.version ?? JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const arch = opts.arch ?? ({ x64: 'x64', arm64: 'arm64' }[process.arch] || fail(`unsupported architecture ${process.arch}`));
if (!['x64', 'arm64'].includes(arch)) fail(`--arch must be x64 or arm64, not ${arch}`);
if (!/^[0-9A-Za-z][0-9A-Za-z.+-]*$/.test(version)) fail(`bad version "${version}"`);
const binary = resolve(opts.binary ?? join(root, `dist/runs-fleet-agent-linux-${arch}`));
if (!existsSync(binary)) fail(`${binary} is missing: run make dist (or node scripts/sea.mjs)`);

const name = `runs-fleet-agent-${version}-linux-${arch}`;
const outDir = resolve(opts.out);
const tarball = join(outDir, `${name}.tar.gz`);
const stage = join(root, '.build/release', `${process.pid}`);
const dir = join(stage, name);
const started = Date.now();

const files = [
  // [source, name in the release, mode]
  [binary, 'runs-fleet-agent', 0o755],
  [join(root, 'deploy/install.sh'), 'install.sh', 0o755],
  [join(root, 'deploy/systemd/runs-fleet-agent.service'), 'runs-fleet-agent.service', 0o644],
  [join(root, 'deploy/agent.env.example'), 'agent.env.example', 0o644],
  [join(root, 'README.md'), 'README.md', 0o644],
  [join(root, 'docs/operations.md'), 'docs/operations.md', 0o644, 'optional'],
  [join(root, 'docs/iam-policy.json'), 'docs/iam-policy.json', 0o644, 'optional'],
];

rmSync(stage, { recursive: true, force: true });
try {
  for (const [source, target, mode, optional] of files) {
    if (!existsSync(source)) {
      if (optional) continue;
      fail(`${source} is missing`);
    }
    mkdirSync(dirname(join(dir, target)), { recursive: true });
    copyFileSync(source, join(dir, target));
    chmodSync(join(dir, target), mode);
  }

  const epoch = sourceDateEpoch();
  mkdirSync(outDir, { recursive: true });
  const partial = `${tarball}.partial`;
  const tar = spawn(
    'tar',
    ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`, '--format=gnu', '-C', stage, '-cf', '-', name],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((resolveExit) => tar.once('close', resolveExit));
  await pipeline(tar.stdout, createGzip({ level: 9 }), createWriteStream(partial));
  const code = await exited;
  if (code !== 0) fail(`tar exited ${code}`);
  renameSync(partial, tarball);

  const hash = createHash('sha256');
  await pipeline(createReadStream(tarball), hash);
  writeFileSync(`${tarball}.sha256`, `${hash.digest('hex')}  ${basename(tarball)}\n`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
const mb = (statSync(tarball).size / 1024 / 1024).toFixed(1);
console.log(`packed ${tarball} (${mb} MB) and ${basename(tarball)}.sha256 in ${((Date.now() - started) / 1000).toFixed(1)} s`);

function sourceDateEpoch() {
  if (/^\d+$/.test(process.env.SOURCE_DATE_EPOCH ?? '')) return process.env.SOURCE_DATE_EPOCH;
  const git = spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8' });
  const ct = git.status === 0 ? git.stdout.trim() : '';
  return /^\d+$/.test(ct) ? ct : String(Math.floor(Date.now() / 1000));
}
