import type { SSMClient } from '@aws-sdk/client-ssm';
import { fromPromise } from 'xstate';
import type { RunnerConfigInput } from '../machines/actor-contracts.js';
import type { JobSpec } from '../machines/types.js';
import type { ClientFactory } from '../services/aws-clients.js';
import type { Logger } from '../services/logger.js';
import type { SecretVault } from '../services/secrets.js';
import { ssmParameterName } from '../services/settings.js';
import { SsmConfigStore } from '../services/ssm-config.js';

/** Read, validate and delete the runner config; its secrets go to the vault, never to the context. */
export function readRunnerConfig(deps: { ssm: ClientFactory<SSMClient>; vault: SecretVault; logger: Logger }) {
  return fromPromise<JobSpec, RunnerConfigInput>(async ({ input, signal }) => {
    const name = ssmParameterName(input.settings, input.identity.instanceId);
    const store = new SsmConfigStore(await deps.ssm(input.identity.region), deps.vault, (message) => deps.logger.warn(message));
    const spec = await store.take(name, { signal });
    deps.logger.info({ parameter: name, mode: spec.mode, run_id: spec.runId, job_id: spec.jobId }, 'runner config read and deleted');
    return spec;
  });
}
