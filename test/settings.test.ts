import { describe, expect, it } from '@jest/globals';
import { credentialParameterName, MAX_TIMER_MS, parseSettings, SETTING_MAXIMA, ssmParameterName } from '../services/settings.js';

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
    expect(settings).toMatchObject({ standbyDeadlineMs: 120 * 60_000, ssmTimeoutMs: 10_000, prefetchRunner: true });
  });

  it('the credential parameter sits beside the config, as the orchestrator writes it', () => {
    expect(credentialParameterName('/runs-fleet/runners/i-0abc/config')).toBe('/runs-fleet/runners/i-0abc/credential');
    expect(credentialParameterName('/custom/i-0abc')).toBe('/custom/i-0abc/credential');
    const { settings, errors } = parseSettings({ RUNS_FLEET_STANDBY_DEADLINE_MINUTES: '0.05', RUNS_FLEET_PREFETCH_RUNNER: 'false' });
    expect(errors).toEqual([]);
    expect(settings).toMatchObject({ standbyDeadlineMs: 3_000, prefetchRunner: false });
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

describe('setting bounds', () => {
  it('a value above its maximum is an error naming the variable (40000 minutes would overflow a Node timer)', () => {
    const { settings, errors } = parseSettings({ RUNS_FLEET_MAX_RUNTIME_MINUTES: '40000', RUNS_FLEET_DRAIN_GRACE_SECONDS: '999999' });
    expect(errors).toEqual([
      'RUNS_FLEET_MAX_RUNTIME_MINUTES="40000" is above its maximum of 7200',
      'RUNS_FLEET_DRAIN_GRACE_SECONDS="999999" is above its maximum of 3600',
    ]);
    expect(settings.maxRuntimeMs).toBe(360 * 60_000); // the default stands in while the agent reports
  });

  it('at their maxima, every delay the machine sets and the hard deadline stay below the timer limit', () => {
    const env = Object.fromEntries(Object.entries(SETTING_MAXIMA).map(([name, max]) => [name, String(max)]));
    const { settings, errors } = parseSettings(env);
    expect(errors).toEqual([]);
    const longest = settings.maxRuntimeMs + settings.drainGraceMs + 2 * settings.logFlushTimeoutMs + settings.reportTimeoutMs + settings.terminateTimeoutMs + 180_000;
    expect(longest).toBeLessThan(MAX_TIMER_MS);
    for (const ms of [settings.standbyDeadlineMs, settings.idleTimeoutMs, settings.monitorIntervalMs, settings.spotPollMs]) expect(ms).toBeLessThan(MAX_TIMER_MS);
  });
});
