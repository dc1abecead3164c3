/**
 * Benchmark (issues 7 and 15): time from process start to the first `downloading` transition,
 * for the bundle (`node dist/runs-fleet-agent.cjs`) and the single binary, against a baseline
 * measured in the same run (`node -e ''`: a bare Node start); and the agent's memory while a
 * job runs (idle agent) with every function on — log shipping, spot polling, the watchdogs —
 * sampled 2, 10 and 30 s into the job as VmRSS and RssAnon (/proc/PID/status).
 *
 * The agent runs as the unit runs it: with the unit's `Environment=` (glibc tunables, NODE_OPTIONS;
 * deploy/systemd/runs-fleet-agent.service). A baseline build (an earlier `dist/`, e.g. main's) can
 * run alternated in the same invocation for before/after figures; it gets the environment of
 * the unit it came with (BENCH_BASELINE_UNIT, default: none).
 *
 *   node scripts/run-ts.mjs bench/startup.ts
 *   BENCH_ROUNDS=9 BENCH_IDLE_ROUNDS=5 BENCH_BASELINE_DIR=.build/before [BENCH_BASELINE_UNIT=path] ...
 *
 * Prints key=value lines (medians).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unitEnvironment, UNIT_FILE } from './unit-env.js';
import { AGENT_BUNDLE, createWorld, JIT_SECRET, type World } from '../test/support/agent-world.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const IDLE_ROUNDS = Number(process.env.BENCH_IDLE_ROUNDS ?? 5);
const SAMPLES_S = [2, 10, 30];
const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
const BINARY = `dist/runs-fleet-agent-linux-${arch}`;
const BASELINE_DIR = process.env.BENCH_BASELINE_DIR;

interface Variant {
  name: string;
  bin: string[];
  env: Record<string, string>;
  startMs: number[];
  rssMb: number[][];
  anonMb: number[][];
}

function bareNodeMs(): number {
  const t = performance.now();
  spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
  return performance.now() - t;
}

function memoryMb(pid: number): { rss: number; anon: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
  } catch {
    return { rss: NaN, anon: NaN };
  }
}

/** One run: ms from spawn to `downloading`; with `sample`, memory at each of SAMPLES_S seconds into the job. */
async function once(world: World, v: Variant, sample: boolean): Promise<{ downloadingMs: number; mem: { rss: number; anon: number }[] }> {
  await world.putRunnerConfig({ jit_config: JIT_SECRET });
  const started = performance.now();
  let downloadingMs = NaN;
  const mem: { rss: number; anon: number }[] = [];
  const timers: NodeJS.Timeout[] = [];
  // Production intervals for the watchdogs: what an idle agent really does.
  const overrides = { ...v.env, RUNS_FLEET_TERMINATE: 'false', RUNS_FLEET_SPOT_POLL_SECONDS: '5', RUNS_FLEET_MONITOR_INTERVAL_SECONDS: '30', RUNS_FLEET_IDLE_TIMEOUT_MINUTES: '5', RUNS_FLEET_MAX_RUNTIME_MINUTES: '5' };
  let running = false;
  const { child, done } = world.startAgent(overrides, {
    bin: v.bin,
    onLine: (line) => {
      if (Number.isNaN(downloadingMs) && line.includes('"state":"downloading"')) downloadingMs = performance.now() - started;
      if (running || !line.includes('"state":"running"')) return;
      running = true;
      if (!sample) return void child.kill('SIGTERM');
      SAMPLES_S.forEach((s, i) =>
        timers.push(
          setTimeout(() => {
            mem[i] = memoryMb(child.pid!);
            if (i === SAMPLES_S.length - 1) child.kill('SIGTERM');
          }, s * 1000),
        ),
      );
    },
  });
  const run = await done;
  for (const t of timers) clearTimeout(t);
  if (run.exitCode !== 0) throw new Error(`${v.name}: agent exited ${run.exitCode}: ${run.stderr.slice(-500)}`);
  if (sample && mem.filter(Boolean).length < SAMPLES_S.length) {
    // Ended before the last sample: say why instead of printing a figure that is not there.
    const why = run.logs.filter((l) => l.level !== 'info' || l.msg === 'state').map((l) => `${String(l.state ?? l.level)}: ${String(l.msg)}`).slice(-6);
    console.log(`  ${v.name}: the agent ended ${mem.filter(Boolean).length} samples in: ${why.join(' | ')}`);
  }
  return { downloadingMs, mem };
}

async function main() {
  if (!existsSync(BINARY)) spawnSync('node', ['scripts/sea.mjs'], { stdio: 'inherit' });
  const world = await createWorld({ runner: { behavior: 'hang' } });
  try {
    const unitEnv = unitEnvironment(UNIT_FILE);
    const baselineEnv = unitEnvironment(process.env.BENCH_BASELINE_UNIT);
    const make = (name: string, bin: string[], env: Record<string, string>): Variant => ({ name, bin, env, startMs: [], rssMb: SAMPLES_S.map(() => []), anonMb: SAMPLES_S.map(() => []) });
    const variants: Variant[] = [];
    if (BASELINE_DIR) {
      const bundle = join(BASELINE_DIR, 'runs-fleet-agent.cjs');
      const binary = join(BASELINE_DIR, `runs-fleet-agent-linux-${arch}`);
      if (existsSync(bundle)) variants.push(make('before_bundle', [process.execPath, bundle], baselineEnv));
      if (existsSync(binary)) variants.push(make('before_binary', [binary], baselineEnv));
    }
    variants.push(make('bundle', [process.execPath, AGENT_BUNDLE], unitEnv));
    if (existsSync(BINARY)) variants.push(make('binary', [BINARY], unitEnv));
    const base: number[] = [];
    console.log(`startup: ${ROUNDS} rounds to downloading, ${IDLE_ROUNDS} rounds of idle memory at ${SAMPLES_S.join(', ')} s into the job, variants alternated; unit environment ${JSON.stringify(unitEnv)}`);
    for (let round = 0; round < Math.max(ROUNDS, IDLE_ROUNDS); round += 1) {
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
        if (round < ROUNDS) {
          base.push(bareNodeMs());
          v.startMs.push((await once(world, v, false)).downloadingMs);
        }
        if (round < IDLE_ROUNDS) {
          const r = await once(world, v, true);
          r.mem.forEach((m, i) => {
            v.rssMb[i]!.push(m.rss);
            v.anonMb[i]!.push(m.anon);
          });
          console.log(`  ${v.name} idle #${round + 1}: ${r.mem.map((m, i) => `${SAMPLES_S[i]} s VmRSS ${m.rss.toFixed(1)} RssAnon ${m.anon.toFixed(1)} MB`).join(', ')}`);
        }
      }
    }
    const baseline = median(base);
    console.log(`startup_rounds=${ROUNDS}`);
    console.log(`idle_rounds=${IDLE_ROUNDS}`);
    console.log(`node_bare_start_median_ms=${baseline.toFixed(0)}`);
    for (const v of variants) {
      const m = median(v.startMs);
      console.log(`startup_to_downloading_${v.name}_median_ms=${m.toFixed(0)}  (goal <= 300)`);
      console.log(`startup_${v.name}_vs_bare_node_ratio=${(m / baseline).toFixed(2)}`);
      SAMPLES_S.forEach((s, i) => {
        const goal = v.name === 'binary' && s === 30 ? '  (goal: VmRSS <= 75, RssAnon <= 35)' : '';
        console.log(`idle_${v.name}_${s}s_vmrss_mb=${median(v.rssMb[i]!).toFixed(1)} idle_${v.name}_${s}s_rssanon_mb=${median(v.anonMb[i]!).toFixed(1)}${goal}`);
      });
    }
  } finally {
    await world.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
