/**
 * The runner's `_diag/*.log` files after the job: which files, in what order, redacted,
 * capped (tails kept, cut lines counted), never through a symlink or a FIFO, and the
 * log shipper actor that queues them when reporting's flush asks, to `{stream}/diag`, within its deadline.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { CloudWatchLogsClient, CreateLogStreamCommand, PutLogEventsCommand, type PutLogEventsCommandInput } from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shipperHarness } from './support/log-shipper-harness.js';
import { shipDiagLogs, type DiagSink } from '../services/logs/diag.js';
import { SecretVault } from '../services/secrets.js';

const SECRET = 'jit-secret-value-0123456789';
const GROUP = '/runs-fleet/test';
const STREAM = 'i-0123456789abcdef0/42';

let base: string;
let diag: string;

function recorder() {
  const lines: { line: string; counted: boolean }[] = [];
  let dropped = 0;
  const sink: DiagSink = {
    diagLine: (line, _ts, counted = true) => void lines.push({ line, counted }),
    countDropped: (n) => void (dropped += n),
  };
  return {
    sink,
    lines: () => lines.filter((l) => l.counted).map((l) => l.line),
    headers: () => lines.filter((l) => !l.counted).map((l) => l.line),
    dropped: () => dropped,
  };
}

/** Write a file and give it an mtime (seconds from now; negative = in the past). */
function put(name: string, text: string, ageSeconds = 0, dir = diag): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  const t = Date.now() / 1000 - ageSeconds;
  utimesSync(path, t, t);
  return path;
}

const vault = () => {
  const v = new SecretVault();
  v.set('jit_config', SECRET);
  return v;
};

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'diag-logs-test-'));
  diag = join(base, '_diag');
  mkdirSync(diag);
});

afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

describe('shipDiagLogs', () => {
  it('ships only *.log files, oldest first, each line redacted, each file introduced by an uncounted header', async () => {
    put('Worker_20261128-101600-utc.log', `[2026-11-28 10:16:00Z INFO Worker] job uses ${SECRET}\r\n[2026-11-28 10:16:01Z INFO Worker] done\n`, 10);
    put('Runner_20261128-101500-utc.log', '[2026-11-28 10:15:00Z INFO Runner] listening\n[2026-11-28 10:17:00Z INFO Runner] exiting', 20);
    put('config-args.json', JSON.stringify(['--token', SECRET]));
    put('env.txt', `PATH=/usr/bin\0SECRET=${SECRET}\0`);
    mkdirSync(join(diag, 'pages'));
    put('pages/step.log', 'a page of the job log', 0);
    const r = recorder();

    const summary = await shipDiagLogs({ dir: diag, vault: vault(), sinceMs: 0 }, r.sink);

    expect(r.lines()).toEqual([
      '[2026-11-28 10:15:00Z INFO Runner] listening',
      '[2026-11-28 10:17:00Z INFO Runner] exiting',
      '[2026-11-28 10:16:00Z INFO Worker] job uses ***',
      '[2026-11-28 10:16:01Z INFO Worker] done',
    ]);
    expect(r.headers()).toEqual([
      expect.stringMatching(/^==> _diag\/Runner_20261128-101500-utc\.log \(\d+ bytes\) <==$/),
      expect.stringMatching(/^==> _diag\/Worker_20261128-101600-utc\.log \(\d+ bytes\) <==$/),
    ]);
    expect(summary).toMatchObject({ lines: 4, cut: 0 });
    expect(summary.files.map((f) => f.name)).toEqual(['Runner_20261128-101500-utc.log', 'Worker_20261128-101600-utc.log']);
    expect(r.dropped()).toBe(0);
  });

  it('caps the total: small files whole, big files keep their tail from a line start; cut lines are counted as dropped', async () => {
    const small = Array.from({ length: 10 }, (_, i) => `small ${i}`).join('\n') + '\n'; // 80 bytes
    const bigLines = Array.from({ length: 1000 }, (_, i) => `big line ${String(i).padStart(4, '0')} ${'z'.repeat(80)}`); // 94 characters + LF
    put('Runner_1.log', small, 30);
    put('Worker_1.log', bigLines.join('\n') + '\n', 20);
    put('Worker_2.log', bigLines.join('\n') + '\n', 10);
    const r = recorder();

    const summary = await shipDiagLogs({ dir: diag, maxBytes: 10_080, sinceMs: 0 }, r.sink);

    // 80 bytes to the small file, then 5,000 for each big one: their last 52 whole lines (52 × 95 = 4,940).
    const tail = bigLines.slice(-52);
    expect(r.lines()).toEqual([...small.trimEnd().split('\n'), ...tail, ...tail]);
    expect(summary.cut).toBe(2 * (1000 - 52));
    expect(r.dropped()).toBe(2 * (1000 - 52));
    expect(summary.files.map((f) => f.kept)).toEqual([80, 52 * 95, 52 * 95]);
    expect(r.headers()[1]).toMatch(/only the last 4940 kept: diagnostics are capped at 10080 bytes/);
  });

  it('never follows a symlink (file or _diag itself), never blocks on a FIFO', async () => {
    const outside = join(base, 'secret.txt');
    writeFileSync(outside, `root-only ${SECRET}\n`);
    symlinkSync(outside, join(diag, 'Worker_evil.log'));
    execFileSync('mkfifo', [join(diag, 'Runner_fifo.log')]);
    put('Runner_ok.log', 'fine\n');
    const r = recorder();

    await shipDiagLogs({ dir: diag, sinceMs: 0 }, r.sink);
    expect(r.lines()).toEqual(['fine']);

    const linked = join(base, 'linked');
    symlinkSync(diag, linked);
    const r2 = recorder();
    const summary = await shipDiagLogs({ dir: linked, sinceMs: 0 }, r2.sink);
    expect(r2.lines()).toEqual([]);
    expect(summary.problem).toMatch(/cannot open/);
  });

  it('skips files last modified before the agent started (a runner dir baked into the AMI)', async () => {
    put('Runner_old.log', 'from the AMI build\n', 3600);
    put('Runner_new.log', 'this job\n', 0);
    const r = recorder();
    await shipDiagLogs({ dir: diag, sinceMs: Date.now() - 60_000 }, r.sink);
    expect(r.lines()).toEqual(['this job']);
  });

  it('no _diag directory, or a relative path: nothing shipped, nothing thrown', async () => {
    const r = recorder();
    expect((await shipDiagLogs({ dir: join(base, 'missing') }, r.sink)).problem).toBe('no _diag directory');
    expect((await shipDiagLogs({ dir: '_diag' }, r.sink)).problem).toMatch(/not an absolute path/);
    expect(r.lines()).toEqual([]);
  });

  it('past the deadline: nothing read, every line counted as dropped', async () => {
    put('Runner_1.log', 'a\nb\nc\n');
    put('Worker_1.log', 'd\ne');
    const r = recorder();
    const summary = await shipDiagLogs({ dir: diag, sinceMs: 0, deadlineMs: Date.now() - 1 }, r.sink);
    expect(r.lines()).toEqual([]);
    expect(summary.cut).toBe(5);
    expect(r.dropped()).toBe(5);
  });

  it('reads at most the 50 newest files; the lines of older ones are counted as dropped', async () => {
    for (let i = 0; i < 55; i++) put(`Worker_${String(i).padStart(2, '0')}.log`, `file ${i} a\nfile ${i} b\n`, 100 - i);
    const r = recorder();
    const summary = await shipDiagLogs({ dir: diag, sinceMs: 0 }, r.sink);
    expect(summary.files.map((f) => f.name)).toEqual(Array.from({ length: 50 }, (_, i) => `Worker_${String(i + 5).padStart(2, '0')}.log`));
    expect(r.lines()[0]).toBe('file 5 a');
    expect(summary.cut).toBe(10);
    expect(r.dropped()).toBe(10);
    expect(summary.problem).toMatch(/5 older diagnostic files not shipped/);
  });

  it('keeps multi-byte characters whole across read chunks', async () => {
    const line = 'é€😀'.repeat(40_000); // ~360 KB: crosses several 256 KiB reads
    put('Worker_utf8.log', `${line}\nend\n`);
    const r = recorder();
    await shipDiagLogs({ dir: diag, sinceMs: 0 }, r.sink);
    expect(r.lines()).toEqual([line, 'end']);
  });
});

describe('the log shipper actor: the diagnostics with reporting\'s flush', () => {
  let stateDir: string;
  let client: CloudWatchLogsClient;
  let cw: ReturnType<typeof mockClient>;

  const putsTo = (stream: string) =>
    cw
      .commandCalls(PutLogEventsCommand)
      .map((c) => c.args[0].input as PutLogEventsCommandInput)
      .filter((i) => i.logStreamName === stream);
  const messages = (stream: string) => putsTo(stream).flatMap((p) => p.logEvents!.map((e) => e.message!));

  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'diag-flush-test-'));
    client = new CloudWatchLogsClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    cw = mockClient(client);
    cw.on(CreateLogStreamCommand).resolves({});
    cw.on(PutLogEventsCommand).resolves({});
  });

  afterEach(() => {
    cw.restore();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const job = { parameterName: '/p', mode: 'jit' as const, isOrg: false, labels: [], runId: '42' };
  const shipping = (extra: Parameters<typeof shipperHarness>[0]['deps'] = {}, env: Record<string, string> = { RUNS_FLEET_LOG_GROUP: GROUP }) => {
    const h = shipperHarness({ client, stateDir, env, vault: vault(), deps: extra });
    h.ship({ instanceId: 'i-0123456789abcdef0', region: 'us-east-1' }, job);
    return h;
  };
  const started = async () => {
    for (let i = 0; i < 50 && cw.commandCalls(CreateLogStreamCommand).length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  };

  it('the flush that asks for them ships the diagnostics to {stream}/diag after the job log; one that does not, does not read them', async () => {
    put('Runner_20261128-101500-utc.log', `[x INFO Runner] started\n[x INFO Runner] token ${SECRET}\n`, 5);
    put('env.txt', 'HOME=/home/runner\0');
    const h = shipping();
    await started();
    for (let i = 0; i < 3; i++) h.route.runnerLine(`job line ${i}`, 1_000 + i);

    expect(await h.flush(5_000, diag)).toEqual({ shipped: 5, dropped: 0 });

    expect(messages(STREAM)).toEqual(['job line 0', 'job line 1', 'job line 2']);
    expect(messages(`${STREAM}/diag`)).toEqual([
      expect.stringMatching(/^==> _diag\/Runner_20261128-101500-utc\.log/),
      '[x INFO Runner] started',
      '[x INFO Runner] token ***',
    ]);
    const calls = cw.commandCalls(PutLogEventsCommand).map((c) => c.args[0].input.logStreamName);
    expect(calls.indexOf(`${STREAM}/diag`)).toBeGreaterThan(calls.indexOf(STREAM));
    expect(cw.commandCalls(CreateLogStreamCommand).map((c) => c.args[0].input.logStreamName)).toEqual([STREAM, `${STREAM}/agent`, `${STREAM}/diag`]);

    // The terminating flush asks for no diagnostics: the files changed meanwhile, they are not read again.
    put('Worker_late.log', 'late\n');
    expect(await h.flush(5_000)).toEqual({ shipped: 5, dropped: 0 });
    expect(messages(`${STREAM}/diag`)).toHaveLength(3);
    h.stop();
  });

  it('no diagnostics to ship: the diag stream is never created', async () => {
    const h = shipping();
    await started();
    h.route.runnerLine('only line', 1);
    expect(await h.flush(5_000, join(base, 'nothing-here'))).toEqual({ shipped: 1, dropped: 0 });
    expect(cw.commandCalls(CreateLogStreamCommand).map((c) => c.args[0].input.logStreamName)).toEqual([STREAM, `${STREAM}/agent`]);
    h.stop();
  });

  it('shipping not configured: the files are not even read, nothing is counted', async () => {
    put('Runner_1.log', 'x\n'.repeat(100));
    const h = shipping({ diagMaxBytes: 10 }, {});
    expect(await h.flush(5_000, diag)).toEqual({ shipped: 0, dropped: 0 });
    expect(cw.calls()).toHaveLength(0);
    h.stop();
  });

  it('the diagnostics share the flush deadline: with a dead endpoint, their lines are counted as dropped in time', async () => {
    put('Runner_1.log', 'a\nb\n');
    cw.on(PutLogEventsCommand).callsFake(() => new Promise(() => {}));
    const h = shipping();
    await started();
    h.route.runnerLine('job line', 1);
    const t0 = performance.now();
    expect(await h.flush(300, diag)).toEqual({ shipped: 0, dropped: 3 });
    expect(performance.now() - t0).toBeLessThan(800);
    h.stop();
  });
});
