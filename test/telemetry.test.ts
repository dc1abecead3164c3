import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { readFileSync } from 'node:fs';
import { createActor, toPromise } from 'xstate';
import { sendTelemetry as sendTelemetryActor } from '../actors/send-telemetry.js';
import { telemetryMessage, type TelemetryMessage } from '../machines/outcome.js';
import type { AgentContext } from '../machines/types.js';
import { createLogger } from '../services/logs/logger.js';
import { SecretVault } from '../services/secrets.js';
import { parseSettings } from '../services/settings.js';
import { fifoFields, MAX_BODY_BYTES, prepareTelemetry, sendTelemetry, truncateText } from '../services/aws/telemetry.js';
import { TelemetryError } from '../services/errors.js';
import { MAX_ERROR_CHARS, telemetryJsonSchema, telemetryMessageSchema } from '../services/aws/telemetry-schema.js';

const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/runs-fleet-termination';

function message(overrides: Partial<TelemetryMessage> = {}): TelemetryMessage {
  return {
    instance_id: 'i-0123456789abcdef0',
    job_id: '4242',
    run_id: '42',
    status: 'success',
    exit_code: 0,
    duration_seconds: 12,
    started_at: '2025-01-01T00:00:00.000Z',
    completed_at: '2025-01-01T00:00:12.500Z',
    error: null,
    interrupted_by: null,
    timings: { booting: 1.2, running: 10 },
    memory_warnings: 0,
    ...overrides,
  };
}

function logLines(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger({ vault: new SecretVault(), write: (l) => lines.push(l) }) };
}

const serverError = () => Object.assign(new Error('We encountered an internal error'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });

describe('telemetry schema', () => {
  it('accepts a complete message and the one the machine builds', () => {
    expect(telemetryMessageSchema.safeParse(message()).success).toBe(true);
    expect(telemetryMessageSchema.safeParse({ ...message(), log_lines_shipped: 10, log_lines_dropped: 0 }).success).toBe(true);

    const { settings } = parseSettings({ RUNS_FLEET_INSTANCE_ID: 'i-0abc' });
    const ctx: AgentContext = {
      now: () => Date.UTC(2025, 0, 1, 0, 5),
      startedAtMs: Date.UTC(2025, 0, 1),
      settings,
      settingErrors: [],
      identity: { instanceId: 'i-0abc', region: 'us-east-1' },
      job: { listening: true, startedAt: '2025-01-01T00:01:00.000Z', result: 'Failed', name: 'build' },
      timings: { booting: 3, running: 60 },
      current: { state: 'reporting', enteredAtMs: Date.UTC(2025, 0, 1, 0, 4) },
      memoryWarnings: 1,
      downloadAttempt: 1,
      retries: {},
      telemetry: { startedSent: true, finalSent: false },
      termination: { requested: false },
      panics: 0,
      standby: { polls: 3, errors: 0, throttled: 0, suppressed: 0 },
      prefetch: 'done',
      prefetchMs: 1234,
      watchdogsStarted: true,
      jobSpec: { parameterName: '/p', mode: 'jit', isOrg: false, labels: [], jobId: '4242', runId: '42' },
      configFoundAtMs: Date.UTC(2025, 0, 1, 0, 0, 6),
      runnerSpawnedAtMs: Date.UTC(2025, 0, 1, 0, 0, 9, 500),
      bootUptimeSeconds: 18.25,
      logUpload: 'uploaded',
      jobFacts: { toolCacheMisses: ['node/22.1.0/x64'], buildCacheInterception: 'engaged' },
    };
    for (const status of ['started', 'failure'] as const) {
      const result = telemetryMessageSchema.safeParse(telemetryMessage(ctx, status));
      expect(result.error?.issues).toBeUndefined();
    }
    expect(telemetryMessage(ctx, 'started')).toMatchObject({
      started_at: '2025-01-01T00:00:09.500Z',
      completed_at: null,
      bootstrap_boot_seconds: 18.25,
      bootstrap_config_seconds: 6,
      bootstrap_total_seconds: 3.5,
    });
    expect(telemetryMessage(ctx, 'success')).toMatchObject({
      duration_seconds: 290, // whole seconds from run.sh's start, truncated like the Go agent
      job_result: 'Failed',
      log_upload: 'uploaded',
      tool_cache_misses: ['node/22.1.0/x64'],
      build_cache_interception: 'engaged',
    });
    expect(telemetryMessage(ctx, 'success').timings.prefetch).toBe(1.23);
  });

  it('the Go types: integer durations and exit codes, a decimal job_id, RFC 3339 or null timestamps', () => {
    for (const bad of [
      { duration_seconds: 12.5 },
      { exit_code: 1.5 },
      { job_id: 'abc' },
      { job_id: '' },
      { started_at: '' },
      { completed_at: '' },
      { bootstrap_total_seconds: 0 },
      { tool_cache_misses: [1] },
      { log_upload: 'sometimes' },
    ]) {
      expect(telemetryMessageSchema.safeParse({ ...message(), ...bad }).success).toBe(false);
    }
    expect(telemetryMessageSchema.safeParse({ ...message(), completed_at: null, exit_code: null }).success).toBe(true);
  });

  it.each(['instance_id', 'status'] as const)('rejects a message without %s', (field) => {
    const { [field]: _dropped, ...rest } = message();
    expect(telemetryMessageSchema.safeParse(rest).success).toBe(false);
    expect(telemetryMessageSchema.safeParse({ ...message(), [field]: null }).success).toBe(false);
  });

  it('rejects unknown statuses, unknown fields and non-UTC timestamps', () => {
    expect(telemetryMessageSchema.safeParse({ ...message(), status: 'done' }).success).toBe(false);
    expect(telemetryMessageSchema.safeParse({ ...message(), extra: 1 }).success).toBe(false);
    expect(telemetryMessageSchema.safeParse({ ...message(), started_at: '2025-01-01 00:00:00' }).success).toBe(false);
  });

  it('schemas/telemetry.schema.json is the same schema (regenerate it from services/aws/telemetry-schema.ts when this fails)', () => {
    const file = JSON.parse(readFileSync(new URL('../schemas/telemetry.schema.json', import.meta.url), 'utf8'));
    expect(file).toEqual(telemetryJsonSchema());
  });
});

describe('FIFO queues', () => {
  it('get a group per instance and a deduplication id per message; standard queues neither', () => {
    expect(fifoFields(QUEUE, { instance_id: 'i-1', status: 'success' })).toEqual({});
    expect(fifoFields(`${QUEUE}.fifo`, { instance_id: 'i-1', status: 'started' })).toEqual({ MessageGroupId: 'i-1', MessageDeduplicationId: 'i-1-started' });
    expect(fifoFields(`${QUEUE}.fifo`, { instance_id: 'i-1', status: 'failure' })).toEqual({ MessageGroupId: 'i-1', MessageDeduplicationId: 'i-1-final' });
  });
});

describe('prepareTelemetry', () => {
  it('truncates a long error with a marker and keeps the body far below the SQS limit', () => {
    const long = 'x'.repeat(200_000);
    const prepared = prepareTelemetry(message({ status: 'failure', error: long }));
    expect(prepared.ok).toBe(true);
    if (!prepared.ok) return;
    expect(prepared.message.error).toBe(`${'x'.repeat(MAX_ERROR_CHARS)}…[truncated ${200_000 - MAX_ERROR_CHARS} chars]`);
    expect(Buffer.byteLength(prepared.body)).toBeLessThan(MAX_BODY_BYTES);
    expect(Buffer.byteLength(prepared.body)).toBeLessThan(256 * 1024 / 4);
  });

  it('never splits a surrogate pair when truncating', () => {
    const text = `${'a'.repeat(9)}😀rest`;
    expect(truncateText(text, 10)).toBe(`${'a'.repeat(9)}…[truncated 6 chars]`);
  });

  it('only a message without instance_id goes unsent', () => {
    const prepared = prepareTelemetry({ ...message(), instance_id: null });
    expect(prepared).toEqual({ ok: false, error: expect.stringMatching(/invalid telemetry message: no instance_id/) });
  });

  it('repairs what would fail the schema instead of withholding the report', () => {
    const hostile = {
      ...message({ status: 'interrupted', interrupted_by: 'sigterm' }),
      // The job wrote these through the job hooks (a 300-character job name, a huge workflow).
      github: { job: 'j'.repeat(300), workflow: 'w'.repeat(5_000), repository: 'acme/app', run_id: '' },
      // A wall clock that stepped back 10 s, and numbers out of their types.
      timings: { booting: 1.5, running: -10.2, ['x'.repeat(80)]: 1 },
      duration_seconds: -10,
      exit_code: 1.5,
      tool_cache_misses: ['node/22/x64', 'x'.repeat(600), 7 as unknown as string],
      job_result: 'r'.repeat(100),
    } as unknown as TelemetryMessage;
    const prepared = prepareTelemetry(hostile);
    expect(prepared.ok).toBe(true);
    if (!prepared.ok) return;
    expect(prepared.repaired).toMatch(/github\.job/);
    expect(prepared.message).toMatchObject({ status: 'interrupted', interrupted_by: 'sigterm', duration_seconds: 0, exit_code: 1, timings: { booting: 1.5, running: 0 } });
    expect(prepared.message.github!.job!.length).toBeLessThanOrEqual(256);
    expect(prepared.message.github!.repository).toBe('acme/app');
    expect(prepared.message.tool_cache_misses).toEqual(['node/22/x64']);
    expect(telemetryMessageSchema.safeParse(JSON.parse(prepared.body)).success).toBe(true);
  });

  it('a message that cannot be repaired field by field is rebuilt from what the orchestrator needs', () => {
    const broken = { ...message({ error: 'runner crashed' }), status: 'exploded', started_at: 42, timings: 'nope' } as unknown as TelemetryMessage;
    const prepared = prepareTelemetry(broken);
    expect(prepared.ok).toBe(true);
    if (!prepared.ok) return;
    expect(prepared.message).toMatchObject({ instance_id: 'i-0123456789abcdef0', job_id: '4242', status: 'failure', timings: {} });
    expect(prepared.message.error).toMatch(/^the agent rebuilt this message \(status: .*\): runner crashed$/);
  });
});

describe('sendTelemetry', () => {
  let client: SQSClient;
  let sqs: ReturnType<typeof mockClient>;
  beforeEach(() => {
    client = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    sqs = mockClient(client);
  });
  afterEach(() => {
    sqs.restore();
  });

  it('sends the validated, redacted body to the queue', async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: '1' });
    const vault = new SecretVault();
    vault.set('token', 'REGISTRATION-TOKEN-123');
    const result = await sendTelemetry({ client, queueUrl: QUEUE, vault, message: message({ status: 'failure', error: 'config.sh --token REGISTRATION-TOKEN-123 failed' }) });

    expect(result).toEqual({ sent: true });
    const input = sqs.commandCalls(SendMessageCommand)[0]!.args[0].input;
    expect(input.QueueUrl).toBe(QUEUE);
    const body = JSON.parse(input.MessageBody!);
    expect(telemetryMessageSchema.parse(body).error).toBe('config.sh --token *** failed');
  });

  it('no queue URL: not sent, says why (not retriable), and logs it', async () => {
    const { lines, logger } = logLines();
    const error = await sendTelemetry({ client, message: message(), logger }).catch((e: TelemetryError) => e);
    expect(error).toBeInstanceOf(TelemetryError);
    expect(error).toMatchObject({ message: 'no termination queue configured', retriable: false });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
    expect(lines.join('')).toMatch(/no termination queue configured/);
  });

  it('one attempt: 5xx and throttling are retriable failures, classified for the chart', async () => {
    sqs.on(SendMessageCommand).rejectsOnce(serverError()).rejectsOnce(Object.assign(new Error('slow down'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } })).resolves({});
    await expect(sendTelemetry({ client, queueUrl: QUEUE, message: message() })).rejects.toMatchObject({ retriable: true, message: expect.stringMatching(/internal error/) });
    await expect(sendTelemetry({ client, queueUrl: QUEUE, message: message() })).rejects.toMatchObject({ retriable: true, message: 'slow down' });
    expect(await sendTelemetry({ client, queueUrl: QUEUE, message: message() })).toEqual({ sent: true });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(3); // one call each: the service never loops
  });

  it('an error that cannot get better (queue does not exist) is not retriable', async () => {
    sqs.on(SendMessageCommand).rejects(Object.assign(new Error('The specified queue does not exist.'), { name: 'QueueDoesNotExist', $metadata: { httpStatusCode: 400 } }));
    await expect(sendTelemetry({ client, queueUrl: QUEUE, message: message() })).rejects.toMatchObject({ retriable: false, message: 'The specified queue does not exist.' });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(1);
  });

  it('a queue that never answers: the attempt fails at its own timeout, retriable', async () => {
    sqs.on(SendMessageCommand).callsFake(() => new Promise(() => {}));
    const started = performance.now();
    await expect(sendTelemetry({ client, queueUrl: QUEUE, message: message(), timeoutMs: 300 })).rejects.toMatchObject({ retriable: true, message: 'SendMessage did not answer within 300 ms' });
    expect(performance.now() - started).toBeLessThan(700);
  });

  it('stops at once when its signal aborts', async () => {
    sqs.on(SendMessageCommand).callsFake(() => new Promise(() => {}));
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 30);
    const started = performance.now();
    await expect(sendTelemetry({ client, queueUrl: QUEUE, message: message(), signal: ctl.signal })).rejects.toMatchObject({ message: 'telemetry send aborted' });
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('the actor resolves { sent } from its input, with the region-specific client', async () => {
    sqs.on(SendMessageCommand).resolves({});
    const regions: (string | undefined)[] = [];
    const { logger } = logLines();
    const actor = createActor(
      sendTelemetryActor({
        logger,
        vault: new SecretVault(),
        sqs: (region) => {
          regions.push(region);
          return client;
        },
      }),
      { input: { queueUrl: QUEUE, region: 'eu-west-1', message: message({ status: 'started', completed_at: null, exit_code: null }) } },
    );
    actor.start();
    expect(await toPromise(actor)).toEqual({ sent: true });
    expect(regions).toEqual(['eu-west-1']);
  });
});

describe('what the job can shape cannot stop the report', () => {
  it('a mask the job added (::add-mask::) redacts free text only, never the ids or the status', () => {
    const vault = new SecretVault();
    vault.set('mask-1', '4567890'); // part of the instance id
    vault.set('mask-2', 'success');
    vault.set('mask-3', '424242');
    const prepared = prepareTelemetry(message({ instance_id: 'i-0123456789abcdef0', job_id: '4242420', error: 'x 4567890 y' }), vault);
    expect(prepared.ok).toBe(true);
    if (!prepared.ok) return;
    expect(prepared.message).toMatchObject({ instance_id: 'i-0123456789abcdef0', job_id: '4242420', status: 'success', error: 'x *** y' });
  });

  it('U+FFFE/U+FFFF (which SQS refuses) leave the agent escaped; the orchestrator reads the same text', () => {
    const prepared = prepareTelemetry({ ...message(), github: { workflow: 'w\uffff' }, tool_cache_misses: ['x/1/y\ufffe'] });
    expect(prepared.ok).toBe(true);
    if (!prepared.ok) return;
    expect(prepared.body).not.toMatch(/[\ufffe\uffff]/);
    expect(JSON.parse(prepared.body).github.workflow).toBe('w\uffff');
  });
});
