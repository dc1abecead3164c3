// Build the agent as one self-contained Linux executable (a Node.js single executable
// application, SEA): dist/runs-fleet-agent-linux-{x64|arm64}. No node_modules and no Node
// install are needed where it runs; it is this machine's `node` with the bundle injected.
//
//   make dist                  # bundle (make build), this binary, then the release tarball
//   node scripts/sea.mjs       # this step alone; needs dist/runs-fleet-agent.cjs (make build)
//   SEA_STRIP=0 node scripts/sea.mjs   # keep node's symbols (~13 MB bigger, better native stacks)
//
// Steps (Node 20: https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html):
// 1. A SEA flavour of the bundle in .build/sea/: the same code with dynamic `import()` of node
//    builtins lowered to `require()` — Node 20 cannot run `import()` from a SEA main script
//    compiled with a code cache (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING; the AWS SDK's IMDS
//    region/credential code does `await import("node:http")`) — and ws's optional native
//    add-ons switched off (a SEA's require() loads builtins only, and warns on every other name).
// 2. `node --experimental-sea-config` → the preparation blob (with a V8 code cache: ~60 ms
//    faster start-up; the experimental-feature warning disabled), made under the V8 flags the
//    binary runs with: the unit's NODE_OPTIONS (deploy/systemd/runs-fleet-agent.service). V8
//    rejects a code cache made under other flags (start-up x1.45). The flavour is ASCII-only
//    and whitespace-minified like the bundle (scripts/build.mjs says why).
// 3. Copy of process.execPath (the blob only runs in the node that made it), stripped of its
//    debug symbols, then `postject ... NODE_SEA_BLOB --sentinel-fuse NODE_SEA_FUSE_...`.
// 4. Smoke test (`--version`), then an atomic rename into dist/: a reader never sees half a binary.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const UNIT = join(root, 'deploy/systemd/runs-fleet-agent.service');
const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const ARCHES = { x64: 'x64', arm64: 'arm64' };

const fail = (message) => {
  process.stderr.write(`sea: ${message}\n`);
  process.exit(1);
};

if (process.platform !== 'linux') fail(`the agent runs on Linux; this is ${process.platform}`);
const arch = ARCHES[process.arch] ?? fail(`unsupported architecture ${process.arch} (x64 or arm64)`);
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const bundle = join(root, 'dist/runs-fleet-agent.cjs');
if (!existsSync(bundle)) fail(`${bundle} is missing: run make build first`);

// Per process: two builds at once (make dist and a test) never share a blob.
const work = join(root, '.build/sea', String(process.pid));
const seaMain = join(work, 'runs-fleet-agent.sea.cjs');
const blob = join(work, 'sea-prep.blob');
const output = join(root, `dist/runs-fleet-agent-linux-${arch}`);
const partial = join(root, `dist/.runs-fleet-agent-linux-${arch}.${process.pid}.partial`);
const started = Date.now();
mkdirSync(work, { recursive: true });
process.on('exit', () => {
  rmSync(work, { recursive: true, force: true });
  rmSync(partial, { force: true });
});

// 1. The SEA flavour of the bundle.
await build({
  entryPoints: [bundle],
  outfile: seaMain,
  bundle: false,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  supported: { 'dynamic-import': false },
  minifyWhitespace: true,
  charset: 'ascii',
  define: {
    'process.env.WS_NO_BUFFER_UTIL': '"1"',
    'process.env.WS_NO_UTF_8_VALIDATE': '"1"',
  },
  legalComments: 'none',
  logLevel: 'warning',
});
const seaSource = readFileSync(seaMain, 'utf8');
const nonAscii = seaSource.search(/[^\x00-\x7f]/);
if (nonAscii !== -1) fail(`${seaMain} is not ASCII at offset ${nonAscii}: ...${seaSource.slice(Math.max(0, nonAscii - 60), nonAscii + 20)}...`);
const leftover = seaSource.match(/\bimport\(\s*["'`]/);
if (leftover) fail(`a dynamic import() survived the lowering in ${seaMain}: ${leftover[0]}`);

// 2. The preparation blob.
const seaConfig = join(work, 'sea-config.json');
writeFileSync(
  seaConfig,
  JSON.stringify({ main: seaMain, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: true }, null, 2),
);
const v8Flags = unitNodeOptions();
run(process.execPath, [...v8Flags, '--experimental-sea-config', seaConfig]);

// 3. node + blob.
rmSync(partial, { force: true });
mkdirSync(dirname(output), { recursive: true });
copyFileSync(process.execPath, partial);
chmodSync(partial, 0o755);
if (process.env.SEA_STRIP !== '0') {
  // Only before injection: stripping afterwards would drop the blob's note section.
  if (spawnSync('strip', ['--version'], { stdio: 'ignore' }).status === 0) run('strip', [partial]);
  else process.stderr.write('sea: strip not found, keeping node symbols (binary ~13 MB bigger)\n');
}
const postject = join(root, 'node_modules/.bin/postject');
if (!existsSync(postject)) fail('postject is missing: run make install (it is a devDependency)');
// postject (LIEF) prints harmless "Can't find string offset for section name" warnings: shown on failure only.
run(postject, [partial, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL_FUSE]);

// 4. Smoke test, then publish atomically.
// As the unit runs it: its NODE_OPTIONS, nobody else's.
const env = { ...process.env };
delete env.NODE_OPTIONS;
if (v8Flags.length > 0) env.NODE_OPTIONS = v8Flags.join(' ');
const smoke = spawnSync(partial, ['--version'], { encoding: 'utf8', env, timeout: 30_000 });
if (smoke.status !== 0 || smoke.stdout.trim() !== version) {
  fail(`the built binary failed its smoke test (--version → exit ${smoke.status}, "${smoke.stdout.trim()}", expected "${version}")\n${smoke.stderr}`);
}
renameSync(partial, output);
const mb = (statSync(output).size / 1024 / 1024).toFixed(1);
console.log(`built dist/runs-fleet-agent-linux-${arch} (v${version}, ${mb} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);

/** The V8 flags of the unit's `Environment=... NODE_OPTIONS=...` (none when it sets none). */
export function unitNodeOptions() {
  const unit = readFileSync(UNIT, 'utf8');
  const line = unit.split('\n').find((l) => /^Environment=.*\bNODE_OPTIONS=/.test(l));
  const value = line ? /\bNODE_OPTIONS=(?:"([^"]*)"|(\S+))/.exec(line) : null;
  const flags = value ? (value[1] ?? value[2]).split(/\s+/).filter(Boolean) : [];
  const bad = flags.filter((f) => !/^--[a-z0-9-]+(=[\w.-]+)?$/.test(f));
  if (bad.length > 0) fail(`the unit's NODE_OPTIONS holds what sea.mjs cannot pass on: ${bad.join(' ')}`);
  return flags;
}

function run(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: root });
  if (result.error) fail(`${command}: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited ${result.status}\n${result.stdout}${result.stderr}`);
}
