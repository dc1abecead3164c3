/**
 * registering: token mode runs config.sh as the runner user with the token in the
 * environment (never argv); JIT mode runs nothing; both install the hooks and give
 * the runner dir to the runner user. Failures are RegistrationErrors that quote
 * config.sh's last lines, redacted.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createActor } from 'xstate';
import { registerRunner } from '../actors/register-runner.js';
import type { AgentEvent } from '../machines/events.js';
import type { InstalledRunner, JobSpec } from '../machines/types.js';
import { RegistrationError } from '../services/errors.js';
import { configArgs, registerRunnerService, runnerName } from '../services/runner/registration.js';
import { startRunnerProcess } from '../services/runner/process.js';
import { SecretVault } from '../services/secrets.js';
import { parseSettings, type Settings } from '../services/settings.js';
import { buildFakeRunnerTarball, extractFakeRunner, readConfigArgs, readRunnerEnv, writeRunnerOverride, type FakeRunnerOptions } from './support/fake-runner.js';
import { runnerUserTests } from './support/runner-user-tests.js';
import { TEST_USER } from './support/test-user.js';
import { resolveRunnerUser, type RunnerUser } from '../services/runner/user.js';
import { jobHookPaths } from '../services/runner/job-hooks.js';
import { fakeJitConfig } from './support/jit.js';

const VERSION = '2.330.0';
const TOKEN = 'AABBCCDDEEFFREGISTRATIONTOKEN';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { user, asUser } = runnerUserTests('runner-user tests');

const logger = pino({ level: 'silent' });
const AGENT_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', AWS_SECRET_ACCESS_KEY: 'agent-aws-secret', RUNS_FLEET_LOG_GROUP: 'g' };

interface Harness {
  dir: string;
  stateDir: string;
  settings: Settings;
  jobSpec: JobSpec;
  runner: InstalledRunner;
  vault: SecretVault;
  user: RunnerUser;
}

function spec(overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    parameterName: '/p',
    mode: 'token',
    org: 'acme',
    repo: 'app',
    isOrg: false,
    labels: ['self-hosted', 'linux', 'x64'],
    runnerGroup: 'fleet',
    ...overrides,
  };
}

describe('configArgs / runnerName', () => {
  const settings = { githubUrl: 'https://github.example.com', instanceId: 'i-0abc' };
  it('repo URL (bare repo joined with org), labels, group, the fixed flags; no secret', () => {
    expect(configArgs(spec(), settings)).toEqual([
      '--unattended', '--url', 'https://github.example.com/acme/app', '--name', 'runs-fleet-i-0abc',
      '--labels', 'self-hosted,linux,x64', '--runnergroup', 'fleet',
      '--work', '_work', '--ephemeral', '--disableupdate', '--replace',
    ]);
  });
  it('org URL when is_org; no --labels/--runnergroup when not given', () => {
    expect(configArgs(spec({ isOrg: true, labels: [], runnerGroup: undefined, runnerName: 'named' }), settings)).toEqual([
      '--unattended', '--url', 'https://github.example.com/acme', '--name', 'named',
      '--work', '_work', '--ephemeral', '--disableupdate', '--replace',
    ]);
  });
  it('name: runner_name, else runs-fleet-{instance id}, else runs-fleet-{hostname}', () => {
    expect(runnerName({ runnerName: 'x' }, { instanceId: 'i-1' })).toBe('x');
    expect(runnerName({}, { instanceId: 'i-1' })).toBe('runs-fleet-i-1');
    expect(runnerName({}, {})).toMatch(/^runs-fleet-.+/);
  });
  it('neither org nor repo is a RegistrationError', () => {
    expect(() => configArgs(spec({ org: undefined, repo: undefined }), settings)).toThrow(RegistrationError);
  });
});

describe('registration with the fake actions/runner', () => {
  let tarball: Buffer;
  const cleanups: string[] = [];
  beforeAll(async () => {
    tarball = await buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed', jobSeconds: 0.1 });
  });
  afterAll(async () => {
    for (const d of cleanups) await rm(d, { recursive: true, force: true });
  });

  async function prepare(opts: { override?: Partial<FakeRunnerOptions>; runnerUser?: string; jobSpec?: Partial<JobSpec> } = {}): Promise<Harness> {
    const base = await mkdtemp(join(tmpdir(), 'rfa-reg-'));
    cleanups.push(base);
    await chmod(base, 0o755);
    const dir = join(base, 'actions-runner');
    const stateDir = join(base, 'state');
    await mkdir(dir);
    await extractFakeRunner(tarball, dir);
    if (opts.override) await writeRunnerOverride(dir, opts.override);
    const { settings } = parseSettings({
      RUNS_FLEET_RUNNER_DIR: dir,
      RUNS_FLEET_STATE_DIR: stateDir,
      RUNS_FLEET_RUNNER_USER: opts.runnerUser ?? TEST_USER,
      RUNS_FLEET_INSTANCE_ID: 'i-0123456789abcdef0',
      RUNS_FLEET_GITHUB_URL: 'https://github.example.com',
    });
    const vault = new SecretVault();
    vault.set('jit_token', TOKEN);
    return { dir, stateDir, settings, jobSpec: spec(opts.jobSpec), runner: { dir, version: VERSION, source: 'installed' }, vault, user: await resolveRunnerUser(settings) };
  }

  const register = (h: Harness, signal?: AbortSignal) =>
    registerRunnerService({ settings: h.settings, jobSpec: h.jobSpec, runner: h.runner, user: h.user }, { logger, vault: h.vault, env: AGENT_ENV }, signal);

  async function filesNotOwnedBy(dir: string, uid: number): Promise<string[]> {
    const wrong: string[] = [];
    for (const entry of await readdir(dir, { recursive: true })) {
      if ((await stat(join(dir, entry))).uid !== uid) wrong.push(entry);
    }
    return wrong;
  }

  asUser('token mode: config.sh as the runner user, token via ACTIONS_RUNNER_INPUT_TOKEN only; then run.sh runs the job', async () => {
    const h = await prepare();
    await register(h);

    expect(await readConfigArgs(h.dir)).toEqual([
      '--unattended', '--url', 'https://github.example.com/acme/app', '--name', 'runs-fleet-i-0123456789abcdef0',
      '--labels', 'self-hosted,linux,x64', '--runnergroup', 'fleet',
      '--work', '_work', '--ephemeral', '--disableupdate', '--replace',
    ]);
    expect(await readFile(join(h.dir, '_diag/config-args.json'), 'utf8')).not.toContain(TOKEN);
    expect(JSON.parse(await readFile(join(h.dir, '_diag/config-input.json'), 'utf8'))).toEqual({ tokenSource: 'environment' });
    const dotRunner = JSON.parse(await readFile(join(h.dir, '.runner'), 'utf8'));
    expect(dotRunner).toMatchObject({ agentName: 'runs-fleet-i-0123456789abcdef0', ephemeral: true, disableUpdate: true, poolName: 'fleet' });
    expect((await stat(join(h.dir, '.runner'))).uid).toBe(user.uid); // written by the runner user
    expect(await filesNotOwnedBy(h.dir, user.uid)).toEqual([]); // the whole dir is theirs
    for (const hook of ['job-started.sh', 'job-completed.sh']) {
      expect((await stat(join(h.stateDir, 'hooks', hook))).mode & 0o777).toBe(0o755);
    }
    expect((await stat(join(h.stateDir, 'job'))).uid).toBe(user.uid);

    // ...and run.sh starts from the .runner config.sh wrote (no JIT config).
    const events: AgentEvent[] = [];
    const handle = startRunnerProcess({
      settings: h.settings, jobSpec: h.jobSpec, runner: h.runner, user: h.user, hooks: jobHookPaths(h.stateDir), logger, vault: h.vault, env: AGENT_ENV,
      onLine: () => {}, send: (e) => events.push(e),
    });
    await handle.done;
    expect(events.map((e) => e.type)).toEqual(['RUNNER_SPAWNED', 'RUNNER_LISTENING', 'JOB_STARTED', 'JOB_COMPLETED', 'RUNNER_EXITED']);
    const env = await readRunnerEnv(h.dir);
    expect(Object.keys(env).filter((k) => /^(AWS_|RUNS_FLEET_|ACTIONS_RUNNER_INPUT_)/.test(k))).toEqual([]);
    expect(await readFile(join(h.dir, '_diag/env.txt'), 'utf8')).not.toContain(TOKEN);
  });

  asUser('the token is never on a command line while config.sh runs', async () => {
    const h = await prepare();
    // A config.sh that shows its own command line (as ps would) and its environment's token.
    await writeFile(
      join(h.dir, 'config.sh'),
      '#!/bin/bash\ntr "\\0" " " < /proc/$$/cmdline > "$(dirname "$0")/cmdline.txt"\n' +
        '[ "$ACTIONS_RUNNER_INPUT_TOKEN" = "' + TOKEN + '" ] && echo env-ok > "$(dirname "$0")/token.txt"\nexit 0\n',
      { mode: 0o755 },
    );
    await register(h);
    const cmdline = await readFile(join(h.dir, 'cmdline.txt'), 'utf8');
    expect(cmdline).toContain('--unattended');
    expect(cmdline).not.toContain(TOKEN);
    expect(await readFile(join(h.dir, 'token.txt'), 'utf8')).toBe('env-ok\n');
  });

  asUser('config.sh failure → RegistrationError with exit code and its last lines, secrets redacted', async () => {
    const h = await prepare({ override: { config: 'fail' } });
    h.vault.set('cache_token', 'FAKE:0000'); // appears in the fake's error output ("Request Id: FAKE:0000")
    const error = await register(h).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RegistrationError);
    const message = (error as Error).message;
    expect(message).toMatch(/^config\.sh exited with code 1:\n/);
    expect(message).toContain('Response status code does not indicate success: 404 (Not Found).');
    expect(message).toContain('Request Id: ***');
    expect(message).not.toContain('FAKE:0000');
    expect(message).not.toContain(TOKEN);
    expect((error as RegistrationError).retriable).toBe(false);
  });

  it('a missing runner user is a clear error naming the user and RUNS_FLEET_RUNNER_USER (registering\'s first step)', async () => {
    const { settings } = parseSettings({ RUNS_FLEET_RUNNER_USER: 'rfa-no-such-user' });
    await expect(resolveRunnerUser(settings)).rejects.toThrow(
      expect.objectContaining({
        name: 'RegistrationError',
        message: expect.stringMatching(/runner user "rfa-no-such-user" does not exist.*RUNS_FLEET_RUNNER_USER/),
      }) as unknown as Error,
    );
  });

  asUser("JIT mode: nothing is run; the config's files decoded into the runner root as the runner user's 0600 files; hooks installed", async () => {
    const h = await prepare({ jobSpec: { mode: 'jit' } });
    const jit = fakeJitConfig('reg-test');
    h.vault.set('jit_config', jit);
    await register(h);
    await expect(stat(join(h.dir, '_diag/config-args.json'))).rejects.toThrow();
    const files = JSON.parse(Buffer.from(jit, 'base64').toString('utf8')) as Record<string, string>;
    for (const name of ['.runner', '.credentials', '.credentials_rsaparams']) {
      const st = await stat(join(h.dir, name));
      expect([st.uid, st.mode & 0o777]).toEqual([user.uid, 0o600]);
      expect(await readFile(join(h.dir, name))).toEqual(Buffer.from(files[name]!, 'base64'));
    }
    expect(await filesNotOwnedBy(h.dir, user.uid)).toEqual([]);
    expect((await stat(join(h.stateDir, 'hooks/job-started.sh'))).isFile()).toBe(true);
  });

  it.each([
    ['not base64', 'not base64 at all!', /the config is not base64/],
    ['base64 of something else', Buffer.from('hello').toString('base64'), /does not hold a JSON object/],
    ['an entry that is a path', Buffer.from(JSON.stringify({ '.runner': 'eA==', '.credentials': 'eA==', '../../etc/ld.so.preload': 'eA==' })).toString('base64'), /an entry name is not a runner file name/],
    ['no credentials', Buffer.from(JSON.stringify({ '.runner': 'eA==' })).toString('base64'), /it has no \.credentials/],
  ])('a JIT config that is %s: a RegistrationError naming what is wrong, never quoting it, nothing written', async (_name, jit, error) => {
    const h = await prepare({ runnerUser: 'root', jobSpec: { mode: 'jit' } });
    h.vault.set('jit_config', jit);
    const failure = await register(h).then(() => undefined, (e: Error) => e);
    expect(failure?.name).toBe('RegistrationError');
    expect(failure?.message).toMatch(error);
    expect(failure?.message).not.toContain(jit);
    await expect(stat(join(h.dir, '.runner'))).rejects.toThrow();
  });

  it('the JIT files are written through the pinned runner dir: a planted .credentials symlink is replaced, not followed', async () => {
    const h = await prepare({ runnerUser: 'root', jobSpec: { mode: 'jit' } });
    const outside = join(h.dir, '..', 'outside-target');
    await writeFile(outside, 'root-owned\n');
    await symlink(outside, join(h.dir, '.credentials'));
    h.vault.set('jit_config', fakeJitConfig('reg-test'));
    await register(h);
    expect(await readFile(outside, 'utf8')).toBe('root-owned\n');
    expect((await lstat(join(h.dir, '.credentials'))).isFile()).toBe(true);
  });

  it('JIT mode without a JIT config, token mode without a token: RegistrationError', async () => {
    const jit = await prepare({ runnerUser: 'root', jobSpec: { mode: 'jit' } });
    await expect(register(jit)).rejects.toThrow(/JIT mode but no JIT config/);
    const token = await prepare({ runnerUser: 'root' });
    await expect(register({ ...token, vault: new SecretVault() })).rejects.toThrow(/no registration token/);
  });

  it('as root user: config.sh gets RUNNER_ALLOW_RUNASROOT and succeeds', async () => {
    const h = await prepare({ runnerUser: 'root' });
    await register(h);
    expect((await stat(join(h.dir, '.runner'))).uid).toBe(0);
  });

  asUser('leaving the state (actor stopped) cancels config.sh and its process group', async () => {
    const h = await prepare();
    await writeFile(
      join(h.dir, 'config.sh'),
      '#!/bin/bash\necho $$ > "$(dirname "$0")/config.pid"\nsleep 300 &\necho $! > "$(dirname "$0")/child.pid"\nwait\n',
      { mode: 0o755 },
    );
    const failures: unknown[] = [];
    const actor = createActor(registerRunner({ logger, vault: h.vault, env: AGENT_ENV }), {
      input: { settings: h.settings, jobSpec: h.jobSpec, runner: h.runner, user: h.user },
    });
    actor.subscribe({ error: (e) => failures.push(e) });
    actor.start();
    const deadline = Date.now() + 5000;
    let child = 0;
    while (Date.now() < deadline) {
      child = Number(await readFile(join(h.dir, 'child.pid'), 'utf8').catch(() => '0'));
      if (child > 0) break;
      await sleep(10);
    }
    expect(child).toBeGreaterThan(0);
    const pid = Number(await readFile(join(h.dir, 'config.pid'), 'utf8'));
    const stoppedAt = Date.now();
    actor.stop();
    const alive = (p: number) => {
      try {
        process.kill(p, 0);
        return !/\) Z/.test(spawnSync('cat', [`/proc/${p}/stat`], { encoding: 'utf8' }).stdout);
      } catch {
        return false;
      }
    };
    while ((alive(pid) || alive(child)) && Date.now() - stoppedAt < 4000) await sleep(10);
    expect(alive(pid)).toBe(false);
    expect(alive(child)).toBe(false);
    console.log(`registration cancelled: config.sh and its child gone ${Date.now() - stoppedAt} ms after the actor stopped`);
    expect(failures).toEqual([]); // a stopped actor reports nothing
  });
});
