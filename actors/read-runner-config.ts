import type { SSMClient } from '@aws-sdk/client-ssm';
import { fromPromise } from 'xstate';
import type { RunnerConfigInput } from '../machines/actor-contracts.js';
import type { JobSpec } from '../machines/types.js';
import type { ClientFactory } from '../services/aws/clients.js';
import type { Logger } from '../services/logs/logger.js';
import type { SecretVault } from '../services/secrets.js';
import { credentialParameterName, ssmParameterName } from '../services/settings.js';
import { SsmConfigStore } from '../services/aws/ssm-config.js';

/**
 * One poll for the runner config (…/config and its …/credential). Found: validated, both
 * parameters deleted, secrets in the vault, never in the context. Not there yet, SSM failing,
 * or unusable: rejects with the classified error (services/aws/ssm-config.ts); the chart decides.
 */
export function readRunnerConfig(deps: { ssm: ClientFactory<SSMClient>; vault: SecretVault; logger: Logger }) {
  return fromPromise<JobSpec, RunnerConfigInput>(async ({ input, signal }) => {
    const config = ssmParameterName(input.settings, input.identity.instanceId);
    const names = { config, credential: credentialParameterName(config) };
    const store = new SsmConfigStore(await deps.ssm(input.identity.region), deps.vault, deps.logger);
    const spec = await store.poll(names, { signal, timeoutMs: input.settings.ssmTimeoutMs });
    deps.logger.info({ parameter: config, layout: spec.layout, mode: spec.mode, run_id: spec.runId, job_id: spec.jobId }, 'runner config read and deleted');
    return spec;
  });
}
