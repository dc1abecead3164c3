/**
 * The test fakes honor the real contracts: IMDS with the real SDK client, GitHub
 * release JSON + download, and the fake actions/runner scripts (output, exit codes,
 * root refusal, JIT env, process groups and signals).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import { startFakeImds, type FakeImds } from './support/fake-imds.js';
import { startFakeGitHub, type FakeGitHub } from './support/fake-github.js';
import {
  buildFakeRunnerTarball,
  extractFakeRunner,
  readConfigArgs,
  readRunnerEnv,
  sha256,
  type FakeRunnerOptions,
} from './support/fake-runner.js';

const VERSION = '2.330.0';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fake IMDS (with the real @aws-sdk/ec2-metadata-service client)', () => {
  let imds: FakeImds;
  beforeAll(async () => {
    imds = await startFakeImds({ instanceId: 'i-0123456789abcdef0', region: 'eu-west-1' });
  });
  afterAll(() => imds.close());

  it('serves instance id and region through the token flow', async () => {
    const svc = new MetadataService({ endpoint: imds.endpoint, retries: 0 });
    expect(await svc.request('latest/meta-data/instance-id', {})).toBe('i-0123456789abcdef0');
    expect(await svc.request('latest/meta-data/placement/region', {})).toBe('eu-west-1');
    // One fresh token per request.
    expect(imds.requests.slice(-4)).toEqual([
      { method: 'PUT', path: '/latest/api/token', status: 200 },
      { method: 'GET', path: '/latest/meta-data/instance-id', status: 200 },
      { method: 'PUT', path: '/latest/api/token', status: 200 },
      { method: 'GET', path: '/latest/meta-data/placement/region', status: 200 },
    ]);
  });

  it('honors AWS_EC2_METADATA_SERVICE_ENDPOINT (read when the client is constructed)', async () => {
    const saved = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.endpoint;
    try {
      const svc = new MetadataService({ retries: 0 });
      imds.setInstanceId('i-changed');
      expect(await svc.request('latest/meta-data/instance-id', {})).toBe('i-changed');
    } finally {
      if (saved === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = saved;
      imds.setInstanceId('i-0123456789abcdef0');
    }
  });

  it('requires a live token: no token or an expired one is 401', async () => {
    const path = `${imds.endpoint}/latest/meta-data/instance-id`;
    expect((await fetch(path)).status).toBe(401);
    expect((await fetch(`${imds.endpoint}/latest/api/token`, { method: 'PUT' })).status).toBe(400); // no TTL header

    const svc = new MetadataService({ endpoint: imds.endpoint, retries: 0 });
    const token = await svc.fetchMetadataToken();
    const withToken = () => fetch(path, { headers: { 'x-aws-ec2-metadata-token': token } });
    expect((await withToken()).status).toBe(200);
    imds.expireTokens();
    expect((await withToken()).status).toBe(401);

    // The client, told to use that token, gets the 401 as $metadata.httpStatusCode...
    const pinned = new MetadataService({ endpoint: imds.endpoint, retries: 0, disableFetchToken: true });
    await expect(
      pinned.request('latest/meta-data/instance-id', { headers: { 'x-aws-ec2-metadata-token': token } }),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 401 } });
    // ...while the default client recovers by itself: it fetches a new token for every request.
    expect(await svc.request('latest/meta-data/instance-id', {})).toBe('i-0123456789abcdef0');
  });

  it('spot instance-action: 404 (not retried) until set, then JSON', async () => {
    const svc = new MetadataService({ endpoint: imds.endpoint }); // default retries: a 404 is not retried
    const before = imds.requests.length;
    await expect(svc.request('latest/meta-data/spot/instance-action', {})).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
    expect(imds.requests.length - before).toBe(2); // token + one GET
    await expect(svc.request('latest/meta-data/events/recommendations/rebalance', {})).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });

    imds.setSpotAction({ action: 'terminate', time: '2025-01-01T12:02:00Z' });
    imds.setRebalance('2025-01-01T12:00:00Z');
    try {
      const body = await svc.request('latest/meta-data/spot/instance-action', {});
      expect(JSON.parse(body)).toEqual({ action: 'terminate', time: '2025-01-01T12:02:00Z' });
      const rebalance = await svc.request('latest/meta-data/events/recommendations/rebalance', {});
      expect(JSON.parse(rebalance)).toEqual({ noticeTime: '2025-01-01T12:00:00Z' });
    } finally {
      imds.setSpotAction(null);
      imds.setRebalance(null);
    }
  });

  it('down = 503; hang = no answer (only a client timeout ends it)', async () => {
    imds.setDown(true);
    const svc = new MetadataService({ endpoint: imds.endpoint, retries: 0 });
    await expect(svc.request('latest/meta-data/instance-id', {})).rejects.toMatchObject({
      $metadata: { httpStatusCode: 503 },
    });
    imds.setDown(false);

    imds.setHang(true);
    const timed = new MetadataService({ endpoint: imds.endpoint, retries: 0, httpOptions: { timeout: 200 } });
    const started = Date.now();
    await expect(timed.request('latest/meta-data/instance-id', {})).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2000);
    imds.setHang(false);
  });
});

describe('fake GitHub', () => {
  let tarball: Buffer;
  let gh: FakeGitHub;
  beforeAll(async () => {
    tarball = await buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed' });
    gh = await startFakeGitHub({ version: VERSION, tarballs: { x64: tarball, arm64: tarball } });
  });
  afterAll(() => gh.close());

  it('release JSON digest and body markers match the bytes served at browser_download_url', async () => {
    const latest = (await (await fetch(`${gh.apiUrl}/repos/actions/runner/releases/latest`)).json()) as {
      tag_name: string;
      body: string;
      assets: { name: string; browser_download_url: string; digest?: string; size: number }[];
    };
    const byTag = await (await fetch(`${gh.apiUrl}/repos/actions/runner/releases/tags/v${VERSION}`)).json();
    expect(byTag).toEqual(latest);
    expect(latest.tag_name).toBe(`v${VERSION}`);
    const asset = latest.assets.find((a) => a.name === `actions-runner-linux-x64-${VERSION}.tar.gz`)!;
    expect(asset.browser_download_url).toBe(
      `${gh.webUrl}/actions/runner/releases/download/v${VERSION}/actions-runner-linux-x64-${VERSION}.tar.gz`,
    );
    expect(asset.digest).toBe(`sha256:${sha256(tarball)}`);
    expect(asset.size).toBe(tarball.length);
    expect(latest.body).toContain(`<!-- BEGIN SHA linux-x64 -->${sha256(tarball)}<!-- END SHA linux-x64 -->`);

    const res = await fetch(asset.browser_download_url); // follows the 302 to /_objects/...
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await res.arrayBuffer()).equals(tarball)).toBe(true);
    expect(gh.requests.slice(-2).map((r) => r.path)).toEqual([
      `/actions/runner/releases/download/v${VERSION}/actions-runner-linux-x64-${VERSION}.tar.gz`,
      `/_objects/x64/actions-runner-linux-x64-${VERSION}.tar.gz?sig=fake`,
    ]);

    const missing = await fetch(`${gh.apiUrl}/repos/actions/runner/releases/tags/v9.9.9`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ message: 'Not Found' });
  });

  it('failNext fails exactly the next n requests, with the given headers', async () => {
    gh.failNext(2, 429, { 'retry-after': '1' });
    const url = `${gh.apiUrl}/repos/actions/runner/releases/latest`;
    const first = await fetch(url);
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('1');
    expect((await fetch(url)).status).toBe(429);
    expect((await fetch(url)).status).toBe(200);
  });

  it('checksum modes: wrong digest, none', async () => {
    for (const checksum of ['wrong', 'none'] as const) {
      const other = await startFakeGitHub({ version: VERSION, tarballs: { x64: tarball }, checksum });
      try {
        const rel = (await (await fetch(`${other.apiUrl}/repos/actions/runner/releases/latest`)).json()) as {
          body: string;
          assets: { digest?: string }[];
        };
        expect(rel.body).not.toContain('BEGIN SHA');
        if (checksum === 'none') expect(rel.assets[0]!.digest).toBeUndefined();
        else expect(rel.assets[0]!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(rel.assets[0]!.digest).not.toBe(`sha256:${sha256(tarball)}`);
      } finally {
        await other.close();
      }
    }
  });

  it('setHang holds requests; setThrottle slows the body; close() ends hanging connections', async () => {
    const url = `${gh.webUrl}/actions/runner/releases/download/v${VERSION}/actions-runner-linux-x64-${VERSION}.tar.gz`;
    gh.setHang(true);
    await expect(fetch(url, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
    gh.setHang(false);

    gh.setThrottle(Math.ceil(tarball.length / 0.4)); // ≈ 0.4 s for the whole body
    const started = Date.now();
    const body = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(body.equals(tarball)).toBe(true);
    gh.setThrottle(undefined);

    const other = await startFakeGitHub({ version: VERSION, tarballs: { x64: tarball } });
    other.setHang(true);
    const pending = fetch(`${other.apiUrl}/repos/actions/runner/releases/latest`).catch((e: unknown) => e);
    await sleep(50);
    await other.close(); // must not wait for the hanging request
    expect(String(await pending)).toMatch(/fetch failed/); // (an Error of another realm: no toBeInstanceOf)
  });
});

// ---------------------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}
interface Running {
  pid: number;
  stdout(): string;
  /** Resolves when the process exited AND every holder of its stdout/stderr is gone. */
  done: Promise<RunResult>;
}

/** Runs a script in its own session/process group (like the agent does), with a clean env. */
function start(dir: string, script: string, args: string[], env: Record<string, string>): Running {
  const child = spawn('bash', [join(dir, script), ...args], {
    cwd: dir,
    detached: true,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<RunResult>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { pid: child.pid!, stdout: () => stdout, done };
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Live (non-zombie) processes of a session, with their process group. */
function sessionProcesses(sid: number): { pid: number; pgid: number; cmd: string }[] {
  const ps = spawnSync('ps', ['-e', '-o', 'pid=,pgid=,sid=,stat=,args='], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 5 && Number(f[2]) === sid && !f[3]!.startsWith('Z'))
    .map((f) => ({ pid: Number(f[0]), pgid: Number(f[1]), cmd: f.slice(4).join(' ') }));
}

const TS = '\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}Z';
const ROOT_OK = { RUNNER_ALLOW_RUNASROOT: '1' };
const JIT = { ...ROOT_OK, ACTIONS_RUNNER_INPUT_JITCONFIG: 'c2VjcmV0LWppdC1jb25maWc=' };

describe('fake actions/runner', () => {
  let tarball: Buffer;
  const dirs: string[] = [];
  beforeAll(async () => {
    tarball = await buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed', jobSeconds: 0.1 });
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** Extracts the tarball into a fresh dir; `override` is written as .fake-runner.override.json. */
  async function install(override?: Partial<FakeRunnerOptions>): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'fake-runner-test-'));
    dirs.push(dir);
    await extractFakeRunner(tarball, dir, override);
    return dir;
  }

  it('has the real layout at the archive root, and the version in the deps file', async () => {
    const list = spawnSync('tar', ['-tzvf', '-'], { input: tarball, encoding: 'utf8' }).stdout;
    expect(list).toMatch(/^-rwxr-xr-x .* \.\/config\.sh$/m);
    expect(list).toMatch(/^-rwxr-xr-x .* \.\/run\.sh$/m);
    expect(list).toMatch(/^-rwxr-xr-x .* \.\/bin\/Runner\.Listener$/m);
    const dir = await install();
    expect(await readFile(join(dir, 'bin/Runner.Listener.deps.json'), 'utf8')).toContain(`"Runner.Listener/${VERSION}"`);
    expect(await buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed', jobSeconds: 0.1 })).toEqual(tarball);
  });

  it("'succeed' with JIT in env: the runner's lines in order, exit 0, JIT removed from the job env", async () => {
    const dir = await install();
    const r = await start(dir, 'run.sh', [], JIT).done;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^√ Connected to GitHub\\n\\n(.*\\n)*${TS}: Listening for Jobs\\n${TS}: Running job: build\\n` +
          `${TS}: Job build completed with result: Succeeded\\n(.*\\n)*$`,
      ),
    );
    const env = await readRunnerEnv(dir);
    expect(env.RUNNER_ALLOW_RUNASROOT).toBe('1');
    expect(env.ACTIONS_RUNNER_INPUT_JITCONFIG).toBeUndefined();
    expect(await readFile(join(dir, '_diag/env.txt'), 'utf8')).not.toContain(JIT.ACTIONS_RUNNER_INPUT_JITCONFIG);
    expect((await readdir(join(dir, '_diag'))).some((f) => /^Runner_\d{8}-\d{6}-utc\.log$/.test(f))).toBe(true);
  });

  it("'fail' and 'lines': run.sh still exits 0; lines are printed exactly, without exponents", async () => {
    const failed = await start(await install({ behavior: 'fail', jobName: 'test suite' }), 'run.sh', [], JIT).done;
    expect(failed.code).toBe(0);
    expect(failed.stdout).toMatch(new RegExp(`${TS}: Job test suite completed with result: Failed\\n`));

    const n = 1_000_001;
    const lines = await start(await install({ behavior: 'lines', lines: n }), 'run.sh', [], JIT).done;
    expect(lines.code).toBe(0);
    const out = lines.stdout.split('\n');
    const first = out.indexOf('line 1');
    expect(out[first + 999_999]).toBe('line 1000000');
    expect(out[first + n - 1]).toBe(`line ${n}`);
    expect(out[first + n]).toMatch(new RegExp(`^${TS}: Job build completed with result: Succeeded$`));
  });

  it('refuses to run unconfigured, as root without RUNNER_ALLOW_RUNASROOT, and on crash', async () => {
    const dir = await install();
    const unconfigured = await start(dir, 'run.sh', [], ROOT_OK).done;
    expect(unconfigured.code).toBe(0); // the listener's 1, mapped to 0 like run-helper.sh.template
    expect(unconfigured.stdout).toContain('Runner listener exit with terminated error, stop the service, no retry needed.');
    expect(unconfigured.stderr).toContain('An error occurred: Not configured. Run config.sh to configure the runner.');

    const asRoot = await start(dir, 'run.sh', [], { ACTIONS_RUNNER_INPUT_JITCONFIG: 'x' }).done;
    expect(asRoot.code).toBe(1);
    expect(asRoot.stderr).toContain('Must not run with sudo');
    const configAsRoot = await start(dir, 'config.sh', ['--unattended', '--url', 'u', '--token', 't'], {}).done;
    expect(configAsRoot.code).toBe(1);

    const crash = await start(await install({ behavior: 'crash' }), 'run.sh', [], JIT).done;
    expect(crash.code).toBe(0);
    expect(crash.stderr).toContain('An error occurred: fake crash');
    expect(crash.stdout).not.toContain('Listening for Jobs');
  });

  it('config.sh records its args, writes .runner; run.sh then runs from .runner', async () => {
    const dir = await install();
    const bad = await start(dir, 'config.sh', ['--unattended', '--url', 'https://github.com/acme/app'], ROOT_OK).done;
    expect(bad.code).toBe(1);

    const args = ['--unattended', '--url', 'https://github.com/acme/app', '--token', 'REGTOKEN', '--name', 'i-1',
      '--labels', 'self-hosted,linux', '--runnergroup', 'default', '--work', '_work', '--ephemeral', '--disableupdate',
      '--replace'];
    const ok = await start(dir, 'config.sh', args, ROOT_OK).done;
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('√ Runner successfully added');
    expect(ok.stdout).toContain('√ Settings Saved.');
    expect(await readConfigArgs(dir)).toEqual(args);
    const runner = JSON.parse(await readFile(join(dir, '.runner'), 'utf8'));
    expect(runner).toMatchObject({ agentName: 'i-1', gitHubUrl: 'https://github.com/acme/app', ephemeral: true });
    expect(await readFile(join(dir, '.credentials'), 'utf8')).not.toContain('REGTOKEN');

    const run = await start(dir, 'run.sh', [], ROOT_OK).done;
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('completed with result: Succeeded');
  });

  it("'hang' + SIGTERM to the group: Canceled, and nothing of the group survives", async () => {
    const dir = await install({ behavior: 'hang' });
    const r = start(dir, 'run.sh', [], JIT);
    await waitFor(() => r.stdout().includes('Running job: build'), 'job start');
    await waitFor(() => sessionProcesses(r.pid).some((p) => p.cmd.startsWith('sleep')), 'the worker');
    process.kill(-r.pid, 'SIGTERM');
    const res = await r.done;
    expect(res.stdout).toContain('The runner has received a shutdown signal.');
    expect(res.stdout).toMatch(new RegExp(`${TS}: Job build completed with result: Canceled\\n`));
    expect(sessionProcesses(r.pid)).toEqual([]);
  });

  it('RUNNER_MANUALLY_TRAP_SIG=1: run.sh forwards SIGINT to the listener, which has its OWN process group', async () => {
    const dir = await install({ behavior: 'hang' });
    const r = start(dir, 'run.sh', [], { ...JIT, RUNNER_MANUALLY_TRAP_SIG: '1' });
    await waitFor(() => r.stdout().includes('Running job: build'), 'job start');
    const listener = sessionProcesses(r.pid).find((p) => p.cmd.includes('Runner.Listener'))!;
    expect(listener.pgid).not.toBe(r.pid); // like the real run.sh (set -m): signal the group AND the session
    process.kill(r.pid, 'SIGTERM'); // run.sh alone
    const res = await r.done;
    expect(res.code).toBe(143); // like the real run.sh: the trapped TERM ends it with 128 + 15, once the listener is done
    expect(res.stdout).toMatch(/Exiting runner\.\.\.\n(.*\n)*.*completed with result: Canceled\n$/); // the listener's last lines after run.sh's
    expect(sessionProcesses(r.pid)).toEqual([]);
  });

  it("'ignore-sigterm' survives SIGTERM and dies on SIGKILL of the group", async () => {
    const dir = await install({ behavior: 'ignore-sigterm' });
    const r = start(dir, 'run.sh', [], JIT);
    await waitFor(() => r.stdout().includes('Running job: build'), 'job start');
    process.kill(-r.pid, 'SIGTERM');
    await sleep(300);
    const alive = sessionProcesses(r.pid);
    expect(alive.some((p) => p.cmd.includes('Runner.Listener'))).toBe(true);
    expect(alive.some((p) => p.cmd.startsWith('sleep'))).toBe(true);
    process.kill(-r.pid, 'SIGKILL');
    const res = await r.done;
    expect(res.stdout).not.toContain('completed with result');
    await waitFor(() => sessionProcesses(r.pid).length === 0, 'group gone', 2000);
  });

  it("'no-job' listens until signalled (SIGINT), then exits 0 without a job result", async () => {
    const dir = await install({ behavior: 'no-job' });
    const r = start(dir, 'run.sh', [], JIT);
    await waitFor(() => r.stdout().includes('Listening for Jobs'), 'listening');
    await sleep(100);
    process.kill(-r.pid, 'SIGINT');
    const res = await r.done;
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('The runner has received a shutdown signal.');
    expect(res.stdout).not.toContain('Running job');
    expect(sessionProcesses(r.pid)).toEqual([]);
  });
  describe('behaviours of v2.336.0 that are easy to get wrong (runner-and-aws-facts.md)', () => {
    const DEPRECATED = `An error occurred: Runner version v${VERSION} is deprecated and cannot receive messages.`;

    it("'deprecated': the line on stderr after Listening; exit 7 with ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1, else 0", async () => {
      const dir = await install({ behavior: 'deprecated' });
      const withVariable = await start(dir, 'run.sh', [], { ...JIT, ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE: '1' }).done;
      expect(withVariable.code).toBe(7);
      expect(withVariable.stderr).toContain(DEPRECATED);
      expect(withVariable.stdout).toMatch(/Listening for Jobs[\s\S]*Runner listener exit with deprecated version exit code: 7\./);
      const without = await start(dir, 'run.sh', [], JIT).done;
      expect(without.code).toBe(0);
      expect(without.stderr).toContain(DEPRECATED);
      expect(without.stdout).toContain('Runner listener exit with terminated error');
    });

    it("'session-exists': the line on stderr, and it keeps retrying (no exit)", async () => {
      const r = start(await install({ behavior: 'session-exists' }), 'run.sh', [], JIT);
      await sleep(500);
      expect(sessionProcesses(r.pid).length).toBeGreaterThan(0); // still retrying
      process.kill(-r.pid, 'SIGINT');
      const res = await r.done;
      expect(res.stderr).toContain('A session for this runner already exists.');
      expect(res.stdout).not.toContain('Listening for Jobs');
    });

    it("'runner-gone': listens, then the line on stderr and exit 0 with no job", async () => {
      const res = await start(await install({ behavior: 'runner-gone' }), 'run.sh', [], JIT).done;
      expect(res.code).toBe(0);
      expect(res.stderr).toContain('The runner no longer exists on the server. Cleaning up local configuration.');
      expect(res.stdout).toContain('Listening for Jobs');
      expect(res.stdout).not.toContain('Running job');
    });

    it("'hang-after-result': the result line, then the listener stays until signalled (no Canceled line)", async () => {
      const r = start(await install({ behavior: 'hang-after-result' }), 'run.sh', [], JIT);
      await waitFor(() => r.stdout().includes('completed with result: Succeeded'), 'result line');
      await sleep(300);
      expect(sessionProcesses(r.pid).length).toBeGreaterThan(0);
      process.kill(-r.pid, 'SIGINT');
      const res = await r.done;
      expect(res.stdout).not.toContain('completed with result: Canceled');
      expect(sessionProcesses(r.pid)).toEqual([]);
    });
  });
});
