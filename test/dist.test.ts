/**
 * The single executable (dist/runs-fleet-agent-linux-{x64|arm64}, a Node SEA built by
 * scripts/sea.mjs): it runs on its own — no node, no node_modules — and answers like the bundle.
 * Built here only when missing or older than the bundle (make dist builds it once).
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const BIN = resolve(`dist/runs-fleet-agent-linux-${ARCH}`);
const BUNDLE = resolve('dist/runs-fleet-agent.cjs');
const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

/** Runs the binary with a clean environment: no NODE_OPTIONS (jest's), no node on PATH. */
function bin(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(BIN, args, {
    cwd: mkdtempSync(join(tmpdir(), 'rfa-dist-')), // far from node_modules
    env: { PATH: '/nonexistent', HOME: tmpdir(), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

function step(args: string[]) {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 170_000 });
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} failed (${result.status}):\n${result.stdout}${result.stderr}`);
}

beforeAll(() => {
  if (!existsSync(BUNDLE)) step(['scripts/build.mjs']);
  const stale = !existsSync(BIN) || statSync(BIN).mtimeMs < statSync(BUNDLE).mtimeMs;
  if (stale) step(['scripts/sea.mjs']);
}, 180_000);

describe(`single executable (dist/runs-fleet-agent-linux-${ARCH})`, () => {
  it('prints the package version, without node on PATH', () => {
    const result = bin(['--version']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  });

  it('check-config: exit 0 and the resolved config as JSON with the default environment', () => {
    const result = bin(['check-config']);
    expect(result.stderr).toBe(''); // no SEA or experimental warnings
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as { version: string; settings: Record<string, unknown>; errors: string[] };
    expect(report.version).toBe(version);
    expect(report.errors).toEqual([]);
    expect(report.settings.maxRuntimeMs).toBe(360 * 60_000);
  });

  it('check-config: exit 1 naming the variable with a bad value', () => {
    const result = bin(['check-config'], { RUNS_FLEET_MAX_RUNTIME_MINUTES: 'abc' });
    expect(result.status).toBe(1);
    expect(`${result.stdout}${result.stderr}`).toMatch(/RUNS_FLEET_MAX_RUNTIME_MINUTES="abc" is not a valid number/);
  });

  it('diagram prints the Mermaid state diagram', () => {
    const result = bin(['diagram']);
    expect(result.status).toBe(0);
    expect(result.stdout.startsWith('stateDiagram-v2')).toBe(true);
    expect(result.stdout).toContain('booting');
    expect(result.stdout).toContain('terminating');
  });

  it('is a SEA of this bundle: same answers as `node dist/runs-fleet-agent.cjs`', () => {
    const viaNode = spawnSync(process.execPath, [BUNDLE, 'diagram', '--format', 'dot'], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
    expect(bin(['diagram', '--format', 'dot']).stdout).toBe(viaNode.stdout);
  });
});
