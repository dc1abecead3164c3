import type { SQSClient } from '@aws-sdk/client-sqs';
import type { ClientFactory } from '../services/aws/clients.js';
import { fromPromise } from 'xstate';
import type { TelemetryInput, TelemetryResult } from '../machines/actor-contracts.js';
import type { JobIdentity } from '../services/runner/job-hooks.js';
import type { Logger } from '../services/logs/logger.js';
import type { SecretVault } from '../services/secrets.js';

export interface SendTelemetryDeps {
  logger: Logger;
  vault: SecretVault;
  sqs: ClientFactory<SQSClient>;
  /** What the job hooks recorded in the state dir, if they ran (services/runner/job-hooks.ts readJobIdentity). */
  jobIdentity?: (stateDir: string) => Promise<JobIdentity | undefined>;
}

/**
 * One attempt at one telemetry message to the termination queue: redacted, validated, sent
 * within the input's timeout; a failure rejects, classified (the chart retries). A final message carries the job's own
 * identity when the hooks recorded it (output parsing stays the primary signal).
 */
export function sendTelemetry(deps: SendTelemetryDeps) {
  return fromPromise<TelemetryResult, TelemetryInput>(async ({ input, signal }) => {
    let message = input.message;
    if (message.status !== 'started' && deps.jobIdentity && input.stateDir) {
      const identity = await deps.jobIdentity(input.stateDir).catch(() => undefined);
      if (identity) message = withJobIdentity(message, identity);
    }
    const { sendTelemetry: send } = await import('../services/aws/telemetry.js'); // loaded when the first message goes out
    return send({ client: await deps.sqs(input.region), queueUrl: input.queueUrl, message, signal, vault: deps.vault, logger: deps.logger, timeoutMs: input.timeoutMs });
  });
}

export function withJobIdentity(message: TelemetryInput['message'], identity: JobIdentity): TelemetryInput['message'] {
  const github = Object.fromEntries(
    Object.entries({
      run_id: identity.runId,
      run_attempt: identity.runAttempt,
      job: identity.job,
      repository: identity.repository,
      workflow: identity.workflow,
    }).filter(([, v]) => typeof v === 'string' && v !== ''),
  );
  if (Object.keys(github).length === 0) return message;
  // The hooks run as the job: their run id is taken only when it is what GitHub's are, a decimal.
  const hookRunId = identity.runId && /^\d{1,19}$/.test(identity.runId) ? identity.runId : undefined;
  return { ...message, run_id: message.run_id ?? hookRunId ?? null, github };
}
