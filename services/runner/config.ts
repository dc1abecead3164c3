/**
 * The runner config the runs-fleet orchestrator writes to SSM (its `pkg/secrets`
 * `RunnerConfig`), in either of its two layouts:
 *
 * - split (current): `…/config` holds every field but the credentials, `…/credential`
 *   holds `{"jit_config"?, "jit_token"?, "compressed"?}`; a compressed `jit_config` is
 *   base64(gzip(base64-decoded JIT config)) because a real JIT config does not fit SSM's
 *   Standard tier (`pkg/secrets/credential.go`);
 * - legacy: one `…/config` parameter with the credentials inline.
 *
 * Go writes zero values: `""`, `null` and `false` mean absent; unknown fields are accepted.
 * Both credentials are the normal case: JIT wins, the registration token is the fallback.
 * Error texts name the parameter and the field and what was expected — never the value.
 */
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { RunnerConfigError } from '../errors.js';

/** What a compressed JIT config may inflate to (the orchestrator's own cap, `credentialMaxDecodedBytes`). */
export const CREDENTIAL_MAX_DECODED_BYTES = 1 << 20;
/** Go's int64: the orchestrator parses `job_id` with strconv.ParseInt(…, 10, 64). */
const INT64_MAX = 2n ** 63n - 1n;

/** Go zero values and JSON null are "absent". */
const blank = (value: unknown) => (value === null || value === '' ? undefined : value);
const text = z.preprocess(blank, z.string().trim().min(1).max(4096).optional());
const secretText = z.preprocess(blank, z.string().min(1).optional());
const flag = z.preprocess((v) => (v === null ? undefined : v), z.boolean().optional());
const url = z.preprocess(blank, z.url({ protocol: /^https?$/ }).optional());
/** Ids go into S3 keys and log stream names: digits only (GitHub's run and job ids). */
const decimalId = z.preprocess(
  (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : blank(v)),
  z
    .string()
    .regex(/^\d{1,19}$/, 'expected a decimal integer')
    .refine((s) => !/^\d+$/.test(s) || BigInt(s) <= INT64_MAX, 'expected a decimal integer that fits in 64 bits')
    .optional(),
);
const rfc3339 = z.preprocess(blank, z.string().optional());

export const runnerConfigSchema = z
  .object({
    org: text,
    repo: text,
    is_org: flag,
    run_id: decimalId,
    job_id: decimalId,
    jit_config: secretText,
    jit_token: secretText,
    labels: z.preprocess((v) => (v === null ? undefined : v), z.array(z.string().min(1).max(256)).max(100).optional()),
    runner_group: text,
    runner_name: text,
    cache_url: url,
    cache_token: secretText,
    termination_queue_url: url,
    created_at: rfc3339,
    buildkit_cache_bucket: text,
    buildkit_cache_region: text,
    buildkit_cache_prefix: text,
    runner_logs_bucket: text,
    runner_logs_prefix: text,
  })
  .loose();

export type RunnerConfig = z.infer<typeof runnerConfigSchema>;

const credentialSchema = z
  .object({
    jit_config: secretText,
    jit_token: secretText,
    compressed: flag,
  })
  .loose();

export type StoredCredential = z.infer<typeof credentialSchema>;

/** Secret values carried by a runner config, for redaction. */
export function runnerConfigSecrets(config: RunnerConfig | undefined): string[] {
  if (!config) return [];
  return [config.jit_config, config.jit_token, config.cache_token].filter((s): s is string => !!s);
}

/** JSON text → object, or an error that quotes only the position of the fault (the text may hold a secret). */
function parseJson(textValue: string, what: string): unknown {
  try {
    return JSON.parse(textValue);
  } catch (error) {
    const position = /position (\d+)/.exec(String((error as Error).message))?.[1];
    throw new RunnerConfigError(`${what} is not valid JSON${position ? ` (syntax error at position ${position})` : ''}`);
  }
}

function problems(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
      const expected = issue.code === 'invalid_type' ? `expected ${issue.expected}` : issue.message.replace(/:.*$/, '');
      return `${field}: ${expected}`;
    })
    .join('; ');
}

/**
 * The credential parameter's value, restored to the exact original JIT config: a
 * compressed `jit_config` is base64 → gunzip (capped) → base64 again.
 */
export function unpackCredential(value: string, source: string): { jitConfig?: string; jitToken?: string; packed?: string } {
  const json = parseJson(value, `runner credential ${source}`);
  const parsed = credentialSchema.safeParse(json);
  if (!parsed.success) throw new RunnerConfigError(`runner credential ${source} is invalid: ${problems(parsed.error)}`);
  const { jit_config: stored, jit_token: jitToken, compressed } = parsed.data;
  if (!stored || !compressed) return { jitConfig: stored, jitToken };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(stored) || stored.length % 4 !== 0) {
    throw new RunnerConfigError(`runner credential ${source} is invalid: jit_config: compressed but not base64`);
  }
  let raw: Buffer;
  try {
    raw = gunzipSync(Buffer.from(stored, 'base64'), { maxOutputLength: CREDENTIAL_MAX_DECODED_BYTES });
  } catch (error) {
    const tooBig = (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError;
    throw new RunnerConfigError(
      tooBig
        ? `runner credential ${source} is invalid: jit_config inflates to more than ${CREDENTIAL_MAX_DECODED_BYTES} bytes`
        : `runner credential ${source} is invalid: jit_config is marked compressed but is not gzip data`,
    );
  }
  return { jitConfig: raw.toString('base64'), jitToken, packed: stored };
}

export interface AssembledConfig {
  config: RunnerConfig;
  layout: 'split' | 'legacy';
  /** Further secret forms to redact (the packed JIT config as stored in SSM). */
  extraSecrets: string[];
}

/**
 * The runner config from its parameters: `configText` (…/config) and `credentialText`
 * (…/credential; undefined = legacy layout). Throws RunnerConfigError naming the field.
 */
export function assembleRunnerConfig(configText: string, credentialText: string | undefined, names: { config: string; credential: string }): AssembledConfig {
  const json = parseJson(configText, `runner config ${names.config}`);
  const parsed = runnerConfigSchema.safeParse(json);
  if (!parsed.success) throw new RunnerConfigError(`runner config ${names.config} is invalid: ${problems(parsed.error)}`);
  const config: RunnerConfig = { ...parsed.data };
  const extraSecrets: string[] = [];
  let layout: AssembledConfig['layout'] = 'legacy';
  if (credentialText !== undefined) {
    // As the orchestrator's unpackCredential: the credential parameter's values replace the inline ones.
    const credential = unpackCredential(credentialText, names.credential);
    config.jit_config = credential.jitConfig;
    config.jit_token = credential.jitToken;
    if (credential.packed) extraSecrets.push(credential.packed);
    layout = 'split';
  }
  validateRunnerConfig(config, layout === 'split' ? `${names.config} (+ ${names.credential})` : names.config);
  return { config, layout, extraSecrets };
}

/** What a usable config needs beyond its types. */
function validateRunnerConfig(config: RunnerConfig, source: string): void {
  if (!config.jit_config && !config.jit_token) {
    throw new RunnerConfigError(`runner config ${source} has no credential: neither jit_config nor jit_token is set`);
  }
  if (!config.job_id) {
    // Without it no message but bootstrap_failed decodes on the orchestrator's side: the job could never be confirmed.
    throw new RunnerConfigError(`runner config ${source} is invalid: job_id: required (a decimal integer)`);
  }
  if (!config.jit_config && !config.repo && !config.org) {
    throw new RunnerConfigError(`runner config ${source} uses jit_token but names neither org nor repo`);
  }
}

/** Legacy single-parameter parse (the config with its credentials inline). */
export function parseRunnerConfig(configText: string, source: string): RunnerConfig {
  return assembleRunnerConfig(configText, undefined, { config: source, credential: `${source}/credential` }).config;
}

/**
 * The termination queue named by a config text that may be otherwise unusable: so that a
 * config failing validation can still be reported to the orchestrator.
 */
export function salvageQueueUrl(configText: string): string | undefined {
  try {
    const value = (JSON.parse(configText) as { termination_queue_url?: unknown })?.termination_queue_url;
    return url.safeParse(value).data;
  } catch {
    return undefined;
  }
}

/** `config.sh --url` target: the org, or `owner/name` of the repo. */
export function registrationUrl(config: Pick<RunnerConfig, 'org' | 'repo' | 'is_org'>, githubUrl: string): string {
  if (config.is_org || !config.repo) return `${githubUrl}/${config.org}`;
  const repo = config.repo.includes('/') || !config.org ? config.repo : `${config.org}/${config.repo}`;
  return `${githubUrl}/${repo}`;
}
