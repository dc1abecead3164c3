/**
 * The telemetry message format (SPEC §2, the runs-fleet orchestrator's contract),
 * as a zod schema. `sendTelemetry` validates every message against it before
 * sending; `schemas/telemetry.schema.json` is the same schema as JSON Schema for
 * the orchestrator's side (a test keeps the two identical).
 *
 * Types are the orchestrator's Go `Message` (pkg/termination/handler.go), decoded with
 * encoding/json, which drops the whole message on one mistyped field: `exit_code` and
 * `duration_seconds` integers, timestamps RFC 3339 (or null, never ""), `job_id` a
 * decimal string (it is parsed as int64), `bootstrap_*_seconds` numbers,
 * `tool_cache_misses` strings. `instance_id` and `status` are required; `job_id` is null
 * only for `bootstrap_failed` (the orchestrator finds that job by instance).
 */
import { z } from 'zod';

/** Longest `error` text sent; longer texts are cut and end with `…[truncated N chars]`. */
export const MAX_ERROR_CHARS = 4096;
/** Room for the truncation marker. */
const ERROR_MARKER_ROOM = 64;

const isoTime = z.iso.datetime({ offset: false });
const id = z.string().min(1).max(256);
/** GitHub's run and job ids: the orchestrator parses job_id with strconv.ParseInt(…, 10, 64). */
const decimalId = z.string().regex(/^\d{1,19}$/);
/** Go int (64-bit here). */
const goInt = z.number().int().min(-(2 ** 53)).max(2 ** 53);
const seconds = z.number().positive().max(1e9);

export const TELEMETRY_STATUSES = ['started', 'success', 'failure', 'timeout', 'interrupted', 'bootstrap_failed'] as const;
export const INTERRUPTED_BY = ['sigterm', 'spot', 'disk_full'] as const;
export const LOG_UPLOAD_OUTCOMES = ['uploaded', 'partial', 'failed', 'skipped', 'disabled'] as const;

export const telemetryMessageSchema = z.strictObject({
  instance_id: z.string().min(1).max(64),
  job_id: decimalId.nullable(),
  run_id: id.nullable(),
  status: z.enum(TELEMETRY_STATUSES),
  exit_code: goInt.nullable(),
  duration_seconds: goInt.nonnegative(),
  started_at: isoTime,
  completed_at: isoTime.nullable(),
  error: z.string().max(MAX_ERROR_CHARS + ERROR_MARKER_ROOM).nullable(),
  interrupted_by: z.enum(INTERRUPTED_BY).nullable(),
  /** The runner's word for the workflow's result (Succeeded, Failed, Canceled, …). */
  job_result: z.string().min(1).max(64).optional(),
  log_upload: z.enum(LOG_UPLOAD_OUTCOMES).optional(),
  tool_cache_misses: z.array(z.string().min(1).max(512)).max(50).optional(),
  build_cache_interception: z.string().min(1).max(64).optional(),
  bootstrap_boot_seconds: seconds.optional(),
  bootstrap_config_seconds: seconds.optional(),
  bootstrap_runner_seconds: seconds.optional(),
  bootstrap_register_seconds: seconds.optional(),
  bootstrap_total_seconds: seconds.optional(),
  /** Seconds spent in each state. */
  timings: z.record(z.string().min(1).max(64), z.number().nonnegative()),
  memory_warnings: z.number().int().nonnegative(),
  log_lines_shipped: z.number().int().nonnegative().optional(),
  log_lines_dropped: z.number().int().nonnegative().optional(),
  /** The job's own identity, as the job-started/-completed hooks saw it (absent when they never ran). */
  github: z
    .strictObject({
      run_id: id.optional(),
      run_attempt: id.optional(),
      job: id.optional(),
      repository: id.optional(),
      workflow: z.string().min(1).max(1024).optional(),
    })
    .optional(),
});

export type TelemetryBody = z.infer<typeof telemetryMessageSchema>;

/**
 * The schema as JSON Schema: what `schemas/telemetry.schema.json` holds. After changing
 * the zod schema, regenerate the file:
 *   npx esbuild services/aws/telemetry-schema.ts --bundle --platform=node --format=esm --outfile=/tmp/ts.mjs && \
 *   node -e "import('/tmp/ts.mjs').then((m) => console.log(JSON.stringify(m.telemetryJsonSchema(), null, 2)))" > schemas/telemetry.schema.json
 */
export function telemetryJsonSchema(): Record<string, unknown> {
  return { title: 'runs-fleet agent telemetry message (SQS body)', ...z.toJSONSchema(telemetryMessageSchema) };
}
