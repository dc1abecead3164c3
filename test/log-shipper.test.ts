import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  CloudWatchLogsClient,
  CreateLogStreamCommand,
  InvalidParameterException,
  PutLogEventsCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  ThrottlingException,
  type PutLogEventsCommandInput,
} from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtempSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EVENT_OVERHEAD_BYTES,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  MAX_EVENT_MESSAGE_BYTES,
  splitUtf8,
} from '../services/logs/events.js';
import { LogShipper, streamName, type LogShipperOptions, MAX_CALL_ATTEMPTS, RECLAIM_AFTER_BYTES } from '../services/logs/shipper.js';

const GROUP = '/runs-fleet/test';
const STREAM = 'i-0123456789abcdef0/42';

let spillDir: string;
let client: CloudWatchLogsClient;
let cw: ReturnType<typeof mockClient>;
const shippers: LogShipper[] = [];

function shipper(options: Partial<LogShipperOptions> = {}): LogShipper {
  const s = new LogShipper({ spillDir, retryBaseMs: 5, retryMaxMs: 20, ...options });
  shippers.push(s);
  return s;
}

function puts(stream = STREAM): PutLogEventsCommandInput[] {
  return cw
    .commandCalls(PutLogEventsCommand)
    .map((c) => c.args[0].input as PutLogEventsCommandInput)
    .filter((i) => i.logStreamName === stream);
}

function shippedMessages(stream = STREAM): string[] {
  return puts(stream).flatMap((p) => p.logEvents!.map((e) => e.message!));
}

function batchBytes(input: PutLogEventsCommandInput): number {
  return input.logEvents!.reduce((n, e) => n + Buffer.byteLength(e.message!) + EVENT_OVERHEAD_BYTES, 0);
}

beforeEach(() => {
  spillDir = mkdtempSync(join(tmpdir(), 'log-shipper-test-'));
  client = new CloudWatchLogsClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  cw = mockClient(client);
  cw.on(CreateLogStreamCommand).resolves({});
  cw.on(PutLogEventsCommand).resolves({});
});

afterEach(() => {
  for (const s of shippers.splice(0)) s.close();
  cw.restore();
  rmSync(spillDir, { recursive: true, force: true });
});

describe('streamName', () => {
  it('is {instance-id}/{run-id | job-id | "runner"}', () => {
    expect(streamName('i-0abc', '42', '4242')).toBe('i-0abc/42');
    expect(streamName('i-0abc', undefined, '4242')).toBe('i-0abc/4242');
    expect(streamName('i-0abc')).toBe('i-0abc/runner');
    expect(streamName('i-0abc', 'a:b*c')).toBe('i-0abc/a_b_c');
  });
});

describe('splitUtf8', () => {
  it('never cuts a character and never exceeds the byte limit', () => {
    const line = 'é€😀a'.repeat(50_000);
    const pieces = splitUtf8(line, 1000);
    expect(pieces.join('')).toBe(line);
    for (const p of pieces) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(1000);
    expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
  });
});

describe('LogShipper', () => {
  it('creates the runner stream and the sibling agent stream; "already exists" is fine', async () => {
    cw.on(CreateLogStreamCommand).rejects(new ResourceAlreadyExistsException({ message: 'exists', $metadata: {} }));
    const s = shipper();
    s.runnerLine('hello', 1_000);
    s.agentLine('{"msg":"agent"}', 1_001);
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    const result = await s.flush(2_000);

    const created = cw.commandCalls(CreateLogStreamCommand).map((c) => c.args[0].input.logStreamName);
    expect(created).toEqual([STREAM, `${STREAM}/agent`]);
    expect(shippedMessages()).toEqual(['hello']);
    expect(shippedMessages(`${STREAM}/agent`)).toEqual(['{"msg":"agent"}']);
    expect(result).toEqual({ shipped: 2, dropped: 0 });
  });

  it('buffers lines received before start() and ships them once started', async () => {
    const s = shipper();
    for (let i = 0; i < 100; i++) s.runnerLine(`early ${i}`, 1_000 + i);
    expect(cw.commandCalls(PutLogEventsCommand)).toHaveLength(0);
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    await s.flush(2_000);
    expect(shippedMessages()).toEqual(Array.from({ length: 100 }, (_, i) => `early ${i}`));
  });

  it('a missing log group: one clear warning, shipping disabled, lines counted as dropped', async () => {
    cw.on(CreateLogStreamCommand).rejects(new ResourceNotFoundException({ message: 'The specified log group does not exist.', $metadata: {} }));
    const warn = jest.fn<(m: string) => void>();
    const s = shipper({ warn });
    s.runnerLine('before', 1);
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    s.runnerLine('after', 2);
    s.agentLine('agent after', 3);
    const result = await s.flush(1_000);

    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/Logs group "\/runs-fleet\/test" does not exist.*disabled/);
    expect(cw.commandCalls(PutLogEventsCommand)).toHaveLength(0);
    expect(result).toEqual({ shipped: 0, dropped: 3 });
  });

  it('never puts more than 10,000 events in one PutLogEvents', async () => {
    const s = shipper({ memoryLimitBytes: 64 * 1024 * 1024 });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    for (let i = 0; i < 25_001; i++) s.runnerLine(`l${i}`, 1_000);
    await s.flush(5_000);

    expect(puts().map((p) => p.logEvents!.length)).toEqual([10_000, 10_000, 5_001]);
    expect(shippedMessages()).toEqual(Array.from({ length: 25_001 }, (_, i) => `l${i}`));
    expect(s.shipped).toBe(25_001);
  });

  it('fills a batch to exactly 1,048,576 bytes (UTF-8 + 26 per event) and not one byte more', async () => {
    const s = shipper({ memoryLimitBytes: 64 * 1024 * 1024 });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    // 1024 events of 998 bytes + 26 = exactly 1 MiB; one more event goes to the next batch.
    const line = (i: number) => `${String(i).padStart(4, '0')}${'é'.repeat(497)}`; // 4 + 994 bytes
    for (let i = 0; i < 1025; i++) s.runnerLine(line(i), 1_000);
    await s.flush(5_000);

    const batches = puts();
    expect(batches.map((b) => b.logEvents!.length)).toEqual([1024, 1]);
    expect(batchBytes(batches[0]!)).toBe(MAX_BATCH_BYTES);
    expect(shippedMessages()).toEqual(Array.from({ length: 1025 }, (_, i) => line(i)));
  });

  it('splits an event above the per-event limit into several, in order, counted as one line', async () => {
    const s = shipper({ memoryLimitBytes: 64 * 1024 * 1024 });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    const huge = `start-${'x€'.repeat(300_000)}-end`; // ~1.2 MB
    s.runnerLine('before', 1_000);
    s.runnerLine(huge, 1_001);
    s.runnerLine('after', 1_002);
    const result = await s.flush(5_000);

    const messages = shippedMessages();
    expect(messages[0]).toBe('before');
    expect(messages[messages.length - 1]).toBe('after');
    const pieces = messages.slice(1, -1);
    expect(pieces.length).toBeGreaterThan(4);
    expect(pieces.join('')).toBe(huge);
    for (const p of pieces) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    for (const b of puts()) {
      expect(batchBytes(b)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
      expect(b.logEvents!.length).toBeLessThanOrEqual(MAX_BATCH_EVENTS);
    }
    expect(result).toEqual({ shipped: 3, dropped: 0 });
  });

  it('keeps chronological order: an earlier timestamp is clamped to its predecessor; a batch spans < 24 h', async () => {
    const s = shipper();
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    const t0 = Date.UTC(2025, 0, 1);
    s.runnerLine('a', t0 + 500);
    s.runnerLine('b', t0 + 100); // clock went back
    s.runnerLine('c', t0 + 600);
    s.runnerLine('d', t0 + 25 * 3600_000); // a day later
    await s.flush(2_000);

    const batches = puts();
    expect(batches.map((b) => b.logEvents!.map((e) => [e.message, e.timestamp]))).toEqual([
      [
        ['a', t0 + 500],
        ['b', t0 + 500],
        ['c', t0 + 600],
      ],
      [['d', t0 + 25 * 3600_000]],
    ]);
  });

  it('ships an empty line as a single space (CloudWatch refuses empty messages)', async () => {
    const s = shipper();
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    s.runnerLine('', 1);
    await s.flush(1_000);
    expect(shippedMessages()).toEqual([' ']);
  });

  it('retries ThrottlingException and 5xx with backoff, then delivers in order', async () => {
    const warn = jest.fn<(m: string) => void>();
    cw.on(PutLogEventsCommand)
      .rejectsOnce(new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } }))
      .rejectsOnce(Object.assign(new Error('Internal'), { name: 'InternalFailure', $metadata: { httpStatusCode: 500 } }))
      .resolves({});
    const s = shipper({ warn });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    for (let i = 0; i < 10; i++) s.runnerLine(`line ${i}`, 1_000 + i);
    const result = await s.flush(5_000);

    expect(cw.commandCalls(PutLogEventsCommand)).toHaveLength(3);
    expect(puts()[2]!.logEvents!.map((e) => e.message)).toEqual(Array.from({ length: 10 }, (_, i) => `line ${i}`));
    expect(result).toEqual({ shipped: 10, dropped: 0 });
    expect(warn.mock.calls.map((c) => c[0]).join('\n')).toMatch(/retrying/);
    expect(s.retries).toBe(2);
  });

  it('retries are bounded: a batch that keeps failing is dropped and counted after MAX_CALL_ATTEMPTS, and shipping goes on', async () => {
    const warn = jest.fn<(m: string) => void>();
    const failing = Array.from({ length: MAX_CALL_ATTEMPTS }, () => Object.assign(new Error('Internal'), { name: 'InternalFailure', $metadata: { httpStatusCode: 500 } }));
    let put = cw.on(PutLogEventsCommand);
    for (const error of failing) put = put.rejectsOnce(error);
    put.resolves({});
    const s = shipper({ warn, retryBaseMs: 1, retryMaxMs: 2 });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    s.runnerLine('doomed', 1);
    await s.flush(5_000);
    s.runnerLine('later', 2);
    expect(await s.flush(5_000)).toEqual({ shipped: 1, dropped: 1 });
    expect(cw.commandCalls(PutLogEventsCommand)).toHaveLength(MAX_CALL_ATTEMPTS + 1);
    expect(s.retries).toBe(MAX_CALL_ATTEMPTS - 1);
    expect(warn.mock.calls.map((c) => c[0]).join('\n')).toMatch(new RegExp(`failed ${MAX_CALL_ATTEMPTS} times .*1 lines dropped`));
  });

  it('a stream that cannot be created after MAX_CALL_ATTEMPTS tries disables shipping (lines counted as dropped)', async () => {
    cw.on(CreateLogStreamCommand).rejects(Object.assign(new Error('Internal'), { name: 'InternalFailure', $metadata: { httpStatusCode: 500 } }));
    const warn = jest.fn<(m: string) => void>();
    const s = shipper({ warn, retryBaseMs: 1, retryMaxMs: 2 });
    s.runnerLine('x', 1);
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    expect(await s.flush(5_000)).toEqual({ shipped: 0, dropped: 1 });
    expect(cw.commandCalls(CreateLogStreamCommand)).toHaveLength(MAX_CALL_ATTEMPTS);
    expect(warn.mock.calls.map((c) => c[0]).join('\n')).toMatch(/failed 8 times: log shipping is disabled/);
  });

  it('retries CreateLogStream on throttling before shipping', async () => {
    cw.on(CreateLogStreamCommand)
      .rejectsOnce(new ThrottlingException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } }))
      .resolves({});
    const s = shipper();
    s.runnerLine('x', 1);
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    await s.flush(2_000);
    expect(shippedMessages()).toEqual(['x']);
  });

  it('drops and counts a batch CloudWatch refuses outright, and carries on', async () => {
    const warn = jest.fn<(m: string) => void>();
    cw.on(PutLogEventsCommand)
      .rejectsOnce(new InvalidParameterException({ message: 'bad', $metadata: { httpStatusCode: 400 } }))
      .resolves({});
    const s = shipper({ warn });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    s.runnerLine('refused', 1);
    await s.flush(1_000);
    s.runnerLine('accepted', 2);
    const result = await s.flush(1_000);
    expect(result).toEqual({ shipped: 1, dropped: 1 });
    expect(warn.mock.calls[0]![0]).toMatch(/batch of 1 events was refused/);
  });

  it('counts events CloudWatch rejects as too old or too new as dropped', async () => {
    cw.on(PutLogEventsCommand).resolves({ rejectedLogEventsInfo: { tooOldLogEventEndIndex: 0, tooNewLogEventStartIndex: 3 } });
    const s = shipper();
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    for (let i = 0; i < 5; i++) s.runnerLine(`l${i}`, 1_000 + i);
    expect(await s.flush(1_000)).toEqual({ shipped: 2, dropped: 3 });
  });

  it('spills above the memory bound to a file and ships from it, in order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    cw.on(PutLogEventsCommand).callsFake(async () => {
      await gate; // CloudWatch is slow: everything piles up
      return {};
    });
    const s = shipper({ memoryLimitBytes: 256 * 1024 });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    const lines = Array.from({ length: 60_000 }, (_, i) => `line ${i} ${'y'.repeat(i % 50)}${i % 1000 === 0 ? '\n(embedded newline)' : ''}`);
    lines.forEach((l, i) => s.runnerLine(l, 1_000 + Math.floor(i / 10)));

    const spilled = readdirSync(spillDir).map((f) => statSync(join(spillDir, f)).size);
    expect(spilled.reduce((a, b) => a + b, 0)).toBeGreaterThan(1024 * 1024);
    release();
    const result = await s.flush(10_000);

    expect(shippedMessages()).toEqual(lines);
    expect(result).toEqual({ shipped: 60_000, dropped: 0 });
    const timestamps = puts().flatMap((p) => p.logEvents!.map((e) => e.timestamp!));
    expect(timestamps.every((t, i) => i === 0 || t >= timestamps[i - 1]!)).toBe(true);
    // Spill file read back entirely: emptied.
    expect(readdirSync(spillDir).map((f) => statSync(join(spillDir, f)).size)).toEqual(readdirSync(spillDir).map(() => 0));
  });

  it('a spilled event larger than the write buffer (escaped newlines) comes back intact', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    cw.on(PutLogEventsCommand).callsFake(async () => {
      await gate;
      return {};
    });
    const s = shipper({ memoryLimitBytes: 1024 });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    const big = 'multi\nline\n'.repeat(20_000); // JSON-escaped in the spill file: > 256 KiB per record
    const lines = ['first', big, 'last'];
    for (const l of lines) s.runnerLine(l, 1);
    release();
    await s.flush(5_000);
    expect(shippedMessages().join('')).toBe(lines.join(''));
  });

  it('a spill dir that cannot be written: lines above the bound are dropped, counted, warned once', async () => {
    cw.on(PutLogEventsCommand).callsFake(() => new Promise(() => {}));
    const warn = jest.fn<(m: string) => void>();
    const notADir = join(spillDir, 'file');
    writeFileSync(notADir, '');
    const s = shipper({ spillDir: join(notADir, 'sub'), memoryLimitBytes: 10 * 1024, warn });
    for (let i = 0; i < 1000; i++) s.runnerLine(`line ${i} ${'p'.repeat(50)}`, 1);
    expect(s.dropped).toBeGreaterThan(800);
    expect(s.dropped + s.pending).toBe(1000);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/spill/);
  });

  it('flush with a never-answering endpoint returns by its deadline and counts what is left as dropped', async () => {
    cw.on(PutLogEventsCommand).callsFake(() => new Promise(() => {}));
    const s = shipper();
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    for (let i = 0; i < 500; i++) s.runnerLine(`l${i}`, 1_000);
    s.agentLine('agent', 1_000);
    const started = performance.now();
    const result = await s.flush(300);
    const elapsed = performance.now() - started;

    expect(elapsed).toBeLessThan(600);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(result).toEqual({ shipped: 0, dropped: 501 });
    expect(s.pending).toBe(0);
  });

  it('flush with the stream never created (endpoint down) also ends by the deadline', async () => {
    cw.on(CreateLogStreamCommand).callsFake(() => new Promise(() => {}));
    const s = shipper();
    void s.start({ client, logGroup: GROUP, stream: STREAM });
    s.runnerLine('a', 1);
    const started = performance.now();
    expect(await s.flush(200)).toEqual({ shipped: 0, dropped: 1 });
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('the flush signal ends it early, as a deadline would', async () => {
    cw.on(PutLogEventsCommand).callsFake(() => new Promise(() => {}));
    const s = shipper();
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    s.runnerLine('a', 1);
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const started = performance.now();
    expect(await s.flush(10_000, ctl.signal)).toEqual({ shipped: 0, dropped: 1 });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('ships in the background every flushIntervalMs, and at once when a batch is full', async () => {
    const s = shipper({ flushIntervalMs: 50 });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    s.runnerLine('by time', 1);
    await new Promise((r) => setTimeout(r, 150));
    expect(shippedMessages()).toEqual(['by time']);

    s.stop(); // no timer now: only a full batch goes by itself
    for (let i = 0; i < MAX_BATCH_EVENTS; i++) s.runnerLine(`f${i}`, 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(puts()).toHaveLength(2);
    expect(puts()[1]!.logEvents).toHaveLength(MAX_BATCH_EVENTS);
  });

  it('stop() keeps what is queued for flush()', async () => {
    const s = shipper({ flushIntervalMs: 60_000 });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    s.runnerLine('kept', 1);
    s.stop();
    expect(s.pending).toBe(1);
    expect(await s.flush(1_000)).toEqual({ shipped: 1, dropped: 0 });
  });

  it('never started: flush counts the buffer as dropped; disabled (not configured): nothing kept, nothing counted', async () => {
    const never = shipper();
    never.runnerLine('a', 1);
    expect(await never.flush(100)).toEqual({ shipped: 0, dropped: 1 });

    const off = shipper();
    off.runnerLine('a', 1);
    off.disable();
    off.runnerLine('b', 2);
    expect(await off.flush(100)).toEqual({ shipped: 0, dropped: 0 });
  });

  it('runnerLine/agentLine never throw and a continuation piece is not counted as a line', async () => {
    const s = shipper();
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    expect(() => s.runnerLine(undefined as unknown as string, Number.NaN)).not.toThrow();
    s.runnerLine('first piece ', 1);
    s.runnerLine('second piece', 2, true);
    const result = await s.flush(1_000);
    expect(shippedMessages().slice(-2)).toEqual(['first piece ', 'second piece']);
    expect(result.shipped + result.dropped).toBe(2);
  });
});

describe('PutLogEvents bodies (real SDK client, local endpoint)', () => {
  let server: Server;
  let endpoint: string;
  let requests: { target: string; type: string; length: number; body: string }[];
  const realClients: CloudWatchLogsClient[] = [];

  beforeEach(async () => {
    requests = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        requests.push({ target: String(req.headers['x-amz-target']), type: String(req.headers['content-type']), length: Number(req.headers['content-length']), body: body.toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    for (const c of realClients.splice(0)) c.destroy();
    await new Promise((r) => server.close(r));
  });

  function realClient(): CloudWatchLogsClient {
    const c = new CloudWatchLogsClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    realClients.push(c);
    return c;
  }

  const lines = ['plain', 'hé "quoted" \\ back\ttab', '', 'emoji 😀 and \u0001 control', 'x'.repeat(300_000)];
  const puts = () => requests.filter((r) => r.target.endsWith('.PutLogEvents'));

  it('is the batch JSON as queued, exact to the byte, without decoding a single event', async () => {
    const parse = jest.spyOn(JSON, 'parse');
    const s = shipper();
    await s.start({ client: realClient(), logGroup: GROUP, stream: STREAM });
    lines.forEach((l, i) => s.runnerLine(l, 1_764_300_000_000 + i));
    expect(await s.flush(5_000)).toEqual({ shipped: lines.length, dropped: 0 });
    const decodes = parse.mock.calls.filter(([text]) => typeof text === 'string' && text.startsWith('[{"timestamp"')).length;
    parse.mockRestore();

    expect(decodes).toBe(0);
    const bodies = puts().map((r) => {
      expect(r.type).toBe('application/x-amz-json-1.1');
      expect(Buffer.byteLength(r.body)).toBe(r.length);
      return JSON.parse(r.body) as PutLogEventsCommandInput;
    });
    expect(bodies.every((b) => b.logGroupName === GROUP && b.logStreamName === STREAM)).toBe(true);
    const events = bodies.flatMap((b) => b.logEvents!);
    expect(events.map((e) => e.message).join('')).toBe(lines.map((l) => l || ' ').join(''));
    expect(events[0]).toEqual({ timestamp: 1_764_300_000_000, message: 'plain' });
  });

  it('a flood through the spill file asks for a full collection once per RECLAIM_AFTER_BYTES read back, after the turn', async () => {
    const reclaim = jest.fn<() => void>();
    const s = shipper({ memoryLimitBytes: 64 * 1024, reclaim });
    await s.start({ client: realClient(), logGroup: GROUP, stream: STREAM });
    const line = (i: number) => `line ${String(i).padStart(7, '0')} ${'x'.repeat(86)}`;
    // All queued before the first request can go out: nearly all of it through the spill file.
    const count = 240_000;
    for (let i = 0; i < count; i++) s.runnerLine(line(i), 1_764_300_000_000 + i);
    const spilled = readdirSync(spillDir).reduce((n, f) => n + statSync(join(spillDir, f)).size, 0);
    expect(spilled).toBeGreaterThan(2 * RECLAIM_AFTER_BYTES);
    expect(await s.flush(20_000)).toEqual({ shipped: count, dropped: 0 });

    const messages = puts().flatMap((r) => (JSON.parse(r.body) as PutLogEventsCommandInput).logEvents!.map((e) => e.message));
    expect(messages).toEqual(Array.from({ length: count }, (_, i) => line(i)));
    // Blocks are read back at their stored size: about one collection per RECLAIM_AFTER_BYTES of the file.
    expect(reclaim.mock.calls.length).toBeGreaterThanOrEqual(Math.floor(spilled / RECLAIM_AFTER_BYTES) - 1);
    expect(reclaim.mock.calls.length).toBeLessThanOrEqual(Math.ceil(spilled / RECLAIM_AFTER_BYTES));
  });

  it('no collection when nothing goes through the spill file', async () => {
    const reclaim = jest.fn<() => void>();
    const s = shipper({ reclaim });
    await s.start({ client: realClient(), logGroup: GROUP, stream: STREAM });
    for (let i = 0; i < 20_000; i++) s.runnerLine(`line ${i}`, 1_764_300_000_000 + i);
    expect(await s.flush(5_000)).toEqual({ shipped: 20_000, dropped: 0 });
    expect(readdirSync(spillDir)).toEqual([]);
    expect(reclaim).not.toHaveBeenCalled();
  });

  it('falls back to the SDK serializer, once and for all, if its request is not AWS JSON', async () => {
    const warn = jest.fn<(m: string) => void>();
    const c = realClient();
    // Stand-in for an SDK that serializes CloudWatch Logs otherwise.
    c.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string> };
        request.headers['content-type'] = 'application/cbor';
        return next(args);
      },
      { step: 'serialize', priority: 'low', name: 'otherProtocol' },
    );
    const s = shipper({ warn });
    await s.start({ client: c, logGroup: GROUP, stream: STREAM });
    s.runnerLine('first', 1_764_300_000_000);
    await s.flush(5_000);
    s.runnerLine('second', 1_764_300_000_001);
    expect(await s.flush(5_000)).toEqual({ shipped: 2, dropped: 0 });

    expect(puts().flatMap((r) => (JSON.parse(r.body) as PutLogEventsCommandInput).logEvents!.map((e) => e.message))).toEqual(['first', 'second']);
    expect(warn.mock.calls.filter(([m]) => /not serialized as AWS JSON/.test(m))).toHaveLength(1);
  });
});

describe('spill file trouble', () => {
  it('a spill file cut short under the shipper: what it held is counted as dropped, the rest still ships in order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    cw.on(PutLogEventsCommand).callsFake(async () => {
      await gate;
      return {};
    });
    const warn = jest.fn<(m: string) => void>();
    const s = shipper({ memoryLimitBytes: 64 * 1024, warn });
    await s.start({ client, logGroup: GROUP, stream: STREAM });
    for (let i = 0; i < 20_000; i++) s.runnerLine(`line ${i} ${'q'.repeat(40)}`, 1_000);
    const files = readdirSync(spillDir);
    expect(files).toHaveLength(1);
    truncateSync(join(spillDir, files[0]!), 100);
    for (let i = 20_000; i < 20_010; i++) s.runnerLine(`line ${i} ${'q'.repeat(40)}`, 1_000);
    release();
    const result = await s.flush(5_000);

    expect(result.shipped + result.dropped).toBe(20_010);
    expect(result.dropped).toBeGreaterThan(0);
    const shipped = shippedMessages().map((m) => Number(m.split(' ')[1]));
    expect(shipped.every((n, i) => i === 0 || n > shipped[i - 1]!)).toBe(true);
    expect(shipped.slice(-10)).toEqual(Array.from({ length: 10 }, (_, i) => 20_000 + i));
    expect(warn.mock.calls.some(([m]) => /spill/.test(m))).toBe(true);
  });
});

