/** Jest helper for tests that need the unprivileged runner user (kept apart: scripts import test-user.ts outside jest). */
import { it } from '@jest/globals';
import { ensureUser, TEST_USER, type TestUser } from './test-user.js';

/**
 * For a test file whose tests need the runner user: the user, and `asUser`, which is `it`
 * when the user could be had and `it.skip` (with a warning saying why) otherwise.
 */
export function runnerUserTests(what: string): { user: TestUser; asUser: typeof it } {
  const found = process.getuid?.() === 0 ? ensureUser(TEST_USER) : 'the tests do not run as root';
  if (typeof found === 'string') {
    console.warn(`SKIPPED: ${what} need a non-root user: ${found}`);
    return { user: { name: TEST_USER, uid: -1, gid: -1, home: '' }, asUser: it.skip as typeof it };
  }
  return { user: found, asUser: it };
}
