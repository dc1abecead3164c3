import type { SQSClient } from '@aws-sdk/client-sqs';
import { fromPromise } from 'xstate';
import type { TelemetryInput, TelemetryResult } from '../machines/actor-contracts.js';
import type { Logger } from '../services/logger.js';
import type { SecretVault } from '../services/secrets.js';
import { sendTelemetry as send } from '../services/telemetry.js';

/** One telemetry message to the termination queue: redacted, validated, bounded retries; resolves `{ sent: false }` rather than rejecting. */
export function sendTelemetry(deps: { logger: Logger; vault: SecretVault; sqs: (region?: string) => SQSClient }) {
  return fromPromise<TelemetryResult, TelemetryInput>(async ({ input, signal }) =>
    send({
      client: deps.sqs(input.region),
      queueUrl: input.queueUrl,
      message: input.message,
      signal,
      vault: deps.vault,
      logger: deps.logger,
    }),
  );
}
