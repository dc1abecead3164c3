import { fromCallback, type AnyEventObject } from 'xstate';
import type { WatchdogInput } from '../machines/actor-contracts.js';
import type { AgentEvent } from '../machines/events.js';
import type { Logger } from '../services/logs/logger.js';
import { availableMemoryMb, freeDiskMb } from '../services/resources.js';

/**
 * Every RUNS_FLEET_MONITOR_INTERVAL_SECONDS: free disk on the runner's filesystem
 * (below the minimum → DISK_FULL, once) and available memory (below the minimum →
 * MEMORY_LOW each time it crosses the line, a warning, never a stop).
 */
export function resourceMonitor(deps: { logger: Logger }) {
  return fromCallback<AnyEventObject, WatchdogInput, AgentEvent>(({ input, sendBack }) => {
    const { runnerDir, diskMinFreeMb, memMinAvailableMb, monitorIntervalMs } = input.settings;
    let diskReported = false;
    let memoryLow = false;
    const check = async () => {
      try {
        const freeMb = await freeDiskMb(runnerDir);
        if (!diskReported && freeMb < diskMinFreeMb) {
          diskReported = true;
          deps.logger.error({ free_mb: freeMb, min_free_mb: diskMinFreeMb, path: runnerDir }, 'disk full');
          sendBack({ type: 'DISK_FULL', freeMb, minFreeMb: diskMinFreeMb });
        }
        const availableMb = await availableMemoryMb();
        if (!memoryLow && availableMb < memMinAvailableMb) {
          deps.logger.warn({ available_mb: availableMb, min_available_mb: memMinAvailableMb }, 'memory low');
          sendBack({ type: 'MEMORY_LOW', availableMb, minAvailableMb: memMinAvailableMb });
        }
        memoryLow = availableMb < memMinAvailableMb;
      } catch (error) {
        deps.logger.warn({ error: (error as Error).message }, 'resource check failed');
      }
    };
    const timer = setInterval(check, Math.max(100, monitorIntervalMs));
    return () => clearInterval(timer);
  });
}
