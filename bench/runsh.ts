/**
 * Benchmark (issue 15): agent start → `run.sh` with a runner-sized tarball (~190 MB gzipped,
 * ~370 MB of runner-like files, bench/runner-tree.mjs) served by the fake GitHub on loopback,
 * against its physical bound: a plain `tar -xzf` of the same file already on disk, alternated
 * in the same invocation, medians. The agent's config is written, as the orchestrator writes
 * it, right after the agent started (its first poll finds it); the runner is downloaded every time (the runner dir is removed before each run). The checksum is verified
 * before anything is moved into place, as always.
 *
 * Also printed, from the agent's own log (medians): start → `downloading`, start → the runner
 * installed (`runner … ready from …`), and from there to run.sh.
 *
 *   node scripts/run-ts.mjs bench/runsh.ts [--rounds 5] [--agent binary-or.cjs] [--baseline earlier-binary-or.cjs] [--explain]
 *                                          (or BENCH_ROUNDS, BENCH_BASELINE_AGENT)
 *
 * The agent is the single binary (dist/runs-fleet-agent-linux-*) when it was built, as the unit
 * runs it, else the bundle.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_BINARY, AGENT_BUNDLE, createWorld, JIT_SECRET, RUNNER_VERSION, type World } from '../test/support/agent-world.js';
// @ts-expect-error -- a plain .mjs module shared with bench/download.mjs
import { writeRunnerLikeTree } from './runner-tree.mjs';
import { median } from './stats.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1]!;
}
const ROUNDS = Math.max(1, Number(arg('--rounds', process.env.BENCH_ROUNDS ?? '5')));
/** The single binary, as the unit runs it, when `make dist` built it; else the bundle. */
const AGENT = arg('--agent', existsSync(AGENT_BINARY) ? AGENT_BINARY : AGENT_BUNDLE);
const command = (agent: string) => (agent.endsWith('.cjs') ? [process.execPath, agent] : [agent]);
const BASELINE = arg('--baseline', process.env.BENCH_BASELINE_AGENT ?? '');
const WORK = join(tmpdir(), 'runs-fleet-bench');
/** For investigation: print the agent's log lines up to run.sh, with their time since start. */
const EXPLAIN = process.argv.includes('--explain');
const TREE_BYTES = 370e6;
const TREE = join(WORK, `runsh-tree-${TREE_BYTES / 1e6}MB-v1`);

interface Sample {
  /** Agent start (spawn) → the `run.sh started` line. */
  toRunSh: number;
  /** Agent start → the machine entering `downloading`. */
  toDownloading: number;
  /** Agent start → the `runner … ready from …` line (download, verify, gunzip, untar, chown, move into place). */
  toReady: number;
  /** From `runner ready` to `run.sh started`: registering, isolation, prepareJob. */
  afterInstall: number;
}

function ensureTree(): void {
  if (existsSync(join(TREE, '.complete'))) return;
  rmSync(TREE, { recursive: true, force: true });
  console.log(`generating a ${TREE_BYTES / 1e6} MB runner-like tree (once, in ${TREE})…`);
  writeRunnerLikeTree(TREE, TREE_BYTES);
  writeFileSync(join(TREE, '.complete'), '');
}

async function agentOnce(world: World, agent: string): Promise<Sample> {
  rmSync(world.runnerDir, { recursive: true, force: true }); // download every time
  const started = Date.now();
  const at: Record<string, number> = {};
  const { child, done } = world.startAgent(
    { RUNS_FLEET_TERMINATE: 'false', RUNS_FLEET_INSTANCE_ID: world.instanceId, AWS_REGION: 'us-east-1' },
    {
      bin: command(agent),
      onLine: (line) => {
        if (!line.startsWith('{')) return;
        const entry = JSON.parse(line) as { msg?: string; time?: string; state?: string };
        const time = Date.parse(entry.time ?? '');
        if (EXPLAIN && at.runSh === undefined) console.log(`    +${time - started} ms ${line.slice(0, 600)}`);
        if (entry.msg === 'run.sh started') at.runSh ??= time;
        if (/^runner \S+ ready from/.test(entry.msg ?? '')) at.ready ??= time;
        if (entry.msg === 'state' && entry.state === 'downloading') at.downloading ??= time;
      },
    },
  );
  await world.putConfigAsOrchestrator({ jit_config: JIT_SECRET });
  const run = await done;
  if (run.exitCode !== 0 || at.runSh === undefined) throw new Error(`agent exited ${run.exitCode} (pid ${child.pid}): ${run.stderr.slice(-800)}`);
  return { toRunSh: at.runSh - started, toDownloading: (at.downloading ?? NaN) - started, toReady: (at.ready ?? NaN) - started, afterInstall: at.runSh - (at.ready ?? NaN) };
}

/** The physical bound: gunzip + untar of the same file, already on disk. */
function tarOnce(tarball: string): number {
  const dir = join(WORK, 'runsh-tar-dir');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  const r = spawnSync('tar', ['-xzf', tarball, '-C', dir], { stdio: 'inherit' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`tar -xzf exited ${r.status}`);
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

async function main(): Promise<void> {
  if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: run \`node scripts/build.mjs\` first`);
  if (BASELINE && !existsSync(BASELINE)) throw new Error(`baseline ${BASELINE} is missing`);
  mkdirSync(WORK, { recursive: true });
  ensureTree();
  const world = await createWorld({ runner: { behavior: 'succeed', jobSeconds: 0.1, extraTree: TREE } });
  const tarball = join(WORK, 'runsh-runner.tar.gz');
  try {
    const release = (await (await fetch(`${world.github.apiUrl}/repos/actions/runner/releases/tags/v${RUNNER_VERSION}`)).json()) as {
      assets: { name: string; browser_download_url: string }[];
    };
    const asset = release.assets.find((a) => a.name.includes(`linux-${process.arch === 'arm64' ? 'arm64' : 'x64'}`))!;
    writeFileSync(tarball, Buffer.from(await (await fetch(asset.browser_download_url)).arrayBuffer()));
    const files = Number(execFileSync('sh', ['-c', `tar -tzf '${tarball}' | wc -l`]).toString().trim());
    console.log(
      `time to run.sh: ${AGENT}${BASELINE ? ` against the baseline ${BASELINE}` : ''}; runner tarball ${(statSync(tarball).size / 1e6).toFixed(0)} MB ` +
        `(${files} entries, ${readdirSync(TREE).length} top-level), served on loopback; ${ROUNDS} alternated rounds (medians)`,
    );
    const variants = [{ name: 'after', agent: AGENT, samples: [] as Sample[] }];
    if (BASELINE) variants.unshift({ name: 'before', agent: BASELINE, samples: [] });
    const tar: number[] = [];
    await agentOnce(world, AGENT); // warm-up: page cache, the runner user, moto
    for (let round = 0; round < ROUNDS; round += 1) {
      tar.push(tarOnce(tarball));
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
        const s = await agentOnce(world, v.agent);
        v.samples.push(s);
        console.log(`  ${v.name} #${round + 1}: run.sh at ${s.toRunSh} ms (downloading at ${s.toDownloading} ms, runner ready at ${s.toReady} ms, then ${s.afterInstall} ms); tar -xzf ${tar.at(-1)!.toFixed(0)} ms`);
      }
    }
    const tarMs = median(tar);
    console.log(`\nlocal_tar_xzf_median_ms=${tarMs.toFixed(0)}`);
    for (const v of variants) {
      const p = variants.length > 1 ? `${v.name}_` : '';
      const toRunSh = median(v.samples.map((s) => s.toRunSh));
      console.log(`${p}agent_start_to_runsh_median_ms=${toRunSh.toFixed(0)}`);
      console.log(`${p}agent_start_to_runsh_vs_local_tar_xzf=${(toRunSh / tarMs).toFixed(2)}  (goal <= 1.15)`);
      console.log(`${p}agent_start_to_downloading_median_ms=${median(v.samples.map((s) => s.toDownloading)).toFixed(0)}  (goal <= 300)`);
      console.log(`${p}agent_start_to_runner_ready_median_ms=${median(v.samples.map((s) => s.toReady)).toFixed(0)}`);
      console.log(`${p}runner_ready_to_runsh_median_ms=${median(v.samples.map((s) => s.afterInstall)).toFixed(0)}`);
    }
  } finally {
    rmSync(tarball, { force: true });
    await world.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
