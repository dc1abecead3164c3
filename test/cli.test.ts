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
