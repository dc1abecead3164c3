/**
 * The runner config in SSM: read as a decrypted SecureString, validated, deleted,
 * and split into the public JobSpec (for the machine's context) and the secrets
 * (for the vault only).
 */
import { DeleteParameterCommand, GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { JobSpec } from '../machines/types.js';
import { RunnerConfigError, isRetriableAwsError } from './errors.js';
import { backoffMs, sleep } from './log-async.js';
import { parseRunnerConfig } from './runner-config.js';
import type { SecretVault } from './secrets.js';

export interface SsmConfigOptions {
  attempts?: number;
  backoffMs?: (attempt: number) => number;
  signal?: AbortSignal;
}

export class SsmConfigStore {
  constructor(
    private readonly client: SSMClient,
    private readonly vault: SecretVault,
    private readonly warn: (message: string) => void = () => {},
  ) {}

  /** Read, validate and delete `name`. Throttling/5xx retried; ParameterNotFound is terminal. */
  async take(name: string, options: SsmConfigOptions = {}): Promise<JobSpec> {
    const attempts = options.attempts ?? 3;
    const backoff = options.backoffMs ?? ((n: number) => backoffMs(n, 1_000, 4_000));
    let text: string | undefined;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const out = await this.client.send(new GetParameterCommand({ Name: name, WithDecryption: true }), {
          abortSignal: options.signal,
        });
        text = out.Parameter?.Value;
        break;
      } catch (error) {
        const name_ = (error as { name?: string }).name;
        if (name_ === 'ParameterNotFound') {
          throw new RunnerConfigError(`runner config parameter ${name} not found in SSM (ParameterNotFound)`, { cause: error });
        }
        if (attempt >= attempts || !isRetriableAwsError(error) || options.signal?.aborted) {
          throw new RunnerConfigError(`could not read runner config parameter ${name} from SSM: ${name_ ?? ''} ${(error as Error).message}`.replace(/\s+/g, ' '), {
            cause: error,
            retriable: isRetriableAwsError(error),
          });
        }
        // Ends early on abort; the next send then fails at once and the check above throws.
        await sleep(backoff(attempt), options.signal);
      }
    }
    if (text === undefined) throw new RunnerConfigError(`runner config parameter ${name} has no value`);
    const config = parseRunnerConfig(text, name);
    this.vault.set('jit_config', config.jit_config);
    this.vault.set('jit_token', config.jit_token);
    this.vault.set('cache_token', config.cache_token);
    // Deleted so that the job cannot read its own runner's credentials. A failure is logged
    // but does not stop the job: the credentials are single-use and the instance role's
    // policy should not let the job read the path anyway (docs/iam-policy.json).
    try {
      await this.client.send(new DeleteParameterCommand({ Name: name }), { abortSignal: options.signal });
    } catch (error) {
      this.warn(`could not delete runner config parameter ${name}: ${(error as Error).name} ${(error as Error).message}`);
    }
    return {
      parameterName: name,
      mode: config.jit_config ? 'jit' : 'token',
      org: config.org,
      repo: config.repo,
      isOrg: config.is_org ?? false,
      labels: config.labels ?? [],
      runnerGroup: config.runner_group,
      runnerName: config.runner_name,
      runId: config.run_id,
      jobId: config.job_id,
      queueUrl: config.termination_queue_url,
      cacheUrl: config.cache_url,
    };
  }
}
