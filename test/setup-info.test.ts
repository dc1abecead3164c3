/**
 * `.setup_info` (shown in the job's "Set up job" step) and check-config's runner pin check:
 * IMDS fields left out when missing, the file written as root without following the runner
 * dir's links, and the newest visible version from the S3 cache listing or GitHub.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRunnerPin, compareVersions } from '../services/install/runner-versions.js';
import { readInstanceFacts, setupInfo, startedNotice, writeSetupInfo } from '../services/runner/setup-info.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const imds = (answers: Record<string, string>) => ({
  request: async (path: string) => {
    if (path in answers) return answers[path]!;
    throw new Error('404 - Not Found');
  },
});

describe('.setup_info', () => {
  it('the instance from IMDS, each missing or odd field left out; the agent, runner and boot', async () => {
    const facts = await readInstanceFacts(
      imds({ 'latest/meta-data/instance-type': 'm7g.large', 'latest/meta-data/placement/availability-zone': 'eu-west-1b', 'latest/meta-data/ami-id': '<html>\n<body>not an id</body>' }),
      { instanceId: 'i-0abc' },
    );
    expect(facts).toEqual({ instanceId: 'i-0abc', instanceType: 'm7g.large', availabilityZone: 'eu-west-1b' });
    const entries = setupInfo(facts, { agentVersion: '1.2.3', runner: { version: '2.336.0', source: 's3' }, bootSeconds: 11.04, readySeconds: 3.46, timings: { booting: 1.2, downloading: 0.8, registering: 1.4 } });
    expect(entries).toEqual([
      { group: 'runs-fleet instance', detail: 'Instance: i-0abc\nInstance type: m7g.large\nAvailability zone: eu-west-1b' },
      {
        group: 'runs-fleet agent',
        detail: 'Agent version: 1.2.3\nRunner version: 2.336.0\nRunner: from the S3 cache\nInstance boot to agent start: 11 s\nAgent start to job ready: 3.5 s (booting 1.2 s, downloading 0.8 s, registering 1.4 s)',
      },
    ]);
    expect(setupInfo({}, { agentVersion: '1', runner: { version: '2', source: 'installed' }, readySeconds: 1, timings: {} })[0]!.group).toBe('runs-fleet agent');
  });

  it('written as root through the pinned runner dir: a planted .setup_info symlink is replaced, not followed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rfa-setup-info-'));
    dirs.push(dir);
    const outside = join(dir, 'outside');
    writeFileSync(outside, 'root-owned\n');
    const runnerDir = join(dir, 'runner');
    mkdirSync(runnerDir);
    symlinkSync(outside, join(runnerDir, '.setup_info'));
    const entries = [{ group: 'g', detail: 'd' }];
    await writeSetupInfo(runnerDir, entries);
    expect(readFileSync(outside, 'utf8')).toBe('root-owned\n');
    expect(lstatSync(join(runnerDir, '.setup_info')).isFile()).toBe(true);
    expect(lstatSync(join(runnerDir, '.setup_info')).mode & 0o777).toBe(0o644);
    expect(JSON.parse(readFileSync(join(runnerDir, '.setup_info'), 'utf8'))).toEqual(entries);
    // A runner dir that is itself a link is refused.
    symlinkSync(runnerDir, join(dir, 'link'));
    await expect(writeSetupInfo(join(dir, 'link'), entries)).rejects.toThrow(/ELOOP|ENOTDIR/);
  });

  it("the started hook's notice names the instance and the limits", () => {
    expect(startedNotice({ instanceId: 'i-0abc', instanceType: 't3.medium', lifecycle: 'spot' }, { maxRuntimeMinutes: 360, maxRuntimeAtMs: Date.parse('2026-12-01T18:03:00Z'), diskMinFreeMb: 500 })).toEqual([
      'runs-fleet: this job runs on instance i-0abc (t3.medium, spot).',
      expect.stringMatching(/^runs-fleet: the agent stops it at its max runtime of 360 minutes \(18:03:00Z\), on a spot interruption notice, when the instance is shut down, or when the runner's disk has less than 500 MB free\./),
    ]);
  });
});

describe("check-config's runner pin check", () => {
  it('compares versions numerically', () => {
    expect(['2.330.0', '2.99.1', '2.336.0', '2.4.0'].sort(compareVersions)).toEqual(['2.4.0', '2.99.1', '2.330.0', '2.336.0']);
  });

  it('a pin below the S3 cache listing warns; GitHub is not asked', async () => {
    let asked = false;
    const r = await checkRunnerPin({ pinned: '2.330.0', cachedVersion: async () => '2.336.0', githubVersion: async () => ((asked = true), '9.9.9') });
    expect(r.warning).toMatch(/^RUNS_FLEET_RUNNER_VERSION=2\.330\.0 is below 2\.336\.0, the newest in the S3 cache: GitHub refuses/);
    expect(asked).toBe(false);
  });

  it("no bucket, or a listing that fails: GitHub's latest release; current pins do not warn", async () => {
    const failing = await checkRunnerPin({ pinned: '2.330.0', cachedVersion: async () => { throw new Error('AccessDenied'); }, githubVersion: async () => '2.331.0' });
    expect(failing.warning).toMatch(/below 2\.331\.0, the newest in GitHub's latest release/);
    expect(failing.notes[0]).toBe('the S3 cache could not be listed: AccessDenied');
    expect((await checkRunnerPin({ pinned: '2.336.0', githubVersion: async () => '2.336.0' })).warning).toBeUndefined();
  });

  it('offline: notes, no warning, no error', async () => {
    const r = await checkRunnerPin({ pinned: '2.330.0', githubVersion: async () => { throw new Error('fetch failed'); } });
    expect(r.warning).toBeUndefined();
    expect(r.notes.at(-1)).toBe('could not tell whether the pinned runner version is current (offline?)');
  });
});
