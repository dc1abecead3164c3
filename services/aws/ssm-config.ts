/**
 * The runner config in SSM, read the way the orchestrator writes it (pkg/secrets/ssm.go):
 * `…/config`, then `…/credential` beside it (absent = the legacy layout, credentials
 * inline). One call of `poll` is one attempt; the machine's standby loop decides when to
 * try again. Every SSM call has its own timeout, so a hanging SSM is a failed poll.
 *
 * Outcomes of a poll:
 * - the config: validated, both parameters deleted, secrets in the vault, the public part returned;
 * - ConfigNotFoundError: not written yet (or its credential is not there yet) — poll again;
 * - ConfigReadError: SSM failed (throttling, 5xx, network, timeout, access) — poll again, logged;
 * - RunnerConfigError: written but unusable — report it; both parameters are still deleted.
 */
import { DeleteParameterCommand, GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { JobSpec } from '../domain.js';
import { RunnerConfigError, isRetriableAwsError, AgentError } from '../errors.js';
import { raceAbort } from '../retry.js';
import { assembleRunnerConfig, salvageQueueUrl } from '../runner/config.js';
import type { SecretVault } from '../secrets.js';

/** The config is not there yet. */
export class ConfigNotFoundError extends AgentError {
  readonly kind = 'not-found' as const;
  constructor(message: string) {
    super(message, { retriable: true });
  }
}

/** SSM could not be read this time. `throttled`: the account's GetParameter rate is exhausted. */
export class ConfigReadError extends AgentError {
  readonly kind = 'read-error' as const;
  readonly throttled: boolean;
  constructor(message: string, options: { cause?: unknown; throttled: boolean }) {
    super(message, { cause: options.cause, retriable: true });
    this.throttled = options.throttled;
  }
}

/** A config that was written but cannot be used; `queueUrl` is where it can still be reported. */
export class UnusableConfigError extends RunnerConfigError {
  readonly kind = 'unusable' as const;
  constructor(
    message: string,
    readonly queueUrl?: string,
  ) {
    super(message, { retriable: false });
  }
}

export interface ParameterNames {
  config: string;
  credential: string;
}

export interface PollOptions {
  signal?: AbortSignal;
  /** Per SSM call (default 10 s). */
  timeoutMs?: number;
}

export interface ConfigLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const isThrottling = (error: unknown) =>
  /Throttl|TooManyUpdates|RateExceeded|TooManyRequests/i.test(`${(error as { name?: string })?.name ?? ''}`) ||
  (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 429;

export class SsmConfigStore {
  constructor(
    private readonly client: SSMClient,
    private readonly vault: SecretVault,
    private readonly log: ConfigLog = { info: () => {}, warn: () => {} },
  ) {}

  /** One SSM call, bounded by its own timeout and the caller's signal. Resolves undefined on ParameterNotFound. */
  private async get(name: string, options: PollOptions): Promise<string | undefined> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options.signal ? [options.signal] : [])]);
    try {
      const out = await raceAbort(this.client.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal: signal }), signal);
      const value = out.Parameter?.Value;
      if (value === undefined) throw new ConfigReadError(`SSM returned parameter ${name} without a value`, { throttled: false });
      return value;
    } catch (error) {
      if (error instanceof ConfigReadError) throw error;
      const errorName = (error as { name?: string })?.name ?? 'Error';
      if (errorName === 'ParameterNotFound') return undefined;
      const timedOut = !options.signal?.aborted && signal.aborted;
      const why = timedOut ? `no answer within ${timeoutMs} ms` : `${errorName}: ${(error as Error)?.message ?? String(error)}`;
      throw new ConfigReadError(`could not read ${name} from SSM (${why})`.replace(/\s+/g, ' '), {
        cause: error,
        throttled: isThrottling(error),
      });
    }
  }

  /** One attempt at the config: see the module comment for its outcomes. */
  async poll(names: ParameterNames, options: PollOptions = {}): Promise<JobSpec> {
    const configText = await this.get(names.config, options);
    if (configText === undefined) throw new ConfigNotFoundError(`runner config ${names.config} is not in SSM yet`);
    // The orchestrator writes the credential first, so when the config is there its credential is too
    // (or this is the legacy layout, with the credentials inline).
    const credentialText = await this.get(names.credential, options);

    let assembled;
    try {
      assembled = assembleRunnerConfig(configText, credentialText, names);
    } catch (error) {
      const legacyWithoutCredential = credentialText === undefined && /has no credential/.test((error as Error).message);
      if (legacyWithoutCredential) {
        // As the orchestrator's own store: config without any credential reads as "not there yet".
        throw new ConfigNotFoundError(`runner config ${names.config} is there but its credential ${names.credential} is not (yet)`);
      }
      // Unusable, but it may hold secrets: delete it anyway, so no job can read it later.
      await this.deleteBoth(names, options);
      // Only our own messages, which name fields and never values, leave this function.
      const message = error instanceof RunnerConfigError ? error.message : `runner config ${names.config} could not be parsed`;
      throw new UnusableConfigError(message, salvageQueueUrl(configText));
    }
    const { config, layout, extraSecrets } = assembled;
    this.vault.set('jit_config', config.jit_config);
    this.vault.set('jit_token', config.jit_token);
    this.vault.set('cache_token', config.cache_token);
    extraSecrets.forEach((secret, i) => this.vault.set(`packed_credential_${i}`, secret));
    await this.deleteBoth(names, options);

    return {
      parameterName: names.config,
      layout,
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
      createdAt: config.created_at,
      buildkitCache: config.buildkit_cache_bucket
        ? { bucket: config.buildkit_cache_bucket, region: config.buildkit_cache_region, prefix: config.buildkit_cache_prefix }
        : undefined,
      runnerLogs: config.runner_logs_bucket ? { bucket: config.runner_logs_bucket, prefix: config.runner_logs_prefix } : undefined,
    };
  }

  /**
   * Deleted so that the job cannot read its own runner's credentials. Config first, then the
   * credential, as the orchestrator's Delete. Not-found and AccessDenied (the orchestrator's example
   * role grants no ssm:DeleteParameter) are warnings: the orchestrator deletes both when the job ends.
   */
  private async deleteBoth(names: ParameterNames, options: PollOptions): Promise<void> {
    for (const name of [names.config, names.credential]) {
      const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 10_000), ...(options.signal ? [options.signal] : [])]);
      try {
        await raceAbort(this.client.send(new DeleteParameterCommand({ Name: name }), { abortSignal: signal }), signal);
      } catch (error) {
        const errorName = (error as { name?: string })?.name ?? 'Error';
        if (errorName === 'ParameterNotFound') continue;
        const denied = /AccessDenied|UnauthorizedOperation/i.test(errorName);
        this.log.warn(
          { parameter: name, err: `${errorName}: ${(error as Error)?.message ?? ''}`.trim(), retriable: isRetriableAwsError(error) },
          denied
            ? `could not delete ${name}: the instance role may not delete it (the orchestrator deletes it when the job ends)`
            : `could not delete ${name}`,
        );
      }
    }
  }
}
