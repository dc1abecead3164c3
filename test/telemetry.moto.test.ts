/** Telemetry against a real SQS API (moto server): what the orchestrator receives is valid and redacted. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createLogger } from '../services/logs/logger.js';
import { SecretVault } from '../services/secrets.js';
import { sendTelemetry } from '../services/aws/telemetry.js';
import { MAX_ERROR_CHARS, telemetryMessageSchema } from '../services/aws/telemetry-schema.js';
import { MOTO_REGION, startMoto, type Moto } from './support/moto.js';

let moto: Moto;
let client: SQSClient;

beforeAll(async () => {
  moto = await startMoto();
  client = new SQSClient({ endpoint: moto.endpoint, region: MOTO_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
});

afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

describe('sendTelemetry against moto SQS', () => {
  it('sends one message the orchestrator can read: schema-valid, redacted, truncated', async () => {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'runs-fleet-termination' }));
    const vault = new SecretVault();
    vault.set('jit_config', 'SECRET-JIT-CONFIG-abcdef');
    const logged: string[] = [];
    const logger = createLogger({ vault, write: (l) => logged.push(l) });

    const result = await sendTelemetry({
      client,
      queueUrl: QueueUrl,
      vault,
      logger,
      message: {
        instance_id: 'i-0123456789abcdef0',
        job_id: '4242',
        run_id: '42',
        status: 'failure',
        exit_code: 1,
        duration_seconds: 61,
        started_at: '2025-01-01T00:00:00.000Z',
        completed_at: '2025-01-01T00:01:01.250Z',
        error: `run.sh --jitconfig SECRET-JIT-CONFIG-abcdef failed: ${'stack '.repeat(20_000)}`,
        interrupted_by: null,
        timings: { booting: 2.1, downloading: 5, registering: 0.1, running: 50, draining: 1, reporting: 0.05 },
        memory_warnings: 2,
        log_lines_shipped: 1234,
        log_lines_dropped: 0,
      },
    });
    expect(result).toEqual({ sent: true });

    const received = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    expect(received.Messages).toHaveLength(1);
    const raw = received.Messages![0]!.Body!;
    expect(raw).not.toContain('SECRET-JIT-CONFIG');
    const body = telemetryMessageSchema.parse(JSON.parse(raw));
    expect(body.status).toBe('failure');
    expect(body.error!.startsWith('run.sh --jitconfig *** failed')).toBe(true);
    expect(body.error).toMatch(/…\[truncated \d+ chars\]$/);
    expect(body.error!.length).toBeLessThan(MAX_ERROR_CHARS + 40);
    expect(body.timings).toEqual({ booting: 2.1, downloading: 5, registering: 0.1, running: 50, draining: 1, reporting: 0.05 });
    expect(logged.join('')).toMatch(/telemetry sent/);
  });

  it('a queue that does not exist: a failure the chart will not retry (moto\'s real error, classified)', async () => {
    const started = performance.now();
    const result = sendTelemetry({
      client,
      queueUrl: `${moto.endpoint}/123456789012/no-such-queue`,
      message: {
        instance_id: 'i-0123456789abcdef0',
        job_id: null,
        run_id: null,
        status: 'bootstrap_failed',
        exit_code: null,
        duration_seconds: 1,
        started_at: '2025-01-01T00:00:00.000Z',
        completed_at: '2025-01-01T00:00:01.000Z',
        error: 'invalid configuration',
        interrupted_by: null,
        timings: {},
        memory_warnings: 0,
      },
    });
    await expect(result).rejects.toMatchObject({ name: 'TelemetryError', retriable: false, message: expect.stringMatching(/queue/i) });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('a FIFO queue takes both messages, in order, with a group per instance (retries deduplicated)', async () => {
    const { QueueUrl } = await client.send(
      new CreateQueueCommand({ QueueName: 'runs-fleet-termination.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'false' } }),
    );
    const base = {
      instance_id: 'i-0fifo0000000000001',
      job_id: '4242',
      run_id: '42',
      exit_code: null,
      duration_seconds: 0,
      started_at: '2025-01-01T00:00:00.000Z',
      completed_at: null,
      error: null,
      interrupted_by: null,
      timings: {},
      memory_warnings: 0,
    };
    expect(await sendTelemetry({ client, queueUrl: QueueUrl, message: { ...base, status: 'started' } })).toEqual({ sent: true });
    const final = { ...base, status: 'success' as const, exit_code: 0, completed_at: '2025-01-01T00:01:00.000Z', duration_seconds: 60 };
    expect(await sendTelemetry({ client, queueUrl: QueueUrl, message: final })).toEqual({ sent: true });
    expect(await sendTelemetry({ client, queueUrl: QueueUrl, message: final })).toEqual({ sent: true }); // a retried send
    const received = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, AttributeNames: ['All'] }));
    expect(received.Messages!.map((m) => JSON.parse(m.Body!).status)).toEqual(['started', 'success']);
    expect(received.Messages!.map((m) => m.Attributes?.MessageGroupId)).toEqual(['i-0fifo0000000000001', 'i-0fifo0000000000001']);
  });
});
