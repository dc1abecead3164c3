import { fromCallback, type AnyEventObject } from 'xstate';
import type { WatchdogInput } from '../machines/actor-contracts.js';
import type { AgentEvent } from '../machines/events.js';
import type { MetadataClient } from '../services/aws/identity.js';
import type { Logger } from '../services/logs/logger.js';
import { readSpotNotice } from '../services/aws/spot-notice.js';

/** Polls IMDS for a spot interruption notice every RUNS_FLEET_SPOT_POLL_SECONDS; sends it once. */
export function spotWatcher(deps: { imds: () => MetadataClient; logger: Logger }) {
  return fromCallback<AnyEventObject, WatchdogInput, AgentEvent>(({ input, sendBack }) => {
    let stopped = false;
    let failures = 0;
    let timer: NodeJS.Timeout | undefined;
    const client = deps.imds();
    const poll = async () => {
      if (stopped) return;
      try {
        const notice = await readSpotNotice(client);
        failures = 0;
        if (notice && !stopped) {
          deps.logger.warn({ action: notice.action, time: notice.time }, 'spot interruption notice');
          sendBack({ type: 'SPOT_INTERRUPTION', action: notice.action, time: notice.time });
          return; // one notice is all the machine needs
        }
      } catch (error) {
        failures += 1;
        // Off EC2 (or IMDS down) this would repeat every poll: log the first and then every 60th.
        if (failures === 1 || failures % 60 === 0) {
          deps.logger.warn({ failures, error: (error as Error).message }, 'spot notice poll failed');
        }
      }
      if (!stopped) timer = setTimeout(poll, input.settings.spotPollMs);
    };
    timer = setTimeout(poll, 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  });
}
