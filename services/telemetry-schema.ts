/**
 * The telemetry message format (SPEC §2, the runs-fleet orchestrator's contract),
 * as a zod schema. `sendTelemetry` validates every message against it before
 * sending; `schemas/telemetry.schema.json` is the same schema as JSON Schema for
 * the orchestrator's side (a test keeps the two identical).
 *
 * The orchestrator drops messages without `instance_id`, `job_id` or `status`:
 * `instance_id` and `status` must be present and non-empty; `job_id` is null only
 * when the runner config could not be read (nothing else is known then).
 */
import { z } from 'zod';

/** Longest `error` text sent; longer texts are cut and end with `…[truncated N chars]`. */
export const MAX_ERROR_CHARS = 4096;
/** Room for the truncation marker. */
const ERROR_MARKER_ROOM = 64;

const isoTime = z.iso.datetime({ offset: false });
const id = z.string().min(1).max(256);

export const TELEMETRY_STATUSES = ['started', 'success', 'failure', 'timeout', 'interrupted', 'bootstrap_failed'] as const;
export const INTERRUPTED_BY = ['sigterm', 'spot', 'disk_full'] as const;

export const telemetryMessageSchema = z.strictObject({
  instance_id: z.string().min(1).max(64),
  job_id: id.nullable(),
  run_id: id.nullable(),
  status: z.enum(TELEMETRY_STATUSES),
  exit_code: z.number().int().nullable(),
  duration_seconds: z.number().nonnegative(),
  started_at: isoTime,
  completed_at: isoTime.nullable(),
  error: z.string().max(MAX_ERROR_CHARS + ERROR_MARKER_ROOM).nullable(),
  interrupted_by: z.enum(INTERRUPTED_BY).nullable(),
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
 *   npx esbuild services/telemetry-schema.ts --bundle --platform=node --format=esm --outfile=/tmp/ts.mjs && \
 *   node -e "import('/tmp/ts.mjs').then((m) => console.log(JSON.stringify(m.telemetryJsonSchema(), null, 2)))" > schemas/telemetry.schema.json
 */
export function telemetryJsonSchema(): Record<string, unknown> {
  return { title: 'runs-fleet agent telemetry message (SQS body)', ...z.toJSONSchema(telemetryMessageSchema) };
}
