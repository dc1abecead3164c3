/**
 * The log shipper's actor, its one owner: it builds the shipper on start, attaches it to the
 * route the logger and the runner write to, ships on SHIP_LOGS, answers FLUSH_LOGS with
 * LOGS_FLUSHED within the deadline, and closes it when it stops.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { CloudWatchLogsClient, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogRoute } from '../services/logs/logger.js';
import { shipperHarness } from './support/log-shipper-harness.js';

let stateDir: string;
let client: CloudWatchLogsClient;
let cw: ReturnType<typeof mockClient>;
const job = { parameterName: '/p', mode: 'jit' as const, isOrg: false, labels: [], runId: '77', jobId: '7777' };

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'log-actors-test-'));
  client = new CloudWatchLogsClient({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  cw = mockClient(client);
  cw.on(CreateLogStreamCommand).resolves({});
  cw.on(PutLogEventsCommand).resolves({});
});

afterEach(() => {
  cw.restore();
  rmSync(stateDir, { recursive: true, force: true });
});

const messages = () => cw.commandCalls(PutLogEventsCommand).flatMap((c) => c.args[0].input.logEvents!.map((e) => e.message));

describe('logShipper actor', () => {
  it('lines written before it shipped wait; SHIP_LOGS ships to {instance-id}/{run-id} in the identity region; FLUSH_LOGS answers', async () => {
    const h = shipperHarness({ client, stateDir, env: { RUNS_FLEET_LOG_GROUP: '/runs-fleet/jobs' } });
    h.route.runnerLine('early line', 1);
    h.ship(undefined, job);
    await new Promise((r) => setTimeout(r, 20));
    expect(cw.commandCalls(CreateLogStreamCommand).map((c) => c.args[0].input)).toEqual([
      { logGroupName: '/runs-fleet/jobs', logStreamName: 'i-0123456789abcdef0/77' },
      { logGroupName: '/runs-fleet/jobs', logStreamName: 'i-0123456789abcdef0/77/agent' },
    ]);
    expect(h.regions).toEqual(['eu-west-1']);
    h.route.runnerLine('late line', 2);
    expect(await h.flush(2_000)).toEqual({ shipped: 2, dropped: 0 });
    expect(messages()).toEqual(['early line', 'late line']);
    h.stop();
  });

  it('uses "runner" as the stream suffix before the job is known; a second SHIP_LOGS changes nothing', async () => {
    const h = shipperHarness({ client, stateDir, env: { RUNS_FLEET_LOG_GROUP: 'g' } });
    h.ship();
    h.ship(undefined, job);
    await new Promise((r) => setTimeout(r, 20));
    expect(cw.commandCalls(CreateLogStreamCommand).map((c) => c.args[0].input.logStreamName)).toEqual(['i-0123456789abcdef0/runner', 'i-0123456789abcdef0/runner/agent']);
    h.stop();
  });

  it('no log group: shipping off, the buffer forgotten, nothing counted as dropped', async () => {
    const h = shipperHarness({ client, stateDir });
    h.route.runnerLine('nowhere to go', 1);
    h.ship();
    expect(await h.flush(100)).toEqual({ shipped: 0, dropped: 0 });
    expect(cw.calls()).toHaveLength(0);
    h.stop();
  });

  it('a flush ends by its deadline with a dead endpoint and reports the dropped lines', async () => {
    cw.on(PutLogEventsCommand).callsFake(() => new Promise(() => {}));
    const h = shipperHarness({ client, stateDir, env: { RUNS_FLEET_LOG_GROUP: 'g' } });
    h.ship();
    for (let i = 0; i < 10; i++) h.route.runnerLine(`l${i}`, i);
    const started = performance.now();
    expect(await h.flush(200)).toEqual({ shipped: 0, dropped: 10 });
    expect(performance.now() - started).toBeLessThan(600);
    h.stop();
  });

  it('a new FLUSH_LOGS abandons the older one: only one answer, for the newer', async () => {
    cw.on(PutLogEventsCommand).callsFake(() => new Promise(() => {}));
    const h = shipperHarness({ client, stateDir, env: { RUNS_FLEET_LOG_GROUP: 'g' } });
    h.ship();
    h.route.runnerLine('l', 1);
    h.send({ type: 'FLUSH_LOGS', timeoutMs: 60_000 });
    expect(await h.flush(150)).toEqual({ shipped: 0, dropped: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(h.answers).toHaveLength(1);
    h.stop();
  });

  it('stopping the actor closes the shipper and detaches it: later lines go nowhere, nothing is answered', async () => {
    const route = new LogRoute();
    const h = shipperHarness({ client, stateDir, env: { RUNS_FLEET_LOG_GROUP: 'g' }, deps: { route } });
    h.ship();
    h.stop();
    route.runnerLine('after the end', 1); // kept by the route, never shipped
    await new Promise((r) => setTimeout(r, 20));
    expect(messages()).toEqual([]);
  });
});

describe('LogRoute', () => {
  it('keeps what comes before a sink attaches (bounded, the overflow counted) and hands it over in order', () => {
    const route = new LogRoute();
    for (let i = 0; i < LogRoute.EARLY_LINES + 5; i++) route.agentLine(`a${i}`, i);
    route.runnerLine('r', 1, true);
    const got: string[] = [];
    let dropped = 0;
    const sink = { agentLine: (l: string) => void got.push(l), runnerLine: (l: string, _t: number, c?: boolean) => void got.push(`${l}:${c}`), countDropped: (n: number) => void (dropped += n) };
    route.attach(sink);
    expect(got).toHaveLength(LogRoute.EARLY_LINES);
    expect(got[0]).toBe('a6');
    expect(got.at(-1)).toBe('r:true');
    expect(dropped).toBe(6);
    route.agentLine('live', 2);
    expect(got.at(-1)).toBe('live');
    route.detach(sink);
    route.agentLine('after', 3);
    expect(got.at(-1)).toBe('live');
  });
});
