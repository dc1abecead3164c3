/**
 * Who `config.sh` and `run.sh` run as (SPEC §2 `RUNS_FLEET_RUNNER_USER`).
 *
 * - Agent is root: `RUNS_FLEET_RUNNER_USER`, default `runner`, looked up with
 *   `getent passwd NAME`; a missing user is a RegistrationError naming the user and
 *   the variable. The runner dir is chowned to that user before registering.
 * - Agent is not root: the current user (it cannot switch); naming another user is an error.
 * - `RUNNER_ALLOW_RUNASROOT=1` only when the resolved user is root (uid 0).
 *
 * Switching user: through `setpriv --init-groups` when util-linux's setpriv is there,
 * so the runner keeps its supplementary groups (e.g. `docker`); otherwise through
 * Node's `uid`/`gid` spawn options, which drop supplementary groups.
 */
import { execa } from 'execa';
import { chownr } from 'chownr';
import { constants } from 'node:fs';
import { access, lstat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { RegistrationError } from '../errors.js';
import type { Settings } from '../settings.js';

export const DEFAULT_RUNNER_USER = 'runner';
export const RUNNER_USER_VARIABLE = 'RUNS_FLEET_RUNNER_USER';
const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv'];

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface RunnerUser extends PasswdEntry {
  /** The agent is root and this user is not the agent's: spawn with a user switch. */
  switchUser: boolean;
  /** The runner runs as uid 0: it needs `RUNNER_ALLOW_RUNASROOT=1`. */
  isRoot: boolean;
  /** setpriv binary used for the switch (keeps supplementary groups); undefined = uid/gid spawn options. */
  setpriv?: string;
}

export interface RunnerUserDeps {
  /** The agent's uid (default `process.getuid()`). */
  getuid?: () => number;
  /** passwd lookup by name (default `getent passwd NAME`); undefined = no such user. */
  lookup?: (name: string) => Promise<PasswdEntry | undefined>;
  /** The current user when not root (default `os.userInfo()`). */
  currentUser?: () => PasswdEntry;
  /** Path of setpriv, or null for none (default: searched in /usr/bin, /bin, ...). */
  setpriv?: string | null;
}

/** One `/etc/passwd` line: `name:x:uid:gid:gecos:home:shell`. */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const fields = line.trim().split(':');
  if (fields.length < 7) return undefined;
  const [name, , uid, gid, , home, shell] = fields;
  if (!name || !/^\d+$/.test(uid!) || !/^\d+$/.test(gid!)) return undefined;
  return { name, uid: Number(uid), gid: Number(gid), home: home ?? '/', shell: shell ?? '/bin/sh' };
}

/** `getent passwd NAME` (NSS-aware, unlike reading /etc/passwd). Exit 2 = no such user. */
export async function getentPasswd(name: string): Promise<PasswdEntry | undefined> {
  const result = await execa('getent', ['passwd', name], { reject: false, timeout: 10_000, stdin: 'ignore', cleanup: false });
  if (result.exitCode === 2) return undefined;
  if (result.failed) {
    throw new RegistrationError(`cannot look up the runner user "${name}" with getent passwd: ${result.shortMessage}`, {
      cause: result,
    });
  }
  return parsePasswdLine(String(result.stdout).split('\n')[0] ?? '');
}

async function findSetpriv(): Promise<string | undefined> {
  for (const candidate of SETPRIV_CANDIDATES) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

function currentUserEntry(): PasswdEntry {
  const info = userInfo();
  return { name: info.username, uid: info.uid, gid: info.gid, home: info.homedir, shell: info.shell ?? '/bin/sh' };
}

/** The user `config.sh` and `run.sh` run as. Throws RegistrationError when it cannot be used. */
export async function resolveRunnerUser(settings: Pick<Settings, 'runnerUser'>, deps: RunnerUserDeps = {}): Promise<RunnerUser> {
  const agentUid = (deps.getuid ?? process.getuid)?.() ?? 0;
  const lookup = deps.lookup ?? getentPasswd;

  if (agentUid !== 0) {
    const current = (deps.currentUser ?? currentUserEntry)();
    const wanted = settings.runnerUser;
    if (wanted !== undefined && wanted !== current.name && wanted !== String(current.uid)) {
      throw new RegistrationError(
        `${RUNNER_USER_VARIABLE}=${JSON.stringify(wanted)} needs the agent to run as root to switch user; it runs as "${current.name}" (uid ${current.uid})`,
      );
    }
    return { ...current, switchUser: false, isRoot: false };
  }

  const name = settings.runnerUser ?? DEFAULT_RUNNER_USER;
  const entry = await lookup(name);
  if (!entry) {
    throw new RegistrationError(
      `runner user "${name}" does not exist on this instance: create it (useradd --create-home ${name}) or set ${RUNNER_USER_VARIABLE} to an existing user`,
    );
  }
  const isRoot = entry.uid === 0;
  const setpriv = isRoot ? undefined : deps.setpriv === null ? undefined : (deps.setpriv ?? (await findSetpriv()));
  return { ...entry, switchUser: !isRoot, isRoot, setpriv };
}

/** How to spawn `file args` as the runner user: a command line and the spawn options for it. */
export function commandAs(user: RunnerUser, file: string, args: string[]): { file: string; args: string[]; uid?: number; gid?: number } {
  if (!user.switchUser) return { file, args };
  if (user.setpriv) {
    return {
      file: user.setpriv,
      args: ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', file, ...args],
    };
  }
  return { file, args, uid: user.uid, gid: user.gid };
}

/**
 * chown -R that never follows a symlink: chownr (the library node-tar uses) lchowns every name
 * and recurses only into real directories (a Dirent that is a link is not one); the root
 * itself is lstat'ed first, because chownr would readdir through a root that is a link.
 */
export async function chownRecursive(dir: string, uid: number, gid: number): Promise<void> {
  const stat = await lstat(dir);
  if (stat.isSymbolicLink()) throw new Error(`${dir} is a symbolic link: not following it`);
  await new Promise<void>((resolve, reject) => chownr(dir, uid, gid, (error) => (error ? reject(error) : resolve())));
}

/** Give the runner dir to the runner user when the agent (root) switches to it. */
export async function prepareRunnerDir(dir: string, user: RunnerUser): Promise<void> {
  if (!user.switchUser) return;
  try {
    await chownRecursive(dir, user.uid, user.gid);
  } catch (error) {
    throw new RegistrationError(`cannot give the runner dir ${dir} to "${user.name}" (uid ${user.uid}): ${(error as Error).message}`, {
      cause: error,
    });
  }
}
