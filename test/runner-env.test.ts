/**
 * Pure parts of the runner's setup: the environment allow-list and the runner user rules.
 */
import { describe, it, expect } from '@jest/globals';
import { buildRunnerEnv, DEFAULT_PATH } from '../services/runner/env.js';
import { commandAs, parsePasswdLine, resolveRunnerUser, type PasswdEntry } from '../services/runner/user.js';

const runnerUser = { name: 'runner', home: '/home/runner', shell: '/bin/bash', isRoot: false };

describe('buildRunnerEnv', () => {
  const agentEnv = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/root',
    USER: 'root',
    LANG: 'en_US.UTF-8',
    LC_ALL: 'en_US.UTF-8',
    LC_CTYPE: 'C',
    TZ: 'Europe/Paris',
    https_proxy: 'http://proxy:3128',
    NO_PROXY: '169.254.169.254',
    AWS_ACCESS_KEY_ID: 'AKIA',
    AWS_SECRET_ACCESS_KEY: 's',
    AWS_REGION: 'eu-west-1',
    AWS_ENDPOINT_URL: 'http://x',
    RUNS_FLEET_LOG_GROUP: 'g',
    RUNNER_DEBUG: '1',
    RUNNER_ALLOW_RUNASROOT: '1',
    ACTIONS_RUNNER_INPUT_TOKEN: 'leak',
    NODE_OPTIONS: '--require x',
    // The unit's glibc tunables for the agent's own footprint (deploy/systemd/runs-fleet-agent.service).
    MALLOC_TRIM_THRESHOLD_: '131072',
    MALLOC_MMAP_THRESHOLD_: '131072',
    LD_PRELOAD: '/evil.so',
    INVOCATION_ID: 'abc',
    JOURNAL_STREAM: '8:1234',
    VAULT_TOKEN: 'hvs.x',
    // What the runs-fleet AMI's unit sets for the job (packer/provision-runs-fleet.sh).
    AGENT_TOOLSDIRECTORY: '/opt/hostedtoolcache',
    PIPX_HOME: '/opt/pipx',
    PIPX_BIN_DIR: '/opt/pipx_bin',
    HAS_SECRET: 'prefix-JITSECRETVALUE-suffix',
    UNSET: undefined,
  };

  it("passes the operator's variables, withholds the agent's own, its service's and secrets; the user identity from the runner user", () => {
    const vault = { list: () => ['JITSECRETVALUE'] };
    const env = buildRunnerEnv({ agentEnv, user: runnerUser, jobSpec: {}, vault });
    expect(env).toEqual({
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: '/home/runner',
      USER: 'runner',
      LOGNAME: 'runner',
      SHELL: '/bin/bash',
      LANG: 'en_US.UTF-8',
      LC_ALL: 'en_US.UTF-8',
      LC_CTYPE: 'C',
      TZ: 'Europe/Paris',
      https_proxy: 'http://proxy:3128',
      NO_PROXY: '169.254.169.254',
      RUNNER_DEBUG: '1',
      AGENT_TOOLSDIRECTORY: '/opt/hostedtoolcache',
      PIPX_HOME: '/opt/pipx',
      PIPX_BIN_DIR: '/opt/pipx_bin',
      RUNNER_MANUALLY_TRAP_SIG: '1',
      // A version GitHub refuses makes run.sh exit 7 (src/Runner.Listener/Program.cs, run.sh), not 0.
      ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE: '1',
    });
  });

  it('RUNNER_ALLOW_RUNASROOT only for a root runner user; PATH defaulted', () => {
    const env = buildRunnerEnv({ agentEnv: {}, user: { name: 'root', home: '/root', shell: '/bin/sh', isRoot: true }, jobSpec: {} });
    expect(env.RUNNER_ALLOW_RUNASROOT).toBe('1');
    expect(env.PATH).toBe(DEFAULT_PATH);
  });

  it('cache endpoint (with the trailing slash @actions/cache needs), its token only with a URL, and the hooks', () => {
    const env = buildRunnerEnv({
      agentEnv: {},
      user: runnerUser,
      jobSpec: { cacheUrl: 'https://cache.example/t1' },
      cacheToken: 'tok-123456',
      hooks: { started: '/s/hooks/job-started.sh', completed: '/s/hooks/job-completed.sh' },
    });
    expect(env).toMatchObject({
      ACTIONS_CACHE_URL: 'https://cache.example/t1/',
      ACTIONS_RUNTIME_TOKEN: 'tok-123456',
      ACTIONS_RUNNER_HOOK_JOB_STARTED: '/s/hooks/job-started.sh',
      ACTIONS_RUNNER_HOOK_JOB_COMPLETED: '/s/hooks/job-completed.sh',
    });
    const noUrl = buildRunnerEnv({ agentEnv: {}, user: runnerUser, jobSpec: {}, cacheToken: 'tok-123456' });
    expect(noUrl.ACTIONS_RUNTIME_TOKEN).toBeUndefined();
    expect(noUrl.ACTIONS_CACHE_URL).toBeUndefined();
  });
});

describe('runner user', () => {
  const runner: PasswdEntry = { name: 'runner', uid: 1001, gid: 1001, home: '/home/runner', shell: '/bin/bash' };
  const lookup = async (name: string) => (name === 'runner' ? runner : name === 'root' ? { ...runner, name: 'root', uid: 0, gid: 0, home: '/root' } : undefined);

  it('parsePasswdLine', () => {
    expect(parsePasswdLine('runner:x:1001:1002:GitHub runner,,,:/home/runner:/bin/bash\n')).toEqual({
      name: 'runner', uid: 1001, gid: 1002, home: '/home/runner', shell: '/bin/bash',
    });
    expect(parsePasswdLine('garbage')).toBeUndefined();
    expect(parsePasswdLine('a:x:b:1:::')).toBeUndefined();
  });

  it('as root: RUNS_FLEET_RUNNER_USER, default "runner", switched to (setpriv when there)', async () => {
    const byDefault = await resolveRunnerUser({}, { getuid: () => 0, lookup, setpriv: '/usr/bin/setpriv' });
    expect(byDefault).toMatchObject({ name: 'runner', uid: 1001, switchUser: true, isRoot: false, setpriv: '/usr/bin/setpriv' });
    expect(commandAs(byDefault, '/r/run.sh', [])).toEqual({
      file: '/usr/bin/setpriv',
      args: ['--reuid', '1001', '--regid', '1001', '--init-groups', '--', '/r/run.sh'],
    });
    const noSetpriv = await resolveRunnerUser({}, { getuid: () => 0, lookup, setpriv: null });
    expect(commandAs(noSetpriv, '/r/run.sh', ['a'])).toEqual({ file: '/r/run.sh', args: ['a'], uid: 1001, gid: 1001 });

    const root = await resolveRunnerUser({ runnerUser: 'root' }, { getuid: () => 0, lookup });
    expect(root).toMatchObject({ isRoot: true, switchUser: false });
    expect(commandAs(root, '/r/run.sh', [])).toEqual({ file: '/r/run.sh', args: [] });
  });

  it('as root, a missing user is an error naming it and the variable', async () => {
    await expect(resolveRunnerUser({ runnerUser: 'ghost' }, { getuid: () => 0, lookup })).rejects.toThrow(
      /runner user "ghost" does not exist.*RUNS_FLEET_RUNNER_USER/,
    );
    await expect(resolveRunnerUser({}, { getuid: () => 0, lookup: async () => undefined })).rejects.toThrow(/"runner"/);
  });

  it('not root: the current user; naming someone else is an error', async () => {
    const currentUser = () => ({ ...runner, name: 'dev', uid: 1000, gid: 1000 });
    expect(await resolveRunnerUser({}, { getuid: () => 1000, currentUser })).toMatchObject({
      name: 'dev', switchUser: false, isRoot: false,
    });
    expect(await resolveRunnerUser({ runnerUser: 'dev' }, { getuid: () => 1000, currentUser })).toMatchObject({ name: 'dev' });
    await expect(resolveRunnerUser({ runnerUser: 'runner' }, { getuid: () => 1000, currentUser })).rejects.toThrow(
      /RUNS_FLEET_RUNNER_USER="runner" needs the agent to run as root/,
    );
  });
});
