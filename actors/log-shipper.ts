import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { ClientFactory } from '../services/aws/clients.js';
import { fromCallback, type AnyEventObject } from 'xstate';
import type { WatchdogInput } from '../machines/actor-contracts.js';
import type { AgentEvent } from '../machines/events.js';
import type { Logger } from '../services/logs/logger.js';
import { streamName, type LogShipper } from '../services/logs/shipper.js';

/**
 * Starts CloudWatch Logs shipping to `{instance-id}/{run-id | job-id | "runner"}` when
 * RUNS_FLEET_LOG_GROUP is set (else the shipper drops its buffer: nothing to ship to).
 * Stopping the actor ends the periodic timer only: what is queued stays for `flushLogs`.
 */
export function logShipper(deps: { shipper: LogShipper; logs: ClientFactory<CloudWatchLogsClient>; logger: Logger }) {
  return fromCallback<AnyEventObject, WatchdogInput, AgentEvent>(({ input }) => {
    const { settings, identity, jobSpec } = input;
    const { shipper } = deps;
    if (!settings.logGroup) {
      shipper.disable();
      return () => {};
    }
    const instanceId = identity?.instanceId ?? settings.instanceId;
    if (!instanceId) {
      shipper.disable(`log shipping to "${settings.logGroup}" is disabled: the instance id is unknown`);
      return () => shipper.stop();
    }
    const stream = streamName(instanceId, jobSpec?.runId, jobSpec?.jobId);
    deps.logger.info({ log_group: settings.logGroup, log_stream: stream }, 'shipping logs to CloudWatch');
    const logGroup = settings.logGroup;
    let stopped = false;
    // The client's package loads lazily. Start even if stopped meanwhile (the final flush
    // still needs the stream), but then without the periodic timer.
    void Promise.resolve(deps.logs(identity?.region ?? settings.region)).then(
      async (client) => {
        await shipper.start({ client, logGroup, stream });
        if (stopped) shipper.stop();
      },
      (error: unknown) => shipper.disable(`log shipping disabled: ${(error as Error).message}`),
    );
    return () => {
      stopped = true;
      shipper.stop();
    };
  });
}
