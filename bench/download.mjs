#!/usr/bin/env node
/**
 * Benchmark (issue 3): the agent's one-pass download + verify + extract against the
 * two-pass baseline a peer fleet uses (`curl -o file`, `sha256sum -c`, `tar -xzf file`),
 * on the same ~200 MB runner-like tarball served from a loopback HTTP server.
 *
 *   node bench/download.mjs [--rounds N] [--compare-extractors] [--rebuild]
 *
 * - The tarball is generated once, deterministically (a seeded PRNG: a quarter of the
 *   files incompressible like native binaries, the rest text-like), and cached in
 *   $TMPDIR/runs-fleet-bench/.
 * - The agent side is the real service (`acquireRunner` from services/install/runner-download.ts,
 *   bundled with esbuild into $TMPDIR/runs-fleet-bench/ on first use or with --rebuild),
 *   run in a child process per round: Releases API call, download, SHA-256, gunzip,
 *   header guard, untar, marker. Its time is measured inside the child around that
 *   call; its peak RSS is the child's `process.resourceUsage().maxRSS`.
 * - Rounds alternate agent / baseline; medians over at least 3 rounds.
 *
 * Prints both medians, `download_ratio=<agent/baseline>` (goal ≤ 0.9) and
 * `agent_peak_rss_mb=` (goal ≤ 150).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRunnerLikeTree } from './runner-tree.mjs';

const VERSION = '2.330.0';
const ASSET = `actions-runner-linux-x64-${VERSION}.tar.gz`;
const GENERATOR = 'v2-400MB'; // bump when the generator changes
const WORK = join(tmpdir(), 'runs-fleet-bench');
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = join(WORK, 'runner-download.mjs');

const args = process.argv.slice(2);
if (args[0] === '--child') {
  await child(JSON.parse(args[1]));
} else {
  await main();
}

async function main() {
  const rounds = Math.max(3, Number(argValue('--rounds') ?? 3));
  mkdirSync(WORK, { recursive: true });
  for (const tool of ['curl', 'sha256sum', 'tar']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      throw new Error(`the baseline needs ${tool} on PATH`);
    }
  }
  const tarball = ensureTarball();
  await ensureBundle(args.includes('--rebuild'));

  // The parent stays small (the tarball is streamed, never held in memory): a child's
  // maxRSS on Linux starts from its parent's RSS at fork time.
  const size = statSync(tarball).size;
  const sha256 = await hashFile(tarball);
  const extracted = Number(execFileSync('sh', ['-c', `gzip -dc '${tarball}' | wc -c`]).toString().trim());
  const server = await serve(tarball, size, sha256);
  console.log(
    `tarball: ${mb(size)} MB compressed, ${mb(extracted)} MB extracted, sha256 ${sha256.slice(0, 16)}…, served from ${server.url}`,
  );

  const variants = args.includes('--compare-extractors') ? ['auto', 'node-tar'] : ['auto'];
  const results = Object.fromEntries(variants.map((v) => [v, { seconds: [], rss: [], extractor: '' }]));
  const baseline = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const variant of variants) {
        const r = await runAgent(server, variant);
        results[variant].seconds.push(r.seconds);
        results[variant].rss.push(r.maxRssMb);
        results[variant].extractor = r.extractor;
        console.log(`round ${round}: agent (${r.extractor}) ${r.seconds.toFixed(2)} s, peak RSS ${r.maxRssMb} MB (VmHWM ${r.vmHwmMb ?? '?'} MB)`);
      }
      const b = await runBaseline(server, sha256);
      baseline.push(b);
      console.log(`round ${round}: baseline ${b.toFixed(2)} s`);
    }
  } finally {
    await server.close();
    rmSync(join(WORK, 'agent-dir'), { recursive: true, force: true });
    rmSync(join(WORK, 'baseline-dir'), { recursive: true, force: true });
  }

  const agent = results.auto;
  const agentMedian = median(agent.seconds);
  const baselineMedian = median(baseline);
  console.log('');
  if (results['node-tar']) {
    console.log(`agent_node_tar_median_s=${median(results['node-tar'].seconds).toFixed(2)} (fallback extractor, for comparison)`);
  }
  console.log(`agent_extractor=${agent.extractor}`);
  console.log(`agent_median_s=${agentMedian.toFixed(2)} (download+verify+extract, one pass)`);
  console.log(`baseline_median_s=${baselineMedian.toFixed(2)} (curl -o, sha256sum -c, tar -xzf)`);
  console.log(`download_ratio=${(agentMedian / baselineMedian).toFixed(2)}`);
  console.log(`agent_peak_rss_mb=${Math.max(...agent.rss)}`);
}

/** The agent side, in its own process: the bundled service, timed around acquireRunner. */
async function child({ bundle, apiUrl, dir, extractor }) {
  const { acquireRunner } = await import(bundle);
  const lines = [];
  const logger = {
    child: () => logger,
    debug: () => {},
    info: (fields, msg) => lines.push({ ...fields, msg }),
    warn: (fields, msg) => lines.push({ level: 'warn', ...fields, msg }),
    error: (fields, msg) => lines.push({ level: 'error', ...fields, msg }),
  };
  const started = performance.now();
  await acquireRunner({
    settings: { runnerDir: dir, runnerVersion: VERSION, githubApiUrl: apiUrl, configBucket: undefined, downloadMinFreeMb: 1 },
    logger,
    arch: 'x64',
    extractor: extractor === 'auto' ? undefined : extractor,
  });
  const seconds = (performance.now() - started) / 1000;
  const ready = lines.find((l) => /ready from/.test(l.msg));
  process.stdout.write(
    JSON.stringify({
      seconds,
      maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      vmHwmMb: vmHwmMb(),
      extractor: ready?.extractor,
    }) + '\n',
  );
}

function runAgent(server, variant) {
  const dir = join(WORK, 'agent-dir');
  rmSync(dir, { recursive: true, force: true });
  const input = JSON.stringify({ bundle: BUNDLE, apiUrl: server.apiUrl, dir, extractor: variant });
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', input], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (c) => (out += c));
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`agent child exited ${code}`));
      const result = JSON.parse(out.trim().split('\n').at(-1));
      if (!existsSync(join(dir, 'bin'))) return reject(new Error('agent did not extract the tarball'));
      resolve(result);
    });
  });
}

/** The two-pass baseline, as a shell pipeline of curl, sha256sum and tar (async: the server lives in this process). */
async function runBaseline(server, sha256) {
  const dir = join(WORK, 'baseline-dir');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(WORK, 'baseline.tar.gz');
  rmSync(file, { force: true });
  const script =
    `curl -fsSL -o '${file}' '${server.downloadUrl}' && ` +
    `echo '${sha256}  ${file}' | sha256sum -c --quiet - && ` +
    `tar -xzf '${file}' -C '${dir}'`;
  const started = performance.now();
  await new Promise((resolve, reject) => {
    const proc = spawn('sh', ['-c', script], { stdio: 'inherit' });
    proc.on('error', reject);
    proc.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`baseline exited ${code}`))));
  });
  const seconds = (performance.now() - started) / 1000;
  rmSync(file, { force: true });
  return seconds;
}

/** A loopback server: the Releases API for the one release, and its asset. */
function serve(file, size, sha256) {
  const server = createServer((req, res) => {
    const base = `http://127.0.0.1:${server.address().port}`;
    if (req.url === `/api/repos/actions/runner/releases/tags/v${VERSION}`) {
      const body = JSON.stringify({
        tag_name: `v${VERSION}`,
        body: '',
        assets: [{ name: ASSET, size, digest: `sha256:${sha256}`, browser_download_url: `${base}/download/${ASSET}` }],
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return res.end(body);
    }
    if (req.url === `/download/${ASSET}`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      return void createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({
        url,
        apiUrl: `${url}/api`,
        downloadUrl: `${url}/download/${ASSET}`,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

/** A deterministic runner-like tarball (~200 MB gzipped), generated once. */
function ensureTarball() {
  const out = join(WORK, `runner-${GENERATOR}.tar.gz`);
  if (existsSync(out) && statSync(out).size > 0) return out;
  const tree = join(WORK, 'tree');
  rmSync(tree, { recursive: true, force: true });
  console.log('generating the benchmark tarball (once; ~30 s)…');
  writeRunnerLikeTree(tree, 400e6);
  execFileSync('sh', [
    '-c',
    `tar -cf - --sort=name --mtime=2025-01-01 --owner=0 --group=0 --numeric-owner -C '${tree}' . | gzip -n -6 > '${out}.tmp' && mv '${out}.tmp' '${out}'`,
  ]);
  rmSync(tree, { recursive: true, force: true });
  return out;
}

/** Bundle the agent's download service (esbuild, from the repo's devDependencies). */
async function ensureBundle(rebuild) {
  if (existsSync(BUNDLE) && !rebuild) return;
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [join(REPO, 'services/install/runner-download.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: BUNDLE,
    logLevel: 'warning',
    // CommonJS dependencies (the AWS SDK) call require() for Node built-ins.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
}

async function hashFile(file) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk);
  return hash.digest('hex');
}

/** Peak RSS of this process image (Linux VmHWM), in MB; undefined elsewhere. */
function vmHwmMb() {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

function argValue(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function mb(bytes) {
  return Math.round(bytes / 1e6);
}
