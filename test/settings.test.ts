import { describe, expect, it } from '@jest/globals';
import { parseRunnerConfig, registrationUrl } from '../services/runner-config.js';
import { parseSettings, ssmParameterName } from '../services/settings.js';

describe('settings from the environment', () => {
  it('has the SPEC defaults', () => {
    const { settings, errors } = parseSettings({});
    expect(errors).toEqual([]);
    expect(settings).toMatchObject({
      maxRuntimeMs: 360 * 60_000,
      idleTimeoutMs: 15 * 60_000,
      drainGraceMs: 90_000,
      runnerDir: '/opt/actions-runner',
      runnerVersion: 'latest',
      githubApiUrl: 'https://api.github.com',
      githubUrl: 'https://github.com',
      diskMinFreeMb: 500,
      downloadMinFreeMb: 1024,
      memMinAvailableMb: 200,
      monitorIntervalMs: 30_000,
      spotPollMs: 5_000,
      terminate: true,
      ssmParameterTemplate: '/runs-fleet/runners/{instance-id}/config',
    });
    expect(ssmParameterName(settings, 'i-0abc')).toBe('/runs-fleet/runners/i-0abc/config');
  });

  it('accepts decimals and the RUNS_FLEET_MAX_RUNTIME alias', () => {
    const { settings } = parseSettings({ RUNS_FLEET_MAX_RUNTIME: '0.5', RUNS_FLEET_IDLE_TIMEOUT_MINUTES: '1.5' });
    expect(settings.maxRuntimeMs).toBe(30_000);
    expect(settings.idleTimeoutMs).toBe(90_000);
  });

  it.each([
    ['RUNS_FLEET_MAX_RUNTIME_MINUTES', 'abc'],
    ['RUNS_FLEET_DRAIN_GRACE_SECONDS', '-5'],
    ['RUNS_FLEET_DISK_MIN_FREE_MB', '1e3'],
    ['RUNS_FLEET_GITHUB_API_URL', 'ftp://example.com'],
    ['RUNS_FLEET_TERMINATION_QUEUE_URL', 'not a url'],
    ['RUNS_FLEET_TERMINATE', 'maybe'],
    ['RUNS_FLEET_RUNNER_VERSION', 'newest'],
    ['RUNS_FLEET_RUNNER_DIR', 'relative/dir'],
    ['RUNS_FLEET_INSTANCE_ID', 'web-1'],
    ['AWS_ENDPOINT_URL_SQS', 'gopher://x'],
  ])('names %s when its value %j is bad, and keeps the default', (name, value) => {
    const { errors } = parseSettings({ [name]: value });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(name);
  });
});

describe('runner config JSON', () => {
  it('accepts a JIT config and a token config, and builds org vs repo URLs', () => {
    const jit = parseRunnerConfig(JSON.stringify({ jit_config: 'abcdef', run_id: 12, labels: ['a'] }), '/p');
    expect(jit.run_id).toBe('12');
    const token = parseRunnerConfig(JSON.stringify({ jit_token: 'tok123', org: 'acme', repo: 'app' }), '/p');
    expect(registrationUrl(token, 'https://github.com')).toBe('https://github.com/acme/app');
    expect(registrationUrl({ ...token, repo: 'other/app' }, 'https://ghe.local')).toBe('https://ghe.local/other/app');
    expect(registrationUrl({ ...token, is_org: true }, 'https://github.com')).toBe('https://github.com/acme');
  });

  it.each([
    ['{not json', 'is not valid JSON'],
    ['[]', '(root): expected object'],
    ['{"org":"acme"}', 'neither jit_config nor jit_token'],
    ['{"jit_config":"aaaaaa","jit_token":"bbbbbb"}', 'both jit_config and jit_token'],
    ['{"jit_config":"aaaaaa","labels":"x"}', 'labels: expected array'],
    ['{"jit_config":"aaaaaa","termination_queue_url":"file:///x"}', 'termination_queue_url'],
    ['{"jit_token":"bbbbbb"}', 'names neither org nor repo'],
  ])('rejects %s naming the problem', (text, message) => {
    expect(() => parseRunnerConfig(text, '/runs-fleet/runners/i-1/config')).toThrow(message);
  });

  it('never echoes a secret value in its errors', () => {
    const secret = 'SUPERSECRETTOKEN123';
    for (const text of [`{"jit_token": ${JSON.stringify(secret)}, "labels": 5}`, `{"jit_config": "${secret}`, `{"jit_config": 42, "x": "${secret}"}`]) {
      try {
        parseRunnerConfig(text, '/p');
        throw new Error('expected a failure');
      } catch (error) {
        expect((error as Error).message).not.toContain(secret);
      }
    }
  });
});
