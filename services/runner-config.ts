/**
 * The runner config the orchestrator writes to SSM (SPEC §2), validated field by field.
 * Error texts name the field and what was expected — never the value, which may be a secret.
 */
import { z } from 'zod';
import { RunnerConfigError } from './errors.js';

const optionalText = z.string().trim().min(1).optional();

export const runnerConfigSchema = z
  .object({
    org: optionalText,
    repo: optionalText,
    is_org: z.boolean().optional(),
    jit_config: optionalText,
    jit_token: optionalText,
    labels: z.array(z.string().min(1)).optional(),
    runner_group: optionalText,
    runner_name: optionalText,
    run_id: z.union([z.string(), z.number()]).transform(String).optional(),
    job_id: z.union([z.string(), z.number()]).transform(String).optional(),
    termination_queue_url: z.url({ protocol: /^https?$/ }).optional(),
    cache_url: z.url({ protocol: /^https?$/ }).optional(),
    cache_token: optionalText,
  })
  .loose();

export type RunnerConfig = z.infer<typeof runnerConfigSchema>;

/** Secret values carried by a runner config, for redaction. */
export function runnerConfigSecrets(config: RunnerConfig | undefined): string[] {
  if (!config) return [];
  return [config.jit_config, config.jit_token, config.cache_token].filter((s): s is string => !!s);
}

/** Parse and validate the parameter's JSON text. Throws RunnerConfigError naming the field. */
export function parseRunnerConfig(text: string, source: string): RunnerConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // JSON.parse's message can quote the text around the fault: keep only its position.
    const position = /position (\d+)/.exec(String((error as Error).message))?.[1];
    throw new RunnerConfigError(
      `runner config ${source} is not valid JSON${position ? ` (syntax error at position ${position})` : ''}`,
    );
  }
  const parsed = runnerConfigSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
      return `${field}: ${issue.code === 'invalid_type' ? `expected ${issue.expected}` : issue.message.replace(/:.*$/, '')}`;
    });
    throw new RunnerConfigError(`runner config ${source} is invalid: ${problems.join('; ')}`);
  }
  const config = parsed.data;
  if (config.jit_config && config.jit_token) {
    throw new RunnerConfigError(`runner config ${source} has both jit_config and jit_token: exactly one is allowed`);
  }
  if (!config.jit_config && !config.jit_token) {
    throw new RunnerConfigError(`runner config ${source} has neither jit_config nor jit_token: exactly one is required`);
  }
  if (config.jit_token && !config.repo && !config.org) {
    throw new RunnerConfigError(`runner config ${source} uses jit_token but names neither org nor repo`);
  }
  return config;
}

/** `config.sh --url` target: the org, or `owner/name` of the repo. */
export function registrationUrl(config: RunnerConfig, githubUrl: string): string {
  if (config.is_org || !config.repo) return `${githubUrl}/${config.org}`;
  const repo = config.repo.includes('/') || !config.org ? config.repo : `${config.org}/${config.repo}`;
  return `${githubUrl}/${repo}`;
}
