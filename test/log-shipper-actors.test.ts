import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { CloudWatchLogsClient, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, toPromise } from 'xstate';
import { flushLogs } from '../actors/flush-logs.js';
import { logShipper } from '../actors/log-shipper.js';
import type { WatchdogInput } from '../machines/actor-contracts.js';
import { LogShipper } from '../services/logs/shipper.js';
import { createLogger } from '../services/logs/logger.js';
import { SecretVault } from '../services/secrets.js';
import { parseSettings } from '../services/settings.js';

let spillDir: string;
let client: CloudWatchLogsClient;
let cw: ReturnType<typeof mockClient>;
let shipper: LogShipper;
const logger = createLogger({ vault: new SecretVault(), write: () => {} });

function input(env: Record<string, string>, withJob = true): WatchdogInput {
  return {
    settings: parseSettings(env).settings,
    identity: { instanceId: 'i-0123456789abcdef0', region: 'eu-west-1' },
    jobSpec: withJob ? { parameterName: '/p', mode: 'jit', isOrg: false, labels: [], runId: '77', jobId: '7777' } : undefined,
  };
}

beforeEach(() => {
  spillDir = mkdtempSync(join(tmpdir(), 'log-actors-test-'));
  client = new CloudWatchLogsClient({ region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  cw = mockClient(client);
  cw.on(CreateLogStreamCommand).resolves({});
  cw.on(PutLogEventsCommand).resolves({});
  shipper = new LogShipper({ spillDir, flushIntervalMs: 60_000 });
});

afterEach(() => {
  shipper.close();
  cw.restore();
  rmSync(spillDir, { recursive: true, force: true });
});

describe('logShipper actor', () => {
  it('starts shipping to {instance-id}/{run-id} in the identity region; stopping keeps the queue for flushLogs', async () => {
    const regions: (string | undefined)[] = [];
    const logs = (region?: string) => {
      regions.push(region);
      return client;
    };
    shipper.runnerLine('early line', 1);
    const actor = createActor(logShipper({ shipper, logs, logger }), { input: input({ RUNS_FLEET_LOG_GROUP: '/runs-fleet/jobs' }) }).start();
    await new Promise((r) => setTimeout(r, 20));
    expect(cw.commandCalls(CreateLogStreamCommand).map((c) => c.args[0].input)).toEqual([
      { logGroupName: '/runs-fleet/jobs', logStreamName: 'i-0123456789abcdef0/77' },
      { logGroupName: '/runs-fleet/jobs', logStreamName: 'i-0123456789abcdef0/77/agent' },
    ]);
    expect(regions).toEqual(['eu-west-1']);

    actor.stop();
    shipper.runnerLine('late line', 2);
    const flush = createActor(flushLogs({ shipper }), { input: { timeoutMs: 2_000 } }).start();
    expect(await toPromise(flush)).toEqual({ shipped: 2, dropped: 0 });
    const messages = cw.commandCalls(PutLogEventsCommand).flatMap((c) => c.args[0].input.logEvents!.map((e) => e.message));
    expect(messages).toEqual(['early line', 'late line']);
  });

  it('uses "runner" as the stream suffix before the job is known', async () => {
    createActor(logShipper({ shipper, logs: () => client, logger }), { input: input({ RUNS_FLEET_LOG_GROUP: 'g' }, false) }).start().stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(cw.commandCalls(CreateLogStreamCommand)[0]!.args[0].input.logStreamName).toBe('i-0123456789abcdef0/runner');
  });

  it('no log group: shipping off, the buffer forgotten, nothing counted as dropped', async () => {
    shipper.runnerLine('nowhere to go', 1);
    createActor(logShipper({ shipper, logs: () => client, logger }), { input: input({}) }).start();
    const flush = createActor(flushLogs({ shipper }), { input: { timeoutMs: 100 } }).start();
    expect(await toPromise(flush)).toEqual({ shipped: 0, dropped: 0 });
    expect(cw.calls()).toHaveLength(0);
  });
});

describe('flushLogs actor', () => {
  it('ends by its deadline with a dead endpoint and reports the dropped lines', async () => {
    cw.on(PutLogEventsCommand).callsFake(() => new Promise(() => {}));
    await shipper.start({ client, logGroup: 'g', stream: 'i-1/runner' });
    for (let i = 0; i < 10; i++) shipper.runnerLine(`l${i}`, i);
    const started = performance.now();
    const flush = createActor(flushLogs({ shipper }), { input: { timeoutMs: 200 } }).start();
    expect(await toPromise(flush)).toEqual({ shipped: 0, dropped: 10 });
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('stopping the actor (the machine left the state) ends the flush at once', async () => {
    cw.on(PutLogEventsCommand).callsFake(() => new Promise(() => {}));
    await shipper.start({ client, logGroup: 'g', stream: 'i-1/runner' });
    shipper.runnerLine('l', 1);
    const flush = createActor(flushLogs({ shipper }), { input: { timeoutMs: 60_000 } }).start();
    const pending = shipper.flush(60_000);
    flush.stop();
    await new Promise((r) => setTimeout(r, 10));
    // The actor's flush gave up and counted the line; the second flush then has nothing left.
    expect(await pending).toEqual({ shipped: 0, dropped: 1 });
  });
});
