/**
 * The log shipper's actor (actors/log-shipper.ts) under a tiny parent machine, as the agent
 * machine drives it: SHIP_LOGS, then FLUSH_LOGS answered by LOGS_FLUSHED.
 */
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { createActor, setup, type AnyEventObject } from 'xstate';
import { logShipper, type LogShipperDeps } from '../../actors/log-shipper.js';
import type { Identity, JobSpec } from '../../services/domain.js';
import { createLogger, LogRoute } from '../../services/logs/logger.js';
import { SecretVault } from '../../services/secrets.js';
import { parseSettings } from '../../services/settings.js';

export interface HarnessOptions {
  client: CloudWatchLogsClient;
  stateDir: string;
  env?: Record<string, string>;
  vault?: SecretVault;
  deps?: Partial<LogShipperDeps>;
}

export function shipperHarness(options: HarnessOptions) {
  const route = new LogRoute();
  const regions: (string | undefined)[] = [];
  const settings = parseSettings({ RUNS_FLEET_STATE_DIR: options.stateDir, ...options.env }).settings;
  const deps: LogShipperDeps = {
    route,
    logs: (region) => (regions.push(region), options.client),
    logger: createLogger({ vault: new SecretVault(), write: () => {} }),
    vault: options.vault,
    options: { flushIntervalMs: 60_000 },
    ...options.deps,
  };
  const answers: { shipped: number; dropped: number }[] = [];
  const waiters: (() => void)[] = [];
  const parent = setup({ actors: { logShipper: logShipper(deps) } }).createMachine({
    invoke: { id: 'logShipper', src: 'logShipper', input: { settings } },
    on: {
      LOGS_FLUSHED: {
        actions: ({ event }: { event: AnyEventObject }) => {
          answers.push({ shipped: event.shipped, dropped: event.dropped });
          for (const w of waiters.splice(0)) w();
        },
      },
    },
  });
  const actor = createActor(parent).start();
  const child = () => actor.getSnapshot().children.logShipper!;
  return {
    route,
    regions,
    settings,
    answers,
    ship(identity: Identity | undefined = { instanceId: 'i-0123456789abcdef0', region: 'eu-west-1' }, jobSpec?: JobSpec) {
      child().send({ type: 'SHIP_LOGS', settings, identity, jobSpec });
    },
    /** FLUSH_LOGS, resolved with the LOGS_FLUSHED it answers (or undefined when none comes within `waitMs`). */
    async flush(timeoutMs: number, diagDir?: string, waitMs = timeoutMs + 2_000) {
      const before = answers.length;
      child().send({ type: 'FLUSH_LOGS', timeoutMs, diagDir });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        waiters.push(() => (clearTimeout(timer), resolve()));
      });
      return answers.length > before ? answers.at(-1) : undefined;
    },
    send(event: AnyEventObject) {
      child().send(event as never);
    },
    stop() {
      actor.stop();
    },
  };
}
