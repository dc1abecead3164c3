/**
 * reporting: the runner's `_diag` logs to the config's runner-logs bucket, as the
 * orchestrator reads them (services/logs/runner-logs.ts). Resolves the outcome; never rejects
 * for a failed upload (a denied PutObject is a `failed` outcome and a warning).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { fromPromise } from 'xstate';
import type { RunnerLogsInput } from '../machines/actor-contracts.js';
import type { LogUploadOutcome } from '../machines/types.js';
import type { ClientFactory } from '../services/aws/clients.js';
import type { Logger } from '../services/logs/logger.js';

export function uploadRunnerLogs(deps: { logger: Logger; s3: ClientFactory<S3Client> }) {
  return fromPromise<LogUploadOutcome, RunnerLogsInput>(async ({ input, signal }) => {
    const logs = input.jobSpec?.runnerLogs;
    if (!logs) return 'disabled';
    if (!input.instanceId) return 'failed';
    if (input.budgetMs <= 0) {
      deps.logger.warn('no time left to upload the runner logs (spot notice)');
      return 'skipped';
    }
    const { uploadRunnerLogs: upload } = await import('../services/logs/runner-logs.js');
    return upload({
      client: await deps.s3(input.region),
      target: { bucket: logs.bucket, prefix: logs.prefix, runId: input.jobSpec?.runId, jobId: input.jobSpec?.jobId, instanceId: input.instanceId, repo: input.jobSpec?.repo },
      runnerDir: input.settings.runnerDir,
      budgetMs: input.budgetMs,
      signal,
      log: deps.logger,
    });
  });
}
