/**
 * The shipper against a real CloudWatch Logs API (moto server): what was printed is
 * what GetLogEvents returns, line for line and in order, across batch limits, a
 * 1 MB line, an endpoint that fails for a while, a missing group and a dead endpoint.
 *
 * moto 5.2.1 enforces chronological order within a PutLogEvents call and rejects
 * events older than 14 days / newer than 2 h; it does not enforce the 10,000-event,
 * 1 MiB or 256 KiB limits, so every request is recorded here and checked against them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  GetLogEventsCommand,
  type CloudWatchLogsClientConfig,
  type PutLogEventsCommandInput,
} from '@aws-sdk/client-cloudwatch-logs';
import { createServer, request, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_MESSAGE_BYTES } from '../services/logs/events.js';
import { LogShipper, type LogShipperOptions } from '../services/logs/shipper.js';
import { MOTO_REGION, startMoto, type Moto } from './support/moto.js';

const GROUP = '/runs-fleet/integration';
let moto: Moto;
let spillDir: string;
const clients: CloudWatchLogsClient[] = [];

function logsClient(endpoint = moto.endpoint, extra: Partial<CloudWatchLogsClientConfig> = {}): { client: CloudWatchLogsClient; puts: PutLogEventsCommandInput[] } {
  const client = new CloudWatchLogsClient({
    endpoint,
    region: MOTO_REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    ...extra,
  });
  clients.push(client);
  const puts: PutLogEventsCommandInput[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'PutLogEventsCommand') puts.push(args.input as PutLogEventsCommandInput);
      return next(args);
    },
    { step: 'initialize', name: 'recordPutLogEvents' },
  );
  return { client, puts };
}

async function readBack(client: CloudWatchLogsClient, stream: string): Promise<string[]> {
  const messages: string[] = [];
  let token: string | undefined;
  for (;;) {
    const page = await client.send(new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: stream, startFromHead: true, nextToken: token }));
    for (const e of page.events ?? []) messages.push(e.message!);
    if (page.nextForwardToken === token) return messages;
    token = page.nextForwardToken;
  }
}

/** Events back into lines: a line longer than one event came back as consecutive events. */
function expectLinesInOrder(events: string[], lines: string[]): void {
  let i = 0;
  for (const [n, line] of lines.entries()) {
    const expected = line === '' ? ' ' : line;
    let got = events[i++] ?? '<missing>';
    while (got.length < expected.length && i < events.length && expected.startsWith(got)) got += events[i++];
    if (got !== expected) throw new Error(`line ${n} differs: expected ${JSON.stringify(expected.slice(0, 80))}…, got ${JSON.stringify(got.slice(0, 80))}…`);
  }
  expect(i).toBe(events.length);
}

function expectWithinLimits(puts: PutLogEventsCommandInput[]): void {
  for (const p of puts) {
    const events = p.logEvents!;
    expect(events.length).toBeLessThanOrEqual(MAX_BATCH_EVENTS);
    expect(events.reduce((n, e) => n + Buffer.byteLength(e.message!) + EVENT_OVERHEAD_BYTES, 0)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    for (const e of events) expect(Buffer.byteLength(e.message!)).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    for (let k = 1; k < events.length; k++) expect(events[k]!.timestamp!).toBeGreaterThanOrEqual(events[k - 1]!.timestamp!);
    expect(events[events.length - 1]!.timestamp! - events[0]!.timestamp!).toBeLessThan(24 * 3600_000);
  }
}

function newShipper(options: Partial<LogShipperOptions> = {}): LogShipper {
  return new LogShipper({ spillDir, retryBaseMs: 20, retryMaxMs: 200, ...options });
}

beforeAll(async () => {
  moto = await startMoto();
});

afterAll(async () => {
  await moto?.stop();
});

beforeEach(async () => {
  await moto.reset();
  spillDir = mkdtempSync(join(tmpdir(), 'log-shipper-moto-'));
  return () => {
    for (const c of clients.splice(0)) c.destroy();
    rmSync(spillDir, { recursive: true, force: true });
  };
});

describe('LogShipper against moto', () => {
  it('delivers every line, in order, including a 1 MB line and exact batch-limit boundaries', async () => {
    const { client, puts } = logsClient();
    await client.send(new CreateLogGroupCommand({ logGroupName: GROUP }));
    const shipper = newShipper({ memoryLimitBytes: 512 * 1024 }); // small bound: the spill file is used too
    const stream = 'i-0123456789abcdef0/42';

    const lines: string[] = [];
    const t0 = Date.now() - 60_000;
    let t = t0;
    const print = (line: string) => {
      lines.push(line);
      shipper.runnerLine(line, (t += 1));
    };
    print('Job started');
    print('');
    // With those two, 10,000 short lines: a batch of exactly 10,000 events.
    for (let i = 0; i < MAX_BATCH_EVENTS - 2; i++) print(`short ${i}`);
    // 1024 events of 998 bytes (+26) = exactly 1,048,576 bytes.
    for (let i = 0; i < 1024; i++) print(`${String(i).padStart(4, '0')}${'é'.repeat(497)}`);
    // A 1 MB line (with multi-byte characters) becomes several events.
    print(`BIG:${'0123456789abcdef€'.repeat(55_000)}:END`);
    for (let i = 0; i < 500; i++) print(`tail ${i} ${'z'.repeat(i)}`);

    await shipper.start({ client, logGroup: GROUP, stream });
    shipper.agentLine('{"level":"info","msg":"agent line"}', t);
    const result = await shipper.flush(15_000);
    shipper.close();

    expect(result).toEqual({ shipped: lines.length + 1, dropped: 0 });
    expectWithinLimits(puts);
    expect(puts.some((p) => p.logEvents!.length === MAX_BATCH_EVENTS)).toBe(true);
    expect(puts.some((p) => p.logEvents!.reduce((n, e) => n + Buffer.byteLength(e.message!) + EVENT_OVERHEAD_BYTES, 0) === MAX_BATCH_BYTES)).toBe(true);
    expectLinesInOrder(await readBack(client, stream), lines);
    expect(await readBack(client, `${stream}/agent`)).toEqual(['{"level":"info","msg":"agent line"}']);
  });

  it('an endpoint that fails for a while (HTTP 500) then recovers: nothing lost, order kept', async () => {
    const K = 6;
    let failed = 0;
    const proxy: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target'] ?? '');
        if (target.endsWith('.PutLogEvents') && failed < K) {
          failed++;
          res.writeHead(500, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify({ __type: 'InternalFailure', message: 'temporarily broken' }));
          return;
        }
        const upstream = request(`${moto.endpoint}${req.url}`, { method: req.method, headers: req.headers, agent: false }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        upstream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    try {
      const { client: direct } = logsClient();
      await direct.send(new CreateLogGroupCommand({ logGroupName: GROUP }));
      const { client } = logsClient(`http://127.0.0.1:${port}`, { maxAttempts: 1 });
      const warn = jest.fn<(m: string) => void>();
      const shipper = newShipper({ warn, flushIntervalMs: 50 });
      await shipper.start({ client, logGroup: GROUP, stream: 'i-0flaky/1' });
      const lines = Array.from({ length: 3000 }, (_, i) => `flaky ${i}`);
      for (const [i, line] of lines.entries()) {
        shipper.runnerLine(line, Date.now());
        if (i % 500 === 0) await new Promise((r) => setTimeout(r, 60)); // several batches, some during the outage
      }
      const result = await shipper.flush(15_000);
      shipper.close();

      expect(failed).toBe(K);
      expect(result).toEqual({ shipped: 3000, dropped: 0 });
      expect(warn.mock.calls.map((c) => c[0]).join('\n')).toMatch(/retrying/);
      expectLinesInOrder(await readBack(direct, 'i-0flaky/1'), lines);
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('a missing log group: one warning, nothing shipped, every line counted as dropped', async () => {
    const { client, puts } = logsClient();
    const warn = jest.fn<(m: string) => void>();
    const shipper = newShipper({ warn });
    shipper.runnerLine('a', Date.now());
    await shipper.start({ client, logGroup: '/does/not/exist', stream: 'i-0x/runner' });
    shipper.runnerLine('b', Date.now());
    expect(await shipper.flush(2_000)).toEqual({ shipped: 0, dropped: 2 });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/"\/does\/not\/exist" does not exist/);
    expect(puts).toHaveLength(0);
    shipper.close();
  });

  it('a dead endpoint (accepts, never answers): the flush ends by its deadline with lines dropped', async () => {
    const sockets: Socket[] = [];
    const dead = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as { port: number }).port;
    try {
      const { client } = logsClient(`http://127.0.0.1:${port}`);
      const shipper = newShipper();
      void shipper.start({ client, logGroup: GROUP, stream: 'i-0dead/1' });
      for (let i = 0; i < 100; i++) shipper.runnerLine(`lost ${i}`, Date.now());
      const started = performance.now();
      const result = await shipper.flush(1_000);
      const elapsed = performance.now() - started;
      shipper.close();
      client.destroy();

      expect(elapsed).toBeLessThan(1_500);
      expect(result.dropped).toBe(100);
      expect(result.shipped).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => dead.close(r));
    }
  });
});
