/**
 * Benchmark (issue 10): time from agent start to `run.sh`, with the runner config written by
 * the orchestrator's mirror 0 s and 6 s after the agent started (the orchestrator writes it
 * after launch), with the runner downloaded while waiting (prefetch, the default) and without
 * (RUNS_FLEET_PREFETCH_RUNNER=false) — alternated in the same invocation, medians.
 * The fake runner carries 64 MiB of incompressible padding so that the download costs
 * something (a real runner is ~190 MB, mostly compressible).
 *
 *   node scripts/run-ts.mjs bench/standby.ts      (BENCH_ROUNDS, default 5)
 */
import { rmSync } from 'node:fs';
import { createWorld, JIT_SECRET, type World } from '../test/support/agent-world.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

interface Sample {
  /** Agent start → run.sh spawned. */
  toRunSh: number;
  /** Config written → run.sh spawned. */
  afterConfig: number;
}

async function once(world: World, delayMs: number, prefetch: boolean): Promise<Sample> {
  rmSync(world.runnerDir, { recursive: true, force: true }); // download every time
  const started = Date.now();
  let runShAt = NaN;
  const { child, done } = world.startAgent(
    { RUNS_FLEET_TERMINATE: 'false', RUNS_FLEET_PREFETCH_RUNNER: String(prefetch), RUNS_FLEET_INSTANCE_ID: world.instanceId, AWS_REGION: 'us-east-1' },
    {
      onLine: (line) => {
        if (Number.isNaN(runShAt) && line.includes('"msg":"run.sh started"')) runShAt = Date.parse(JSON.parse(line).time);
      },
    },
  );
  const written = await world.putConfigAsOrchestrator({ jit_config: JIT_SECRET }, { delayMs });
  const run = await done;
  if (run.exitCode !== 0 || Number.isNaN(runShAt)) throw new Error(`agent exited ${run.exitCode} (pid ${child.pid}): ${run.stderr.slice(-500)}`);
  return { toRunSh: runShAt - started, afterConfig: runShAt - Date.parse(written.written_at!) };
}

async function main() {
  const world = await createWorld({ runner: { behavior: 'succeed', jobSeconds: 0.1, paddingBytes: 64 * 1024 * 1024 } });
  try {
    const variants = [
      { name: 'config0s_prefetch', delayMs: 0, prefetch: true },
      { name: 'config0s_no_prefetch', delayMs: 0, prefetch: false },
      { name: 'config6s_prefetch', delayMs: 6_000, prefetch: true },
      { name: 'config6s_no_prefetch', delayMs: 6_000, prefetch: false },
    ];
    const samples: Record<string, Sample[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) samples[v.name]!.push(await once(world, v.delayMs, v.prefetch));
    }
    console.log(`standby_rounds=${ROUNDS}`);
    const m: Record<string, { toRunSh: number; afterConfig: number }> = {};
    for (const v of variants) {
      m[v.name] = { toRunSh: median(samples[v.name]!.map((s) => s.toRunSh)), afterConfig: median(samples[v.name]!.map((s) => s.afterConfig)) };
      console.log(`time_to_runsh_${v.name}_median_ms=${m[v.name]!.toRunSh.toFixed(0)}  config_written_to_runsh_ms=${m[v.name]!.afterConfig.toFixed(0)}`);
    }
    console.log(`prefetch_ratio_config0s=${(m.config0s_prefetch!.toRunSh / m.config0s_no_prefetch!.toRunSh).toFixed(2)}  (prefetch / no prefetch, time to run.sh)`);
    console.log(`prefetch_ratio_config6s=${(m.config6s_prefetch!.toRunSh / m.config6s_no_prefetch!.toRunSh).toFixed(2)}  (prefetch / no prefetch, time to run.sh)`);
    console.log(`config6s_written_to_runsh_prefetch_vs_no_prefetch=${(m.config6s_prefetch!.afterConfig / m.config6s_no_prefetch!.afterConfig).toFixed(2)}`);
  } finally {
    await world.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
