/**
 * What must not outlive the job on disk: the runner's registration and credentials, its work
 * dir, and the agent's state files. Each removal is attempted even when another fails; the
 * errors are returned, not thrown, so termination goes on.
 *
 * The job owned `_work`, the credentials files and the hooks' job dir: whatever it planted there
 * (a symlink swapped in mid-walk, a renameat2 exchange) must not steer a removal done as root.
 * So those are removed **as the runner user** (`setpriv … rm -rf --one-file-system`): it can
 * delete only what the runner user could delete anyway. Root then removes the rest of the
 * state dir, which holds nothing of the job's any more. By then every process of the job is
 * dead (the runner's cgroup was killed when draining ended).
 */
import { execa } from 'execa';
import { readdir, rm, rmdir } from 'node:fs/promises';
import { killProcessesOfUid } from './job-cgroup.js';
import { join } from 'node:path';
import { JOB_SUBDIR } from './job-hooks.js';
import { RUNNER_CONFIG_FILE } from './jit-files.js';
import { commandAs, type RunnerUser } from './user.js';

/** The runner's registration and credentials (and what the listener writes on an auth migration, HostContext.cs). */
export const RUNNER_SECRET_FILES = ['.runner', '.credentials', '.credentials_rsaparams', '.runner_migrated', '.credentials_migrated', '.env.jit'];

/** Paths the runner user owns after a job. */
export function jobOwnedPaths(runnerDir: string, stateDir: string): string[] {
  return [...RUNNER_SECRET_FILES.map((f) => join(runnerDir, f)), join(runnerDir, '_work'), join(stateDir, JOB_SUBDIR)];
}

/**
 * As the runner user: the job's files in the runner dir (which it owns), and the contents of the
 * hooks' job dir (whose parent, the state dir, is root's: root removes the dir itself).
 */
const AS_RUNNER = 'rm -rf --one-file-system -- "$@"; s=$?; find "$0" -xdev -mindepth 1 -delete 2>/dev/null; exit $s';

export async function cleanupRunner(runnerDir: string, stateDir: string, user?: RunnerUser): Promise<string[]> {
  const errors: string[] = [];
  // Every registration or credentials file there is (a JIT config may carry more than the usual three).
  const more = (await readdir(runnerDir).catch(() => [] as string[]))
    .filter((name) => RUNNER_CONFIG_FILE.test(name) && !RUNNER_SECRET_FILES.includes(name))
    .map((name) => join(runnerDir, name));
  const jobOwned = [...more, ...jobOwnedPaths(runnerDir, stateDir)];
  if (!user?.switchUser) {
    // The agent is the runner user (local use): same privilege, nothing to separate.
    await removeAll([...jobOwned, stateDir], errors);
    return errors;
  }
  // Nothing of the runner may still run (a root daemon may have started one since draining).
  killProcessesOfUid(user.uid);
  const command = commandAs(user, '/bin/sh', ['-c', AS_RUNNER, join(stateDir, JOB_SUBDIR), ...jobOwned.slice(0, -1)]);
  const result = await execa(command.file, command.args, {
    uid: command.uid,
    gid: command.gid,
    env: { PATH: '/usr/bin:/bin' },
    stdin: 'ignore',
    reject: false,
    timeout: 60_000,
    cleanup: false,
  });
  if (result.exitCode !== 0) errors.push(`rm as ${user.name} exited ${result.exitCode}: ${String(result.stderr ?? '').trim().slice(0, 500)}`);
  // As root, never into a tree the runner owned: the hooks' job dir only if the runner emptied it,
  // then the state dir's own (root's) entries.
  await rmdir(join(stateDir, JOB_SUBDIR)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') errors.push(`${join(stateDir, JOB_SUBDIR)}: ${error.message} (left in place)`);
  });
  const rest = (await readdir(stateDir).catch(() => [] as string[])).filter((name) => name !== JOB_SUBDIR).map((name) => join(stateDir, name));
  await removeAll(rest, errors);
  await rmdir(stateDir).catch(() => undefined);
  return errors;
}

async function removeAll(targets: string[], errors: string[]): Promise<void> {
  await Promise.all(
    targets.map(async (target) => {
      try {
        await rm(target, { recursive: true, force: true, maxRetries: 2 });
      } catch (error) {
        errors.push(`${target}: ${(error as Error).message}`);
      }
    }),
  );
}
