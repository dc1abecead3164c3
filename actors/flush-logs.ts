import { fromPromise } from 'xstate';
import type { FlushLogsInput, FlushLogsResult } from '../machines/actor-contracts.js';
import type { LogShipper } from '../services/log-shipper.js';

/** Ship what the log shipper still holds within the deadline; the rest is counted as dropped. Never rejects. */
export function flushLogs(deps: { shipper: Pick<LogShipper, 'flush'> }) {
  return fromPromise<FlushLogsResult, FlushLogsInput>(({ input, signal }) => deps.shipper.flush(input.timeoutMs, signal));
}
