/**
 * The one garbage collection a few seconds into the job (bin/heap.ts): scheduled once per
 * process, on a timer that never keeps the agent alive, and reaching V8's gc() without
 * --expose-gc on the command line (which would make V8 reject the binary's code cache).
 */
import { describe, expect, it, jest } from '@jest/globals';
import { buildSync } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { collect, scheduleHeapReduction } from '../bin/heap.js';

/** V8's young generation (bytes) in a fresh node process: before, after churn, and after more churn once released. */
function youngGeneration(hold: boolean): { before: number; churned: number; released: number } {
  const dir = mkdtempSync(join(tmpdir(), 'rfa-heap-'));
  try {
    buildSync({ entryPoints: ['bin/heap.ts'], bundle: true, platform: 'node', format: 'cjs', outfile: join(dir, 'heap.cjs'), logLevel: 'warning' });
    writeFileSync(
      join(dir, 'driver.cjs'),
      `const v8 = require('node:v8'); const heap = require('./heap.cjs');
       const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
       // Short-lived objects with some survivors, as start-up makes: what grows the young generation.
       const churn = () => { let keep = []; for (let i = 0; i < 3e5; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 5e4) keep = []; } return keep.length; };
       ${hold ? 'heap.holdYoungGeneration();' : ''} const before = young(); churn(); const churned = young();
       heap.releaseYoungGeneration(); churn(); churn();
       console.log(JSON.stringify({ before, churned, released: young() }));`,
    );
    const run = spawnSync(process.execPath, [join(dir, 'driver.cjs')], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(run.stderr);
    return JSON.parse(run.stdout) as { before: number; churned: number; released: number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the young generation', () => {
  it('held, stays at its start-up size through churn that grows it otherwise; released, grows again', () => {
    const held = youngGeneration(true);
    const free = youngGeneration(false);
    expect(held.churned).toBeLessThanOrEqual(2 * held.before);
    expect(free.churned).toBeGreaterThan(4 * free.before); // what holding prevents
    expect(held.released).toBeGreaterThan(4 * held.before);
  });
});

describe('scheduleHeapReduction', () => {
  it('collects once, on a timer that does not keep the process alive, with gc() reached at run time', async () => {
    expect(runInNewContext('typeof gc')).toBe('undefined'); // jest runs without --expose-gc
    const timers = jest.spyOn(global, 'setTimeout');
    scheduleHeapReduction(1);
    scheduleHeapReduction(1);
    expect(timers).toHaveBeenCalledTimes(1);
    const timer = timers.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    timers.mockRestore();
    const gcs: { kind: number; flags: number }[] = [];
    const observer = new PerformanceObserver((list) => gcs.push(...list.getEntries().map((e) => (e as unknown as { detail: { kind: number; flags: number } }).detail)));
    observer.observe({ entryTypes: ['gc'] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    observer.disconnect();
    // A major collection asked for (forced), not one V8 chose.
    expect(gcs.some((g) => g.kind === constants.NODE_PERFORMANCE_GC_MAJOR && (g.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0)).toBe(true);
    expect(runInNewContext('typeof gc')).toBe('undefined'); // --expose-gc unset again
  });
});

describe('collect', () => {
  it('runs a forced major collection each time it is called (the log shipper calls it after a flood), gc() kept', async () => {
    const forced = async (calls: number) => {
      const gcs: { kind: number; flags: number }[] = [];
      const observer = new PerformanceObserver((list) => gcs.push(...list.getEntries().map((e) => (e as unknown as { detail: { kind: number; flags: number } }).detail)));
      observer.observe({ entryTypes: ['gc'] });
      for (let i = 0; i < calls; i++) collect();
      await new Promise((resolve) => setTimeout(resolve, 50));
      observer.disconnect();
      return gcs.filter((g) => g.kind === constants.NODE_PERFORMANCE_GC_MAJOR && (g.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0).length;
    };
    expect(await forced(1)).toBe(1);
    expect(await forced(2)).toBe(2);
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
