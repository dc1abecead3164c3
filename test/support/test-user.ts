/**
 * The unprivileged user the runner runs as in tests (the tests run as root here).
 * Created once with useradd; several test files may race for the passwd lock.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';

/**
 * This checkout's tag: two checkouts testing at once (a CI clone beside a working tree) must not
 * share users either. global-teardown.ts removes the users of its own tag.
 */
export const CHECKOUT_TAG = createHash('sha256').update(process.cwd()).digest('hex').slice(0, 6);

/**
 * One user per jest worker and checkout: the agent kills every process of the runner's uid when a
 * job ends (what escaped its cgroup through a root daemon), so two workers must never share a runner user.
 */
export const WORKER_SUFFIX = `${process.env.JEST_WORKER_ID ? `-${process.env.JEST_WORKER_ID}` : ''}-${CHECKOUT_TAG}`;
export const TEST_USER = `rfa-test-runner${WORKER_SUFFIX}`;

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** The user, created when missing; or why it cannot be had. */
export function ensureUser(name: string): TestUser | string {
  const lookup = () => spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (lookup().status !== 0) {
    if (spawnSync('sh', ['-c', 'command -v useradd'], { encoding: 'utf8' }).status !== 0) return 'useradd is not available';
    for (let i = 0; i < 5 && lookup().status !== 0; i++) {
      spawnSync('useradd', ['--system', '--create-home', '--shell', '/bin/bash', name], { encoding: 'utf8' });
      if (lookup().status !== 0) spawnSync('sleep', ['0.2']); // another test file may hold the passwd lock
    }
  }
  const entry = lookup();
  if (entry.status !== 0) return `could not create the user ${name}`;
  const [, , uid, gid, , home] = entry.stdout.trim().split(':');
  return { name, uid: Number(uid), gid: Number(gid), home: home! };
}
