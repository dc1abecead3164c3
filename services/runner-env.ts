/**
 * The runner's environment, built from an allow-list: nothing of the agent's own
 * environment reaches the job unless named here. In particular no `AWS_*` (the
 * instance's credentials and endpoints) and no `RUNS_FLEET_*`.
 *
 * From the agent's environment: PATH, LANG, LANGUAGE, LC_*, TZ, and the proxy
 * variables (http_proxy, https_proxy, no_proxy in either case: the runner itself
 * needs them to reach GitHub behind a proxy).
 * From the runner user: HOME, USER, LOGNAME, SHELL.
 * Set by the agent: RUNNER_MANUALLY_TRAP_SIG=1 (run.sh forwards SIGTERM to the
 * listener as SIGINT), RUNNER_ALLOW_RUNASROOT=1 only when the runner user is root,
 * the job hooks, and the cache endpoint.
 *
 * Cache: `cache_url` → `ACTIONS_CACHE_URL`, and `cache_token` → `ACTIONS_RUNTIME_TOKEN`
 * (only together with a URL): the pair @actions/cache (v1 protocol) reads — it sends
 * `Authorization: Bearer $ACTIONS_RUNTIME_TOKEN` to `$ACTIONS_CACHE_URL`. For
 * JavaScript actions the runner sets its own per-step values from the job message,
 * which win; ours are what shell steps and tools that read the environment see.
 *
 * Secrets that only the runner's own startup reads (`ACTIONS_RUNNER_INPUT_JITCONFIG`,
 * `ACTIONS_RUNNER_INPUT_TOKEN`) are added by the caller, and the runner removes every
 * `ACTIONS_RUNNER_INPUT_*` variable before a job runs.
 */
import type { JobSpec } from '../machines/types.js';
import type { JobHookPaths } from './job-hooks.js';
import type { RunnerUser } from './runner-user.js';
import type { Env } from './settings.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Variables copied from the agent's environment when set. */
const PASSED_THROUGH = ['PATH', 'LANG', 'LANGUAGE', 'TZ', 'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'];
const PASSED_THROUGH_PREFIXES = ['LC_'];

export interface RunnerEnvInput {
  /** The agent's environment (only the allow-listed names are read). */
  agentEnv: Env;
  user: Pick<RunnerUser, 'name' | 'home' | 'shell' | 'isRoot'>;
  jobSpec: Pick<JobSpec, 'cacheUrl'>;
  /** From the vault (`cache_token`); used only with `jobSpec.cacheUrl`. */
  cacheToken?: string;
  hooks?: Pick<JobHookPaths, 'started' | 'completed'>;
}

export function buildRunnerEnv(input: RunnerEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.agentEnv)) {
    if (value === undefined) continue;
    if (PASSED_THROUGH.includes(name) || PASSED_THROUGH_PREFIXES.some((p) => name.startsWith(p))) env[name] = value;
  }
  env.PATH ||= DEFAULT_PATH;
  env.HOME = input.user.home || '/';
  env.USER = input.user.name;
  env.LOGNAME = input.user.name;
  if (input.user.shell) env.SHELL = input.user.shell;

  env.RUNNER_MANUALLY_TRAP_SIG = '1';
  if (input.user.isRoot) env.RUNNER_ALLOW_RUNASROOT = '1';

  if (input.hooks) {
    env.ACTIONS_RUNNER_HOOK_JOB_STARTED = input.hooks.started;
    env.ACTIONS_RUNNER_HOOK_JOB_COMPLETED = input.hooks.completed;
  }
  if (input.jobSpec.cacheUrl) {
    env.ACTIONS_CACHE_URL = input.jobSpec.cacheUrl.endsWith('/') ? input.jobSpec.cacheUrl : `${input.jobSpec.cacheUrl}/`;
    if (input.cacheToken) env.ACTIONS_RUNTIME_TOKEN = input.cacheToken;
  }
  return env;
}
