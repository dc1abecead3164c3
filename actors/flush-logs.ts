import { fromPromise } from 'xstate';
import type { FlushLogsInput, FlushLogsResult } from '../machines/actor-contracts.js';
import { shipDiagLogs, type DiagSink } from '../services/logs/diag.js';
import type { LogShipper } from '../services/logs/shipper.js';
import type { Logger } from '../services/logs/logger.js';
import type { SecretVault } from '../services/secrets.js';

export interface FlushLogsDeps {
  shipper: Pick<LogShipper, 'flush'> & Partial<Pick<LogShipper, 'delivering'>> & Partial<DiagSink>;
  /** The runner's `_diag` directory: its `*.log` files are shipped (to `{stream}/diag`) by the first flush. */
  diagDir?: () => string | undefined;
  vault?: SecretVault;
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** Cap of the diagnostics (default 5 MiB, see diag-logs.ts). */
  diagMaxBytes?: number;
}

/**
 * Ship what the log shipper still holds within the deadline; the rest is counted as dropped.
 * The first flush (the one before reporting, after the job) also queues the runner's
 * diagnostics, within the same deadline; later flushes never read them again. Never rejects.
 */
export function flushLogs(deps: FlushLogsDeps) {
  let diagDone = false;
  return fromPromise<FlushLogsResult, FlushLogsInput>(async ({ input, signal }) => {
    const deadlineMs = Date.now() + input.timeoutMs;
    if (!diagDone) {
      diagDone = true;
      await queueDiagnostics(deps, deadlineMs, signal);
    }
    return deps.shipper.flush(Math.max(0, deadlineMs - Date.now()), signal);
  });
}

async function queueDiagnostics(deps: FlushLogsDeps, deadlineMs: number, signal: AbortSignal): Promise<void> {
  const { shipper } = deps;
  // Nowhere to ship them (shipping off, failed, or never started): not even read.
  if (!shipper.delivering || !shipper.diagLine || !shipper.countDropped) return;
  try {
    const dir = deps.diagDir?.();
    if (!dir) return;
    const sink: DiagSink = { diagLine: shipper.diagLine.bind(shipper), countDropped: shipper.countDropped.bind(shipper) };
    const summary = await shipDiagLogs({ dir, vault: deps.vault, maxBytes: deps.diagMaxBytes, deadlineMs, signal }, sink);
    if (summary.files.length > 0 || summary.problem) {
      deps.logger?.info(
        { diag_files: summary.files.map((f) => f.name), diag_lines: summary.lines, diag_lines_cut: summary.cut, problem: summary.problem },
        'runner diagnostics queued for CloudWatch',
      );
    }
  } catch (error) {
    deps.logger?.warn({ err: String(error) }, 'runner diagnostics could not be read');
  }
}
