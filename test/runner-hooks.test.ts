/**
 * Job hooks: run by hand the way the runner runs them (as the runner user, with
 * `bash -e -o pipefail`), they record the job's identity and always exit 0 — fast —
 * even when they cannot write.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirname } from 'node:path';
import { annotation, hooksUsableBy, installJobHooks, jobHookPaths, readJobIdentity, writeNotice } from '../services/runner/job-hooks.js';
import { runnerUserTests } from './support/runner-user-tests.js';


const { user, asUser } = runnerUserTests('runner-user hook tests');

const GITHUB = {
  GITHUB_RUN_ID: '1234567890',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_JOB: 'build',
  GITHUB_REPOSITORY: 'acme/app',
  GITHUB_WORKFLOW: 'CI "main" \\ ünïcode\ttab\nnewline\u0001ctl',
};

/** Run a hook like the runner does: `bash --noprofile --norc -e -o pipefail SCRIPT`, optionally as the runner user. */
function runHook(script: string, env: Record<string, string>, asRunner: boolean) {
  const started = Date.now();
  const r = spawnSync('bash', ['--noprofile', '--norc', '-e', '-o', 'pipefail', script], {
    env: { PATH: '/usr/bin:/bin', ...env },
    encoding: 'utf8',
    uid: asRunner ? user.uid : undefined,
    gid: asRunner ? user.gid : undefined,
    timeout: 10_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

describe('job hooks', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  /** A state dir whose parent is open like /var/lib (mkdtemp makes it private). */
  async function stateDir(): Promise<string> {
    const base = await mkdtemp(join(tmpdir(), 'rfa-hooks-'));
    dirs.push(base);
    await chmod(base, 0o755);
    return join(base, 'state');
  }

  it('the state dir is the agent\'s: made 0711 when missing, and a listable one is closed (searchable only)', async () => {
    const fresh = await stateDir();
    await installJobHooks(fresh);
    expect((await stat(fresh)).mode & 0o777).toBe(0o711);
    const open = await stateDir();
    await mkdir(open, { mode: 0o777 });
    await chmod(open, 0o777); // as a umask-0022 mkdir, or an operator, may have left it
    await installJobHooks(open);
    expect((await stat(open)).mode & 0o777).toBe(0o711);
  });

  asUser('installed readable+runnable by the runner user; started/completed record the identity; exit 0 quickly', async () => {
    const dir = await stateDir();
    await mkdir(dir, { mode: 0o700 }); // an agent state dir that was private
    const hooks = await installJobHooks(dir, user);
    expect(hooks).toEqual(jobHookPaths(dir));
    expect((await stat(dir)).mode & 0o011).toBe(0o011); // the runner user can reach the hooks, not list the dir
    expect((await stat(dir)).mode & 0o004).toBe(0);
    expect((await stat(hooks.started)).mode & 0o777).toBe(0o755);
    expect((await stat(hooks.started)).uid).toBe(0); // the job cannot rewrite the hooks
    expect((await stat(hooks.jobDir)).uid).toBe(user.uid);
    expect(await readJobIdentity(dir)).toBeUndefined();
    expect(await hooksUsableBy(hooks, user)).toBe(true);

    const started = runHook(hooks.started, GITHUB, true);
    expect(started).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(started.ms).toBeLessThan(2000);
    const identity = await readJobIdentity(dir);
    expect(identity).toMatchObject({
      event: 'started',
      runId: '1234567890',
      runAttempt: '2',
      job: 'build',
      repository: 'acme/app',
      workflow: 'CI "main" \\ ünïcode\ttab\nnewlinectl', // control characters other than \t \n \r dropped
    });
    expect(new Date(identity!.at!).toISOString().replace('.000', '')).toBe(identity!.at);

    expect(runHook(hooks.completed, { ...GITHUB, GITHUB_RUN_ATTEMPT: '3' }, true).status).toBe(0);
    expect(await readJobIdentity(dir)).toMatchObject({ event: 'started', runAttempt: '2' }); // started wins
    await rm(join(hooks.jobDir, 'job-started.json'));
    expect(await readJobIdentity(dir)).toMatchObject({ event: 'completed', runAttempt: '3' });
  });

  it('exit 0 and record nothing when the job dir cannot be written (even as root)', async () => {
    const dir = await stateDir();
    const hooks = await installJobHooks(dir);
    await rm(hooks.jobDir, { recursive: true });
    await writeFile(hooks.jobDir, 'not a directory');
    for (const script of [hooks.started, hooks.completed]) {
      const r = runHook(script, GITHUB, false);
      expect(r).toMatchObject({ status: 0, stdout: '', stderr: '' });
      expect(r.ms).toBeLessThan(2000);
    }
    expect(await readJobIdentity(dir)).toBeUndefined();
  });

  asUser('exit 0 when the runner user may not write the job dir; with no GITHUB_* variables at all', async () => {
    const dir = await stateDir();
    const hooks = await installJobHooks(dir); // job dir stays root's
    await chmod(hooks.jobDir, 0o755);
    expect(runHook(hooks.started, GITHUB, true).status).toBe(0);
    expect(await readJobIdentity(dir)).toBeUndefined();

    const writable = await stateDir();
    const h2 = await installJobHooks(writable, user);
    expect(runHook(h2.started, {}, true).status).toBe(0);
    expect(await readJobIdentity(writable)).toEqual({ event: 'started', at: expect.any(String) });
  });

  asUser('hooksUsableBy: false when a parent dir is closed to the runner user (the hooks would fail the job)', async () => {
    const dir = await stateDir();
    const hooks = await installJobHooks(dir, user);
    expect(await hooksUsableBy(hooks, user)).toBe(true);
    await chmod(dirname(dir), 0o700);
    expect(await hooksUsableBy(hooks, user)).toBe(false);
    expect(runHook(hooks.started, GITHUB, true).status).not.toBe(0); // what the runner would have hit
    expect(await hooksUsableBy(hooks, { uid: 0, gid: 0 })).toBe(true);
    expect(await hooksUsableBy(jobHookPaths(join(dir, 'nowhere')), user)).toBe(false);
  });

  it('readJobIdentity ignores garbage', async () => {
    const dir = await stateDir();
    const hooks = await installJobHooks(dir);
    await writeFile(join(hooks.jobDir, 'job-started.json'), '{not json');
    await writeFile(join(hooks.jobDir, 'job-completed.json'), JSON.stringify({ event: 'other' }));
    expect(await readJobIdentity(dir)).toBeUndefined();
    expect(await readJobIdentity(join(dir, 'missing'))).toBeUndefined();
  });

  it('readJobIdentity does not follow symlinks, block on a FIFO, or read huge files planted by the job', async () => {
    const dir = await stateDir();
    const hooks = await installJobHooks(dir);
    const elsewhere = join(dirname(dir), 'secret.json');
    await writeFile(elsewhere, JSON.stringify({ event: 'started', runId: 'from-elsewhere' }));
    await symlink(elsewhere, join(hooks.jobDir, 'job-started.json'));
    expect(spawnSync('mkfifo', [join(hooks.jobDir, 'job-completed.json')]).status).toBe(0);
    expect(await readJobIdentity(dir)).toBeUndefined();
    await rm(join(hooks.jobDir, 'job-started.json'));
    await writeFile(join(hooks.jobDir, 'job-started.json'), JSON.stringify({ event: 'started', job: 'x'.repeat(100_000) }));
    expect(await readJobIdentity(dir)).toBeUndefined();
  });

  it('re-installing over existing hooks works (idempotent)', async () => {
    const dir = await stateDir();
    await installJobHooks(dir);
    const again = await installJobHooks(dir);
    expect(runHook(again.started, GITHUB, false).status).toBe(0);
    expect(await readJobIdentity(dir)).toMatchObject({ runId: '1234567890' });
  });

  describe("the agent's word in the job's own log", () => {
    asUser('the completed hook prints the agent\'s notice (an ::error for a stop, a ::warning for memory), as the runner user, and still exits 0', async () => {
      const dir = await stateDir();
      const hooks = await installJobHooks(dir, user);
      // A normal job: no notice, no annotation.
      expect(runHook(hooks.completed, GITHUB, true)).toMatchObject({ status: 0, stdout: '' });
      writeNotice(hooks.jobNotice, [
        annotation('warning', 'low memory at 12:01:07Z: 150 MB available, below the 200 MB minimum'),
        annotation('error', 'spot interruption notice at 12:03:41Z: the instance is being reclaimed'),
      ]);
      expect((await stat(hooks.jobNotice)).uid).toBe(0);
      expect((await stat(hooks.jobNotice)).mode & 0o777).toBe(0o644); // the runner user reads it, cannot change it
      expect((await stat(dirname(hooks.jobNotice))).uid).toBe(0);
      const done = runHook(hooks.completed, GITHUB, true);
      expect(done.status).toBe(0);
      expect(done.stdout.split('\n').filter(Boolean)).toEqual([
        '::warning title=runs-fleet::low memory at 12:01:07Z: 150 MB available, below the 200 MB minimum',
        '::error title=runs-fleet::spot interruption notice at 12:03:41Z: the instance is being reclaimed',
      ]);
      // Max runtime, and a text that would break the command is escaped as the runner unescapes it.
      writeNotice(hooks.jobNotice, [annotation('error', 'max runtime of 360 minutes reached at 18:03:00Z\n::error::forged 100%')]);
      expect(runHook(hooks.completed, GITHUB, true).stdout).toBe('::error title=runs-fleet::max runtime of 360 minutes reached at 18:03:00Z%0A::error::forged 100%25\n');
      // The started hook prints its own notice (the instance, the limits) the same way.
      writeNotice(hooks.startedNotice, ['runs-fleet: this job runs on instance i-0abc (t3.medium, spot, us-east-1a).']);
      expect(runHook(hooks.started, GITHUB, true)).toMatchObject({ status: 0, stdout: 'runs-fleet: this job runs on instance i-0abc (t3.medium, spot, us-east-1a).\n' });
      // The runner user cannot write the notice dir.
      const forge = spawnSync('sh', ['-c', `echo '::error::forged' > "$0"`, join(dirname(hooks.jobNotice), 'x')], { uid: user.uid, gid: user.gid, encoding: 'utf8' });
      expect(forge.status).not.toBe(0);
      // A reinstall (a new boot) drops the last one's notices.
      await installJobHooks(dir, user);
      expect(runHook(hooks.completed, GITHUB, true).stdout).toBe('');
    });

    it('writeNotice replaces a planted symlink instead of writing through it; no lines removes the file', async () => {
      const dir = await stateDir();
      const hooks = await installJobHooks(dir);
      const outside = join(dirname(dir), 'outside.txt');
      await writeFile(outside, 'untouched\n');
      await symlink(outside, hooks.jobNotice);
      writeNotice(hooks.jobNotice, [annotation('error', 'x')]);
      expect(readFileSync(outside, 'utf8')).toBe('untouched\n');
      expect(lstatSync(hooks.jobNotice).isFile()).toBe(true);
      writeNotice(hooks.jobNotice, []);
      expect(existsSync(hooks.jobNotice)).toBe(false);
    });
  });
});
