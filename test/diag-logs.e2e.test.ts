/**
 * End to end: the built agent ships the runner's `_diag/*.log` files after the job to
 * `{instance-id}/{run-id}/diag` in moto — the fake runner's Runner log, a Worker log the
 * job wrote (with a secret in it: redacted), and nothing of `_diag/env.txt` or
 * `_diag/config-args.json`. Needs bin/main.ts to pass `runnerDir: settings.runnerDir`
 * to createActors.
 */
import { describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createWorld, JIT_SECRET, RUN_ID, type World } from './support/agent-world.js';
import { e2eFile } from './support/e2e-file.js';

let world: World | undefined;
const e2e = e2eFile(() => world, () => (world = undefined));

describe('runner diagnostics, end to end', () => {
  it('ships _diag/*.log to {instance-id}/{run-id}/diag, redacted, without env.txt or config-args.json', async () => {
    world = await createWorld({ moto: e2e.moto, runner: { behavior: 'succeed', jobSeconds: 1.5 } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const w = world;
    let wrote = false;
    // While the job runs, its worker writes a diag log that happens to contain the JIT config.
    const { done } = w.startAgent({}, {
      onLine: (line) => {
        if (wrote || !line.includes('Running job: build')) return;
        wrote = true;
        writeFileSync(
          join(w.runnerDir, '_diag', 'Worker_20261128-101600-utc.log'),
          `[2026-11-28 10:16:00Z INFO Worker] Job message received\n[2026-11-28 10:16:00Z INFO Worker] jitconfig=${JIT_SECRET}\n[2026-11-28 10:16:01Z INFO Worker] Job completed\n`,
        );
      },
    });
    const run = await done;

    expect(run.exitCode).toBe(0);
    expect(wrote).toBe(true);
    const diag = await w.logEvents(`${w.instanceId}/${RUN_ID}/diag`);
    expect(diag).toEqual(expect.arrayContaining([expect.stringMatching(/^==> _diag\/Runner_\d{8}-\d{6}-utc\.log \(\d+ bytes\) <==$/)]));
    expect(diag).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/INFO Runner\] Fake runner version 2\.330\.0, behavior succeed$/),
        expect.stringMatching(/INFO Runner\] Running job: build$/),
        expect.stringMatching(/INFO Runner\] Job build completed with result: Succeeded$/),
        expect.stringMatching(/^==> _diag\/Worker_20261128-101600-utc\.log \(\d+ bytes\) <==$/),
      ]),
    );
    expect(diag).toEqual(expect.arrayContaining(['[2026-11-28 10:16:00Z INFO Worker] jitconfig=***', '[2026-11-28 10:16:01Z INFO Worker] Job completed']));
    // Not a log file: never read.
    expect(diag.join('\n')).not.toMatch(/env\.txt|config-args|^[A-Z_]+=/m);
    expect(diag.some((l) => l.includes('ACTIONS_RUNNER') || l.includes('PATH='))).toBe(false);
    // No secret anywhere.
    for (const text of [diag.join('\n'), run.stdout, run.stderr]) expect(text).not.toContain(JIT_SECRET);
    // The diag lines are counted among the shipped lines reported in telemetry.
    const final = (await w.telemetry()).at(-1)!;
    const runnerLines = (await w.logEvents()).length;
    expect(final.log_lines_dropped).toBe(0);
    expect(final.log_lines_shipped).toBeGreaterThanOrEqual(runnerLines + diag.filter((l) => !l.startsWith('==> ')).length);
  });
});
