/** The command line (SPEC §2), parsed with node:util's parseArgs: unknown options are errors, exit 2. */
import { describe, expect, it } from '@jest/globals';
import { main, stateDetail } from '../bin/main.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { env: {}, out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

describe('runs-fleet-agent command line', () => {
  it('--version, --help, diagram --format dot|mermaid', async () => {
    const v = io();
    expect(await main(['--version'], v.io)).toBe(0);
    expect(v.out.join('')).toMatch(/^\d+\.\d+\.\d+\n$/);
    const h = io();
    expect(await main(['--help'], h.io)).toBe(0);
    expect(h.out.join('')).toContain('runs-fleet-agent cache-runner');
    const d = io();
    expect(await main(['diagram', '--format', 'dot'], d.io)).toBe(0);
    expect(d.out.join('')).toMatch(/^digraph agent/);
    const m = io();
    expect(await main(['diagram', '--format=mermaid'], m.io)).toBe(0);
    expect(m.out.join('')).toMatch(/^stateDiagram-v2/);
  });

  it.each([
    [['run', '--bogus'], /Unknown option '--bogus'/],
    [['run', '--inspect=eighty'], /--inspect takes a port number/],
    [['diagram', '--format', 'svg'], /unknown diagram format "svg"/],
    [['cache-runner', '--arch', 'riscv'], /--arch takes x64 and\/or arm64, not riscv|RUNS_FLEET_CONFIG_BUCKET names the bucket/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ])('%j is a usage error (exit 2) saying why', async (argv, message) => {
    const r = io();
    expect(await main(argv, r.io)).toBe(2);
    expect(r.err.join('')).toMatch(message);
  });

  it('the state log names the lifecycle state: withRunner (the runner process\'s owner) is left out', () => {
    expect(stateDetail({ withRunner: { running: { job: 'jobRunning', confirmation: 'settled' } } })).toBe('running.job.jobRunning');
    expect(stateDetail({ withRunner: { draining: 'killing' } })).toBe('draining.killing');
    expect(stateDetail({ reporting: { sending: 'backoff' } })).toBe('reporting.sending.backoff');
    expect(stateDetail('standbyEnded')).toBe('standbyEnded');
  });
});

describe('check-config: a pinned runner version behind the newest visible one', () => {
  const withEnv = (env: Record<string, string>) => {
    const out: string[] = [];
    const err: string[] = [];
    return { io: { env, out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
  };

  it("warns (exit 0) when GitHub's latest release is newer, and says nothing is wrong when it cannot look", async () => {
    const { startFakeGitHub } = await import('./support/fake-github.js');
    const github = await startFakeGitHub({ version: '2.336.0', tarballs: { x64: Buffer.from('x'), arm64: Buffer.from('x') } });
    try {
      const behind = withEnv({ RUNS_FLEET_RUNNER_VERSION: '2.330.0', RUNS_FLEET_GITHUB_API_URL: github.apiUrl });
      expect(await main(['check-config'], behind.io)).toBe(0);
      expect(behind.err.join('')).toMatch(/^warning: RUNS_FLEET_RUNNER_VERSION=2\.330\.0 is below 2\.336\.0, the newest in GitHub's latest release/m);
      expect(JSON.parse(behind.out.join('')).runnerVersionCheck).toContain("newest runner version seen: 2.336.0 (GitHub's latest release)");
      const current = withEnv({ RUNS_FLEET_RUNNER_VERSION: '2.336.0', RUNS_FLEET_GITHUB_API_URL: github.apiUrl });
      expect(await main(['check-config'], current.io)).toBe(0);
      expect(current.err.join('')).toBe('');
    } finally {
      await github.close();
    }
    const offline = withEnv({ RUNS_FLEET_RUNNER_VERSION: '2.330.0', RUNS_FLEET_GITHUB_API_URL: 'http://127.0.0.1:9' });
    expect(await main(['check-config'], offline.io)).toBe(0);
    expect(offline.err.join('')).toBe('');
    expect(JSON.parse(offline.out.join('')).runnerVersionCheck.at(-1)).toBe('could not tell whether the pinned runner version is current (offline?)');
  });
});
