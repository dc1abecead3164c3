/**
 * Registering: prepare the runner's identity before `run.sh` starts.
 *
 * Both modes: resolve the runner user, install the job hooks, give the runner dir to
 * the runner user (when the agent is root and switches user).
 * - JIT mode (`jit_config`): nothing to run — the config's files (`.runner`, `.credentials`,
 *   `.credentials_rsaparams`) are decoded into the runner root as the listener would
 *   (jit-files.ts), and run.sh starts configured, the config kept out of its environment.
 * - Token mode (`jit_token`): `config.sh --unattended --url ... --name ... --labels ...
 *   --runnergroup ... --work _work --ephemeral --disableupdate --replace` as the runner
 *   user. The token goes in the environment as `ACTIONS_RUNNER_INPUT_TOKEN` (the runner
 *   reads every `--X` option from `ACTIONS_RUNNER_INPUT_X`), never on the command line
 *   where `ps` shows it.
 */
import { execa } from 'execa';
import { access } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { InstalledRunner, JobSpec } from '../domain.js';
import { RegistrationError } from '../errors.js';
import { hooksUsableBy, installJobHooks, type JobHookPaths } from './job-hooks.js';
import { decodeJitConfig, writeJitFiles } from './jit-files.js';
import { killSession } from './process.js';
import { registrationUrl } from './config.js';
import { buildRunnerEnv } from './env.js';
import { commandAs, prepareRunnerDir, type RunnerUser, type RunnerUserDeps } from './user.js';
import type { SecretVault } from '../secrets.js';
import type { Env, Settings } from '../settings.js';

/** How many of config.sh's last output lines a failure quotes. */
export const ERROR_TAIL_LINES = 12;

export interface RegistrationDeps {
  logger: Logger;
  vault: SecretVault;
  /** The agent's environment, for the runner env allow-list (default `process.env`). */
  env?: Env;
  user?: RunnerUserDeps;
  /** Called with config.sh's pid (= its session id): the reaper watches that session. */
  onSpawn?: (pid: number) => void;
}

/** The runner's name: the config's `runner_name`, else `runs-fleet-{instance id or host name}`. */
export function runnerName(jobSpec: Pick<JobSpec, 'runnerName'>, settings: Pick<Settings, 'instanceId'>): string {
  return jobSpec.runnerName ?? `runs-fleet-${settings.instanceId ?? hostname()}`;
}

/** `config.sh` arguments for token mode (no secret among them). */
export function configArgs(jobSpec: JobSpec, settings: Pick<Settings, 'githubUrl' | 'instanceId'>): string[] {
  if (!jobSpec.org && !jobSpec.repo) throw new RegistrationError('registration-token mode needs org or repo in the runner config');
  const url = registrationUrl({ org: jobSpec.org, repo: jobSpec.repo, is_org: jobSpec.isOrg }, settings.githubUrl);
  const args = ['--unattended', '--url', url, '--name', runnerName(jobSpec, settings)];
  if (jobSpec.labels.length > 0) args.push('--labels', jobSpec.labels.join(','));
  if (jobSpec.runnerGroup) args.push('--runnergroup', jobSpec.runnerGroup);
  args.push('--work', '_work', '--ephemeral', '--disableupdate', '--replace');
  return args;
}

/** The last non-empty lines of a process's output, redacted. */
function tail(output: string, vault: SecretVault, lines = ERROR_TAIL_LINES): string {
  return vault
    .redact(output)
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-lines)
    .join('\n');
}

/** What registering needs: the settings, the config's public part, the installed runner, the runner user (resolved once, before). */
export interface RegisterInput { settings: Settings; jobSpec: JobSpec; runner: InstalledRunner; user: RunnerUser }
/** The job hooks as installed, when the runner user can run them (else the job runs without). */
export interface RegistrationResult { hooks?: JobHookPaths }

export async function registerRunnerService(input: RegisterInput, deps: RegistrationDeps, signal?: AbortSignal): Promise<RegistrationResult> {
  const { settings, jobSpec, runner, user } = input;
  const log = deps.logger.child({ component: 'registration' });

  let hooks;
  try {
    hooks = await installJobHooks(settings.stateDir, user.switchUser ? user : undefined);
  } catch (error) {
    throw new RegistrationError(`cannot install the job hooks in ${settings.stateDir}: ${(error as Error).message}`, { cause: error });
  }
  const usable = await hooksUsableBy(hooks, user);
  if (!usable) {
    log.warn({ stateDir: settings.stateDir, user: user.name }, 'the runner user cannot reach the job hooks (a parent dir is closed to them): the job runs without hooks');
  }
  const registered: RegistrationResult = usable ? { hooks } : {};
  await prepareRunnerDir(runner.dir, user);

  if (jobSpec.mode === 'jit') {
    const jit = deps.vault.get('jit_config');
    if (!jit) throw new RegistrationError('JIT mode but no JIT config in the vault');
    const files = decodeJitConfig(jit);
    try {
      const names = await writeJitFiles(runner.dir, files, user.switchUser ? user : undefined);
      log.info({ files: names }, 'JIT mode: the config decoded into the runner root (run.sh starts configured, the config not in its environment)');
    } catch (error) {
      throw new RegistrationError(`cannot write the JIT config's files into ${runner.dir}: ${(error as Error).message}`, { cause: error });
    }
    return registered;
  }

  const token = deps.vault.get('jit_token');
  if (!token) throw new RegistrationError('registration-token mode but no registration token in the vault');
  const configSh = join(runner.dir, 'config.sh');
  try {
    await access(configSh);
  } catch (error) {
    throw new RegistrationError(`${configSh} is missing: the runner dir is not an actions/runner install`, { cause: error });
  }

  const args = configArgs(jobSpec, settings);
  const env = {
    ...buildRunnerEnv({ agentEnv: deps.env ?? process.env, user, jobSpec, vault: deps.vault }),
    ACTIONS_RUNNER_INPUT_TOKEN: token,
  };
  const command = commandAs(user, configSh, args);
  log.info({ args }, 'registering the runner with config.sh');
  const startedAt = Date.now();
  const subprocess = execa(command.file, command.args, {
    cwd: runner.dir,
    detached: true, // own process group: a cancel reaches the listener config.sh starts
    cleanup: false,
    env,
    extendEnv: false,
    uid: command.uid,
    gid: command.gid,
    stdin: 'ignore',
    all: true,
    reject: false,
    // No timeout here: the chart's registerDeadline ends the state, which aborts `signal`.
    cancelSignal: signal,
    forceKillAfterDelay: 2_000,
    maxBuffer: 1024 * 1024,
  });
  const pid = subprocess.pid;
  if (pid !== undefined) deps.onSpawn?.(pid);
  const onAbort = () => {
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const result = await subprocess;
  signal?.removeEventListener('abort', onAbort);
  if (pid !== undefined) killSession(pid); // nothing config.sh started may outlive it
  const output = typeof result.all === 'string' ? result.all : '';
  for (const line of output.split(/\r?\n/)) if (line.trim()) log.debug({ line: deps.vault.redact(line) }, 'config.sh');

  if (result.failed) {
    const why = result.isCanceled
      ? 'was cancelled'
      : result.exitCode !== undefined
          ? `exited with code ${result.exitCode}`
          : result.signal
            ? `was killed by ${result.signal}`
            : `could not start (${deps.vault.redact(result.shortMessage ?? 'unknown error')})`;
    const last = tail(output, deps.vault);
    throw new RegistrationError(`config.sh ${why}${last ? `:\n${last}` : ''}`, { retriable: false });
  }
  log.info({ durationMs: Date.now() - startedAt }, 'runner registered');
  return registered;
}
