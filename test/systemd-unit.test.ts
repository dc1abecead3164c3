/** The systemd unit is the second never-a-zombie layer: verified, and holding the settings that make it one. */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UNIT_RUNTIME_MAX_SEC, UNIT_TIMEOUT_STOP_SEC, unitBudgetWarnings, worstStopPathMs } from '../machines/agent.machine.js';
import { main } from '../bin/main.js';
import { parseSettings } from '../services/settings.js';

const UNIT = 'deploy/systemd/runs-fleet-agent.service';
const text = readFileSync(UNIT, 'utf8');
const setting = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(text)?.[1]?.trim();
const seconds = (value: string) => {
  let total = 0;
  for (const [, n, unit] of value.matchAll(/(\d+)\s*(min|h|s)?/g)) total += Number(n) * (unit === 'h' ? 3600 : unit === 'min' ? 60 : 1);
  return total;
};

describe('systemd unit', () => {
  it('passes systemd-analyze verify (ExecStart pointed at this checkout)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rfa-unit-'));
    const unit = join(dir, 'runs-fleet-agent.service');
    writeFileSync(unit, text.replace('ExecStart=/usr/local/bin/runs-fleet-agent', `ExecStart=${resolve('bin/runs-fleet-agent')}`));
    const result = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(result.error).toBeUndefined();
    expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  it('powers off on every exit, never restarts, and outlives no max runtime', () => {
    const { settings } = parseSettings({});
    expect(setting('Type')).toBe('exec');
    expect(setting('Restart')).toBe('no');
    expect(setting('SuccessAction')).toMatch(/^poweroff(-force)?$/);
    expect(setting('FailureAction')).toMatch(/^poweroff(-force)?$/);
    expect(setting('EnvironmentFile')).toBe('-/etc/runs-fleet-agent/agent.env');
    expect(seconds(setting('RuntimeMaxSec')!)).toBeGreaterThan(settings.maxRuntimeMs / 1000);
    // A stop during a job: every step of the way at its deadline, plus a margin of 10 % and at least 20 s.
    const worst = worstStopPathMs(settings) / 1000;
    const stop = seconds(setting('TimeoutStopSec')!);
    process.stdout.write(`worst stop path ${worst} s; TimeoutStopSec ${stop} s\n`);
    expect(stop).toBeGreaterThanOrEqual(Math.max(worst * 1.1, worst + 20));
    expect(seconds(setting('RuntimeMaxSec')!)).toBeGreaterThanOrEqual(settings.maxRuntimeMs / 1000 + stop);
    expect(setting('KillMode')).toBe('mixed');
    expect(setting('Delegate')).toBe('yes'); // the agent's job cgroup below the unit's
  });

  it('settings that outgrow the unit are warned about, at start and by check-config', async () => {
    expect(seconds(setting('TimeoutStopSec')!)).toBe(UNIT_TIMEOUT_STOP_SEC);
    expect(seconds(setting('RuntimeMaxSec')!)).toBe(UNIT_RUNTIME_MAX_SEC);
    expect(unitBudgetWarnings(parseSettings({}).settings)).toEqual([]);
    const slowDrain = unitBudgetWarnings(parseSettings({ RUNS_FLEET_DRAIN_GRACE_SECONDS: '200' }).settings);
    expect(slowDrain).toHaveLength(1);
    expect(slowDrain[0]).toMatch(/worst stop path with these deadlines is \d+ s, more than the unit's TimeoutStopSec=300/);
    const long = unitBudgetWarnings(parseSettings({ RUNS_FLEET_MAX_RUNTIME_MINUTES: '480' }).settings);
    expect(long).toEqual([expect.stringMatching(/RUNS_FLEET_MAX_RUNTIME_MINUTES=480 .* RuntimeMaxSec=22800/)]);
    const err: string[] = [];
    const io = { env: { RUNS_FLEET_MAX_RUNTIME_MINUTES: '480' }, out: () => {}, err: (t: string) => err.push(t) };
    expect(await main(['check-config'], io)).toBe(0); // a warning, not an error: a drop-in may have raised the limit
    expect(err.join('')).toMatch(/^warning: RUNS_FLEET_MAX_RUNTIME_MINUTES=480/m);
  });

  it('is the only place that powers off: no code, test or script runs poweroff/shutdown/halt', () => {
    const grep = spawnSync(
      'grep',
      ['-rnE', String.raw`(exec|spawn|execa|execSync|spawnSync)\W[^)]*['"](poweroff|shutdown|halt|reboot)\b|systemctl\s+(poweroff|halt|reboot)`, 'machines', 'services', 'actors', 'bin', 'scripts', 'test', 'deploy'],
      { encoding: 'utf8' },
    );
    expect(grep.stdout).toBe('');
  });
});
