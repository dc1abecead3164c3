/** The systemd unit is the second never-a-zombie layer: verified, and holding the settings that make it one. */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { worstStopPathMs } from '../machines/agent.machine.js';
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

  it('is the only place that powers off: no code, test or script runs poweroff/shutdown/halt', () => {
    const grep = spawnSync(
      'grep',
      ['-rnE', String.raw`(exec|spawn|execa|execSync|spawnSync)\W[^)]*['"](poweroff|shutdown|halt|reboot)\b|systemctl\s+(poweroff|halt|reboot)`, 'machines', 'services', 'actors', 'bin', 'scripts', 'test', 'deploy'],
      { encoding: 'utf8' },
    );
    expect(grep.stdout).toBe('');
  });
});
