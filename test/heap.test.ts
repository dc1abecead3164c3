/**
 * The one garbage collection a few seconds into the job (bin/heap.ts): scheduled once per
 * process, on a timer that never keeps the agent alive, and reaching V8's gc() without
 * --expose-gc on the command line (which would make V8 reject the binary's code cache).
 */
import { describe, expect, it, jest } from '@jest/globals';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { scheduleHeapReduction } from '../bin/heap.js';

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
