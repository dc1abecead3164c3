/**
 * The log shipper's one owner. Invoked at the machine's root, it lives as long as the
 * lifecycle: it builds the LogShipper (spilling under the state dir), attaches it to the
 * LogRoute that the logger and the runner process write to, and closes it at the end.
 *
 * The chart talks to it with two commands:
 * - SHIP_LOGS (once the instance and the job are known): ship to
 *   `{instance-id}/{run-id | job-id | "runner"}` in RUNS_FLEET_LOG_GROUP, or drop the buffer
 *   when no group is set (nothing to ship to);
 * - FLUSH_LOGS {timeoutMs, diagDir?}: ship what is queued within the deadline, first queueing
 *   the runner's `_diag` logs when the chart asks for them (reporting does, once; the last
 *   flush in terminating does not), and answer LOGS_FLUSHED {shipped, dropped}. A new FLUSH
 *   abandons the answer of an older one, so a late answer never ends the wrong state.
 */
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { fromCallback } from 'xstate';
import type { LogShipperInput } from '../machines/actor-contracts.js';
import type { AgentEvent, LogShipperCommand } from '../machines/events.js';
import type { ClientFactory } from '../services/aws/clients.js';
import { shipDiagLogs, type DiagSink } from '../services/logs/diag.js';
import type { Logger, LogRoute } from '../services/logs/logger.js';
import { LogShipper, streamName, type LogShipperOptions } from '../services/logs/shipper.js';
import type { SecretVault } from '../services/secrets.js';

export interface LogShipperDeps {
  route: LogRoute;
  logs: ClientFactory<CloudWatchLogsClient>;
  logger: Logger;
  /** Redacts the runner's `_diag` files, which are read raw (every other line arrives redacted). */
  vault?: SecretVault;
  /** A full garbage collection, after blocks read back from the spill file (LogShipperOptions.reclaim). */
  reclaim?: () => void;
  /** Test knobs (intervals, timeouts, memory bound). */
  options?: Partial<LogShipperOptions>;
  /** Cap of the diagnostics (default 5 MiB, see services/logs/diag.ts). */
  diagMaxBytes?: number;
}

export function logShipper(deps: LogShipperDeps) {
  return fromCallback<LogShipperCommand, LogShipperInput, AgentEvent>(({ input, sendBack, receive }) => {
    const shipper = new LogShipper({
      spillDir: `${input.settings.stateDir}/log-spill`,
      warn: (message: string) => deps.logger.warn(message),
      reclaim: deps.reclaim,
      ...deps.options,
    });
    deps.route.attach(shipper);
    let shipping = false;
    let flushing: AbortController | undefined;
    let stopped = false;

    receive((command) => {
      if (command.type === 'SHIP_LOGS') {
        if (shipping) return;
        shipping = true;
        startShipping(deps, shipper, command);
      } else if (command.type === 'FLUSH_LOGS') {
        flushing?.abort();
        const controller = (flushing = new AbortController());
        void flush(deps, shipper, command, controller.signal).then((counts) => {
          if (!controller.signal.aborted && !stopped) sendBack({ type: 'LOGS_FLUSHED', ...counts });
        });
      }
    });
    return () => {
      stopped = true;
      flushing?.abort();
      deps.route.detach(shipper);
      shipper.close();
    };
  });
}

function startShipping(deps: LogShipperDeps, shipper: LogShipper, command: Extract<LogShipperCommand, { type: 'SHIP_LOGS' }>): void {
  const { settings, identity, jobSpec } = command;
  if (!settings.logGroup) {
    shipper.disable();
    return;
  }
  const instanceId = identity?.instanceId ?? settings.instanceId;
  if (!instanceId) {
    shipper.disable(`log shipping to "${settings.logGroup}" is disabled: the instance id is unknown`);
    return;
  }
  const stream = streamName(instanceId, jobSpec?.runId, jobSpec?.jobId);
  deps.logger.info({ log_group: settings.logGroup, log_stream: stream }, 'shipping logs to CloudWatch');
  const logGroup = settings.logGroup;
  // The client's package loads lazily.
  void Promise.resolve(deps.logs(identity?.region ?? settings.region)).then(
    (client) => shipper.start({ client, logGroup, stream }),
    (error: unknown) => shipper.disable(`log shipping disabled: ${(error as Error).message}`),
  );
}

async function flush(deps: LogShipperDeps, shipper: LogShipper, command: Extract<LogShipperCommand, { type: 'FLUSH_LOGS' }>, signal: AbortSignal) {
  const deadlineMs = Date.now() + command.timeoutMs;
  if (command.diagDir) await queueDiagnostics(deps, shipper, command.diagDir, deadlineMs, signal);
  const counts = await shipper.flush(Math.max(0, deadlineMs - Date.now()), signal);
  // The retries are bounded in the shipper (MAX_CALL_ATTEMPTS); here they are made visible.
  deps.logger.info({ shipped: counts.shipped, dropped: counts.dropped, retries: shipper.retries }, 'logs flushed');
  return counts;
}

async function queueDiagnostics(deps: LogShipperDeps, shipper: LogShipper, dir: string, deadlineMs: number, signal: AbortSignal): Promise<void> {
  // Nowhere to ship them (shipping off, failed, or never started): not even read.
  if (!shipper.delivering) return;
  try {
    const sink: DiagSink = { diagLine: shipper.diagLine.bind(shipper), countDropped: shipper.countDropped.bind(shipper) };
    const summary = await shipDiagLogs({ dir, vault: deps.vault, maxBytes: deps.diagMaxBytes, deadlineMs, signal }, sink);
    if (summary.files.length > 0 || summary.problem) {
      deps.logger.info(
        { diag_files: summary.files.map((f) => f.name), diag_lines: summary.lines, diag_lines_cut: summary.cut, problem: summary.problem },
        'runner diagnostics queued for CloudWatch',
      );
    }
  } catch (error) {
    deps.logger.warn({ err: String(error) }, 'runner diagnostics could not be read');
  }
}
