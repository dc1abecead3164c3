/**
 * One telemetry message to the termination queue (SQS), the orchestrator's only
 * way to learn what happened: redacted, bounded in size, validated against the
 * schema, then sent with bounded retries (3 attempts, 30 s in all). Never throws:
 * the answer is `{ sent, error? }`, and the machine moves on either way.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { TelemetryResult } from '../machines/actor-contracts.js';
import type { TelemetryMessage } from '../machines/outcome.js';
import { describeError } from './errors.js';
import { backoffMs, isTransient, raceAbort, sleep } from './log-async.js';
import type { SecretVault } from './secrets.js';
import { MAX_ERROR_CHARS, telemetryMessageSchema, type TelemetryBody } from './telemetry-schema.js';

export { MAX_ERROR_CHARS };

/** A body this size is far below the SQS limit (256 KiB); the schema keeps messages well under it. */
export const MAX_BODY_BYTES = 64 * 1024;
export const DEFAULT_ATTEMPTS = 3;
export const DEFAULT_TOTAL_TIMEOUT_MS = 30_000;

export interface TelemetryLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface SendTelemetryOptions {
  client: SQSClient;
  /** Unset = no telemetry configured: nothing is sent (and that is logged). */
  queueUrl?: string;
  message: TelemetryMessage | TelemetryBody;
  /** Aborted when the machine leaves the state: the send stops at once. */
  signal?: AbortSignal;
  /** Every string in the message is redacted with it before sending. */
  vault?: SecretVault;
  logger?: TelemetryLog;
  attempts?: number;
  totalTimeoutMs?: number;
  /** First backoff between attempts (doubled, jittered; default 1 s). */
  backoffBaseMs?: number;
}

/** `text` cut to `max` characters, with a marker saying how much was cut. */
export function truncateText(text: string, max = MAX_ERROR_CHARS): string {
  if (text.length <= max) return text;
  let cut = max;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--; // never split a surrogate pair
  return `${text.slice(0, cut)}…[truncated ${text.length - cut} chars]`;
}

export type PreparedTelemetry = { ok: true; message: TelemetryBody; body: string } | { ok: false; error: string };

/** Redact, truncate, validate and serialize a message: exactly what would go on the queue. */
export function prepareTelemetry(message: TelemetryMessage | TelemetryBody, vault?: SecretVault): PreparedTelemetry {
  const redact = (s: string) => (vault ? vault.redact(s) : s);
  const redacted: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) {
    redacted[key] = typeof value === 'string' ? redact(value) : value;
  }
  // Redact first, then cut: a secret cut in two by the truncation would escape redaction.
  if (typeof redacted.error === 'string') redacted.error = truncateText(redacted.error);
  const parsed = telemetryMessageSchema.safeParse(redacted);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
    return { ok: false, error: `invalid telemetry message: ${redact(issues)}` };
  }
  const body = JSON.stringify(parsed.data);
  if (Buffer.byteLength(body) > MAX_BODY_BYTES) {
    return { ok: false, error: `telemetry message too large: ${Buffer.byteLength(body)} bytes (limit ${MAX_BODY_BYTES})` };
  }
  return { ok: true, message: parsed.data, body };
}

/**
 * A FIFO queue (`….fifo`) refuses a message without a group id; the orchestrator's is a
 * standard queue (deploy/terraform/queues.tf), but an operator may choose FIFO. One group per
 * instance keeps its `started` before its final message; the deduplication id makes a retried
 * send of the same message count once.
 */
export function fifoFields(queueUrl: string, message: Pick<TelemetryBody, 'instance_id' | 'status'>): { MessageGroupId?: string; MessageDeduplicationId?: string } {
  if (!queueUrl.endsWith('.fifo')) return {};
  const phase = message.status === 'started' ? 'started' : 'final';
  return { MessageGroupId: message.instance_id, MessageDeduplicationId: `${message.instance_id}-${phase}` };
}

export async function sendTelemetry(options: SendTelemetryOptions): Promise<TelemetryResult> {
  const { client, queueUrl, signal, logger } = options;
  const status = options.message.status;
  if (!queueUrl) {
    const error = 'no termination queue configured';
    logger?.warn({ status }, `telemetry not sent: ${error}`);
    return { sent: false, error };
  }
  const prepared = prepareTelemetry(options.message, options.vault);
  if (!prepared.ok) {
    logger?.warn({ status }, `telemetry not sent: ${prepared.error}`);
    return { sent: false, error: prepared.error };
  }

  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const deadline = Date.now() + (options.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS);
  const redact = (s: string) => (options.vault ? options.vault.redact(s) : s);
  let lastError = 'not sent';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const remaining = deadline - Date.now();
    if (remaining <= 0 || signal?.aborted) break;
    const attemptSignal = AbortSignal.any([AbortSignal.timeout(remaining), ...(signal ? [signal] : [])]);
    try {
      await raceAbort(
        client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: prepared.body, ...fifoFields(queueUrl, prepared.message) }), {
          abortSignal: attemptSignal,
        }),
        attemptSignal,
      );
      logger?.info({ status, attempt }, 'telemetry sent');
      return { sent: true };
    } catch (error) {
      lastError = redact(describeError(error)) || (error as { name?: string })?.name || 'send failed';
      if (signal?.aborted) return { sent: false, error: 'telemetry send aborted' };
      const transient = isTransient(error);
      logger?.warn({ status, attempt, err: lastError }, transient ? 'telemetry send failed; retrying' : 'telemetry send failed');
      if (!transient) break;
      if (attempt < attempts) {
        await sleep(Math.min(backoffMs(attempt, options.backoffBaseMs ?? 1_000, 8_000), Math.max(0, deadline - Date.now())), signal);
      }
    }
  }
  if (signal?.aborted) return { sent: false, error: 'telemetry send aborted' };
  if (Date.now() >= deadline) lastError = `${lastError} (gave up after ${options.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS} ms)`;
  logger?.warn({ status }, `telemetry not sent: ${lastError}`);
  return { sent: false, error: truncateText(lastError, 1024) };
}
