/**
 * The runner's environment. The job sees the operator's variables — what the unit sets for
 * it (the runs-fleet AMI's unit: AGENT_TOOLSDIRECTORY, PIPX_HOME, PIPX_BIN_DIR, PATH; proxies,
 * locale) — and never the agent's own or a secret. From the agent's environment every
 * variable passes except:
 * - the agent's own and its credentials: `AWS_*`, `RUNS_FLEET_*`, `VAULT_*`, `NODE_OPTIONS`
 *   (the agent's V8 flags would slow the job's node), and the glibc tunables the unit sets for
 *   the agent's footprint (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`);
 * - what the runner takes as input or the agent sets itself: `ACTIONS_RUNNER_INPUT_*`,
 *   `ACTIONS_RUNNER_HOOK_*`, `RUNNER_ALLOW_RUNASROOT`, `RUNNER_MANUALLY_TRAP_SIG`,
 *   `ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE`,
 *   `ACTIONS_CACHE_URL`, `ACTIONS_RUNTIME_TOKEN`;
 * - the agent's identity and its service: HOME, USER, LOGNAME, SHELL, MAIL, `SUDO_*`, and what
 *   systemd sets for a unit (INVOCATION_ID, JOURNAL_STREAM, NOTIFY_SOCKET, `LISTEN_*`,
 *   `WATCHDOG_*`, CREDENTIALS_DIRECTORY, the `*_DIRECTORY` paths, MANAGERPID, …);
 * - loader injection: LD_PRELOAD, LD_AUDIT;
 * - any variable whose value holds a secret the agent knows (JIT config, tokens).
 * From the runner user: HOME, USER, LOGNAME, SHELL.
 * Set by the agent: RUNNER_MANUALLY_TRAP_SIG=1 (run.sh forwards SIGTERM to the listener
 * as SIGINT), ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1 (a version GitHub refuses
 * makes run.sh exit 7, v2.333.0+, instead of 0), RUNNER_ALLOW_RUNASROOT=1 only when the runner user is root, the job hooks,
 * and the cache endpoint.
 *
 * Cache: `cache_url` → `ACTIONS_CACHE_URL`, and `cache_token` → `ACTIONS_RUNTIME_TOKEN`
 * (only together with a URL): the pair @actions/cache (v1 protocol) reads — it sends
 * `Authorization: Bearer $ACTIONS_RUNTIME_TOKEN` to `$ACTIONS_CACHE_URL`. For
 * JavaScript actions the runner sets its own per-step values from the job message,
 * which win; ours are what shell steps and tools that read the environment see.
 *
 * The registration token that only config.sh reads (`ACTIONS_RUNNER_INPUT_TOKEN`) is added by
 * the caller; the JIT config is never in an environment (registering writes its files, jit-files.ts).
 */
import type { JobSpec } from '../domain.js';
import type { JobHookPaths } from './job-hooks.js';
import type { RunnerUser } from './user.js';
import type { SecretVault } from '../secrets.js';
import type { Env } from '../settings.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Never passed from the agent's environment to the job (see the module comment). */
const WITHHELD_PREFIXES = ['AWS_', 'RUNS_FLEET_', 'VAULT_', 'ACTIONS_RUNNER_INPUT_', 'ACTIONS_RUNNER_HOOK_', 'SUDO_', 'LISTEN_', 'WATCHDOG_', 'SYSTEMD_', 'TRIGGER_'];
const WITHHELD = new Set([
  'NODE_OPTIONS',
  'MALLOC_TRIM_THRESHOLD_',
  'MALLOC_MMAP_THRESHOLD_',
  'RUNNER_ALLOW_RUNASROOT',
  'RUNNER_MANUALLY_TRAP_SIG',
  'ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE',
  'ACTIONS_CACHE_URL',
  'ACTIONS_RUNTIME_TOKEN',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'MAIL',
  'INVOCATION_ID',
  'JOURNAL_STREAM',
  'NOTIFY_SOCKET',
  'MANAGERPID',
  'MAINPID',
  'CREDENTIALS_DIRECTORY',
  'RUNTIME_DIRECTORY',
  'STATE_DIRECTORY',
  'CACHE_DIRECTORY',
  'LOGS_DIRECTORY',
  'CONFIGURATION_DIRECTORY',
  'MEMORY_PRESSURE_WATCH',
  'MEMORY_PRESSURE_WRITE',
  'LD_PRELOAD',
  'LD_AUDIT',
]);

/** Whether a variable of the agent's environment may reach the job (by its name). */
export function passesToJob(name: string): boolean {
  return !WITHHELD.has(name) && !WITHHELD_PREFIXES.some((p) => name.startsWith(p));
}

export interface RunnerEnvInput {
  /** The agent's environment (only the allow-listed names are read). */
  agentEnv: Env;
  user: Pick<RunnerUser, 'name' | 'home' | 'shell' | 'isRoot'>;
  jobSpec: Pick<JobSpec, 'cacheUrl'>;
  /** From the vault (`cache_token`); used only with `jobSpec.cacheUrl`. */
  cacheToken?: string;
  hooks?: Pick<JobHookPaths, 'started' | 'completed'>;
  /** Values holding one of its secrets are withheld. */
  vault?: Pick<SecretVault, 'list'>;
}

export function buildRunnerEnv(input: RunnerEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  const secrets = input.vault?.list() ?? [];
  for (const [name, value] of Object.entries(input.agentEnv)) {
    if (value === undefined || !passesToJob(name)) continue;
    if (secrets.some((secret) => value.includes(secret))) continue;
    env[name] = value;
  }
  env.PATH ||= DEFAULT_PATH;
  env.HOME = input.user.home || '/';
  env.USER = input.user.name;
  env.LOGNAME = input.user.name;
  if (input.user.shell) env.SHELL = input.user.shell;

  env.RUNNER_MANUALLY_TRAP_SIG = '1';
  env.ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE = '1';
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
