/**
 * Benchmark (issue 7): time from process start to the first `downloading` transition, for
 * the bundle (`node dist/runs-fleet-agent.cjs`) and the single binary, against a baseline
 * measured in the same run (`node -e ''`: a bare Node start); and the agent's RSS while a
 * job runs (idle agent). Prints key=value lines. Run: node scripts/run-ts.mjs bench/startup.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createWorld, JIT_SECRET, type World } from '../test/support/agent-world.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
const BINARY = `dist/runs-fleet-agent-linux-${arch}`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function bareNodeMs(): number {
  const t = performance.now();
  spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
  return performance.now() - t;
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kb ? Number(kb) / 1024 : NaN;
}

/** One run: ms from spawn to the `downloading` state line, and RSS 2 s into a running job. */
async function once(world: World, bin: string[] | undefined, sampleRss: boolean) {
  await world.putRunnerConfig({ jit_config: JIT_SECRET });
  const started = performance.now();
  let downloadingMs = NaN;
  let rss = NaN;
  const { child, done } = world.startAgent({ RUNS_FLEET_TERMINATE: 'false' }, {
    bin,
    onLine: (line) => {
      if (Number.isNaN(downloadingMs) && line.includes('"state":"downloading"')) downloadingMs = performance.now() - started;
      if (line.includes('"state":"running"')) {
        setTimeout(() => {
          if (sampleRss) rss = rssMb(child.pid!);
          child.kill('SIGTERM');
        }, sampleRss ? 2000 : 0);
      }
    },
  });
  const run = await done;
  if (run.exitCode !== 0) throw new Error(`agent exited ${run.exitCode}: ${run.stderr.slice(-500)}`);
  return { downloadingMs, rss };
}

async function main() {
  if (!existsSync(BINARY)) spawnSync('node', ['scripts/sea.mjs'], { stdio: 'inherit' });
  const world = await createWorld({ runner: { behavior: 'hang' } });
  try {
    const variants: [string, string[] | undefined][] = [['bundle', undefined]];
    if (existsSync(BINARY)) variants.push(['binary', [BINARY]]);
    const base: number[] = [];
    const times: Record<string, number[]> = { bundle: [], binary: [] };
    const rss: Record<string, number> = {};
    for (let round = 0; round < ROUNDS; round += 1) {
      base.push(bareNodeMs());
      for (const [name, bin] of variants) {
        const r = await once(world, bin, round === 0);
        times[name]!.push(r.downloadingMs);
        if (round === 0) rss[name] = r.rss;
      }
    }
    const baseline = median(base);
    console.log(`startup_rounds=${ROUNDS}`);
    console.log(`node_bare_start_median_ms=${baseline.toFixed(0)}`);
    for (const [name] of variants) {
      const m = median(times[name]!);
      console.log(`startup_to_downloading_${name}_median_ms=${m.toFixed(0)}  (goal <= 300)`);
      console.log(`startup_${name}_vs_bare_node_ratio=${(m / baseline).toFixed(2)}`);
      console.log(`idle_rss_${name}_mb=${rss[name]!.toFixed(1)}  (goal <= 60, while the job runs)`);
    }
  } finally {
    await world.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
