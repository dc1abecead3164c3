import { fromCallback, type AnyEventObject } from 'xstate';
import type { AgentEvent } from '../machines/events.js';
import type { Logger } from '../services/logs/logger.js';

/**
 * Process-level events: SIGTERM/SIGINT become SIGTERM events; an uncaught exception
 * or unhandled rejection becomes PANIC (the stack is logged) instead of killing the
 * process, so reporting and termination still happen.
 */
export function processWatcher(deps: { logger: Logger; target?: NodeJS.Process }) {
  return fromCallback<AnyEventObject, void, AgentEvent>(({ sendBack }) => {
    const proc = deps.target ?? process;
    const onSignal = (signal: 'SIGTERM' | 'SIGINT') => {
      deps.logger.warn({ signal }, 'signal received');
      sendBack({ type: 'SIGTERM', signal });
    };
    const onPanic = (error: unknown) => {
      const err = error instanceof Error ? error : new Error(String(error));
      deps.logger.error({ err: { message: err.message, stack: err.stack } }, 'agent crashed (uncaught)');
      sendBack({ type: 'PANIC', error: err.message, stack: err.stack });
    };
    const onTerm = () => onSignal('SIGTERM');
    const onInt = () => onSignal('SIGINT');
    proc.on('SIGTERM', onTerm);
    proc.on('SIGINT', onInt);
    proc.on('uncaughtException', onPanic);
    proc.on('unhandledRejection', onPanic);
    return () => {
      proc.off('SIGTERM', onTerm);
      proc.off('SIGINT', onInt);
      proc.off('uncaughtException', onPanic);
      proc.off('unhandledRejection', onPanic);
    };
  });
}
