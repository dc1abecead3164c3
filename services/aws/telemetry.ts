/**
 * One telemetry message to the termination queue (SQS), the orchestrator's only
 * way to learn what happened: redacted, bounded in size, validated against the
 * schema, then sent — one attempt, within its own timeout. A failure rejects with a
 * TelemetryError that says whether another attempt may help; the chart's
 * `attempt → backoff` loop decides whether there is one (machines/agent.machine.ts).
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { TelemetryMessage } from '../domain.js';
import { describeError, isRetriableAwsError, TelemetryError } from '../errors.js';
import { raceAbort } from '../retry.js';
import type { SecretVault } from '../secrets.js';
import { MAX_ERROR_CHARS, telemetryMessageSchema, type TelemetryBody } from './telemetry-schema.js';

export { MAX_ERROR_CHARS };

/** A body this size is far below the SQS limit (256 KiB); the schema keeps messages well under it. */
export const MAX_BODY_BYTES = 64 * 1024;
/** One SendMessage may take this long (less when the state's deadline leaves less). */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;

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
  /** This attempt's own timeout (default 10 s): a queue that does not answer is a failed, retriable attempt. */
  timeoutMs?: number;
}

/** `text` cut to `max` characters, with a marker saying how much was cut. */
export function truncateText(text: string, max = MAX_ERROR_CHARS): string {
  if (text.length <= max) return text;
  let cut = max;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--; // never split a surrogate pair
  return `${text.slice(0, cut)}…[truncated ${text.length - cut} chars]`;
}

export type PreparedTelemetry =
  | { ok: true; message: TelemetryBody; body: string; repaired?: string }
  | { ok: false; error: string };

/** What one send came to: never a throw. */
export interface TelemetryResult { sent: boolean; error?: string }

const DECIMAL_ID = /^\d{1,19}$/;
/** The fields that carry text from outside the agent's own ids and enums: the only ones redacted. */
const FREE_TEXT_FIELDS = ['error', 'github', 'job_result', 'tool_cache_misses', 'build_cache_interception'] as const;

/**
 * JSON.stringify leaves U+FFFE and U+FFFF raw, and SQS refuses a body holding them
 * (InvalidMessageContents, not retried): escaped, they decode to the same string.
 */
export function sqsSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}
const cut = (value: unknown, max: number): string | undefined =>
  typeof value === 'string' && value !== '' ? truncateText(value, max - 40) : undefined;
const whole = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? Math.max(0, Math.trunc(value)) : undefined);
const isoOr = (value: unknown, fallback: string): string =>
  typeof value === 'string' && telemetryMessageSchema.shape.started_at.safeParse(value).success ? value : fallback;

/**
 * A message that would fail the schema is repaired, never withheld: whatever the job could
 * have shaped (the hooks' fields), a clock that stepped back, a value out of range — cut,
 * clamped or dropped field by field. Only a message without an instance id stays unsent.
 */
export function repairTelemetry(message: Record<string, unknown>, nowIso = new Date().toISOString()): Record<string, unknown> {
  const m: Record<string, unknown> = { ...message };
  m.job_id = typeof m.job_id === 'string' && DECIMAL_ID.test(m.job_id) ? m.job_id : null;
  m.run_id = cut(m.run_id, 256) ?? null;
  m.exit_code = typeof m.exit_code === 'number' && Number.isFinite(m.exit_code) ? Math.trunc(m.exit_code) : null;
  m.duration_seconds = whole(m.duration_seconds) ?? 0;
  m.started_at = isoOr(m.started_at, nowIso);
  m.completed_at = m.completed_at === null || m.completed_at === undefined ? null : isoOr(m.completed_at, nowIso);
  m.error = typeof m.error === 'string' ? truncateText(m.error) : null;
  m.memory_warnings = whole(m.memory_warnings) ?? 0;
  const timings: Record<string, number> = {};
  for (const [key, value] of Object.entries((m.timings as Record<string, unknown> | undefined) ?? {})) {
    if (key.length >= 1 && key.length <= 64 && typeof value === 'number' && Number.isFinite(value)) timings[key] = Math.max(0, value);
  }
  m.timings = timings;
  for (const key of ['bootstrap_boot_seconds', 'bootstrap_config_seconds', 'bootstrap_runner_seconds', 'bootstrap_register_seconds', 'bootstrap_total_seconds']) {
    const value = m[key];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 1e9)) delete m[key];
  }
  for (const key of ['log_lines_shipped', 'log_lines_dropped']) if (m[key] !== undefined) m[key] = whole(m[key]) ?? 0;
  for (const key of ['job_result', 'build_cache_interception']) {
    if (m[key] !== undefined) m[key] = cut(m[key], 64);
    if (m[key] === undefined) delete m[key];
  }
  if (Array.isArray(m.tool_cache_misses)) {
    m.tool_cache_misses = m.tool_cache_misses.filter((v): v is string => typeof v === 'string' && v !== '' && v.length <= 512).slice(0, 50);
  }
  if (m.github !== undefined) {
    const github: Record<string, string> = {};
    const source = (m.github ?? {}) as Record<string, unknown>;
    for (const [key, max] of [['run_id', 256], ['run_attempt', 256], ['job', 256], ['repository', 256], ['workflow', 1024]] as const) {
      const value = cut(source[key], max);
      if (value !== undefined) github[key] = value;
    }
    if (Object.keys(github).length > 0) m.github = github;
    else delete m.github;
  }
  return m;
}

/** The last resort when even a repaired message fails: what the orchestrator needs to act, and why. */
function minimalMessage(message: Record<string, unknown>, issues: string, nowIso: string): Record<string, unknown> {
  const status = telemetryMessageSchema.shape.status.safeParse(message.status).data ?? 'failure';
  return {
    instance_id: message.instance_id,
    job_id: typeof message.job_id === 'string' && DECIMAL_ID.test(message.job_id) ? message.job_id : null,
    run_id: null,
    status,
    exit_code: null,
    duration_seconds: 0,
    started_at: nowIso,
    completed_at: status === 'started' ? null : nowIso,
    error: truncateText(`the agent rebuilt this message (${issues})${typeof message.error === 'string' ? `: ${message.error}` : ''}`),
    interrupted_by: null,
    timings: {},
    memory_warnings: 0,
  };
}

/** Redact, repair, validate and serialize a message: exactly what would go on the queue. */
export function prepareTelemetry(message: TelemetryMessage | TelemetryBody, vault?: SecretVault): PreparedTelemetry {
  const redact = (s: string) => (vault ? vault.redact(s) : s);
  const redactAll = (value: unknown): unknown =>
    typeof value === 'string'
      ? redact(value)
      : Array.isArray(value)
        ? value.map(redactAll)
        : value !== null && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactAll(v)]))
          : value;
  // Redact first, then cut: a secret cut in two by the truncation would escape redaction. Only the
  // free text is redacted: the job can add masks (`::add-mask::`), and a mask must never turn the
  // instance id, the job id or the status into `***` (the orchestrator would drop the message).
  const redacted: Record<string, unknown> = { ...message };
  for (const key of FREE_TEXT_FIELDS) if (redacted[key] !== undefined) redacted[key] = redactAll(redacted[key]);
  if (typeof redacted.instance_id !== 'string' || redacted.instance_id === '') {
    return { ok: false, error: 'invalid telemetry message: no instance_id (the orchestrator cannot place it)' };
  }
  const nowIso = new Date().toISOString();
  const first = telemetryMessageSchema.safeParse({ ...redacted, error: typeof redacted.error === 'string' ? truncateText(redacted.error) : redacted.error });
  let parsed = first;
  let repaired: string | undefined;
  if (!first.success) {
    repaired = first.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
    parsed = telemetryMessageSchema.safeParse(repairTelemetry(redacted, nowIso));
    if (!parsed.success) parsed = telemetryMessageSchema.safeParse(minimalMessage(redacted, redact(repaired), nowIso));
    if (!parsed.success) return { ok: false, error: `invalid telemetry message: ${redact(repaired)}` };
  }
  let body = sqsSafeJson(parsed.data);
  if (Buffer.byteLength(body) > MAX_BODY_BYTES) {
    const rebuilt = telemetryMessageSchema.safeParse(minimalMessage(redacted, 'too large', nowIso));
    if (!rebuilt.success) return { ok: false, error: `telemetry message too large: ${Buffer.byteLength(body)} bytes (limit ${MAX_BODY_BYTES})` };
    parsed = rebuilt;
    body = sqsSafeJson(parsed.data);
    repaired = `${repaired ? `${repaired}; ` : ''}too large`;
  }
  return { ok: true, message: parsed.data!, body, ...(repaired ? { repaired: redact(repaired) } : {}) };
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
    throw new TelemetryError(error);
  }
  const prepared = prepareTelemetry(options.message, options.vault);
  if (!prepared.ok) {
    logger?.warn({ status }, `telemetry not sent: ${prepared.error}`);
    throw new TelemetryError(prepared.error);
  }
  if (prepared.repaired) logger?.warn({ status, repaired: prepared.repaired }, 'telemetry message repaired to fit the orchestrator\'s types');

  const redact = (text: string) => (options.vault ? options.vault.redact(text) : text);
  const timeoutMs = options.timeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
  const attemptSignal = AbortSignal.any([AbortSignal.timeout(Math.max(1, timeoutMs)), ...(signal ? [signal] : [])]);
  try {
    await raceAbort(
      client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: prepared.body, ...fifoFields(queueUrl, prepared.message) }), { abortSignal: attemptSignal }),
      attemptSignal,
    );
  } catch (error) {
    if (signal?.aborted) throw new TelemetryError('telemetry send aborted', { cause: error });
    const timedOut = attemptSignal.aborted;
    const text = timedOut ? `SendMessage did not answer within ${timeoutMs} ms` : redact(describeError(error)) || (error as { name?: string })?.name || 'send failed';
    const retriable = timedOut || isRetriableAwsError(error);
    logger?.warn({ status, err: text, retriable }, 'telemetry send failed');
    throw new TelemetryError(truncateText(text, 1024), { cause: error, retriable });
  }
  logger?.info({ status }, 'telemetry sent');
  return { sent: true };
}
