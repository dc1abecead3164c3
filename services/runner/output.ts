/**
 * What the runner's output lines mean. (Bytes → lines, with redaction, is
 * services/logs/line-redactor.ts.)
 *
 * `parseRunnerLine` recognises the lines actions/runner prints on stdout
 * (docs/runner-and-aws-facts.md); timestamps are `yyyy-MM-dd HH:mm:ssZ`, UTC.
 */

export const JOB_RESULTS = ['Succeeded', 'SucceededWithIssues', 'Failed', 'Canceled', 'Skipped', 'Abandoned'] as const;
export type JobResult = (typeof JOB_RESULTS)[number];

export type RunnerOutputEvent =
  | { kind: 'connected' }
  | { kind: 'listening'; at: string }
  | { kind: 'job-started'; jobName: string; at: string }
  | { kind: 'job-completed'; jobName: string; result: JobResult; at: string };

const TS = '(\\d{4}-\\d{2}-\\d{2}) (\\d{2}:\\d{2}:\\d{2})Z';
const CONNECTED = /^(?:√\s*)?Connected to GitHub$/;
const LISTENING = new RegExp(`^${TS}: Listening for Jobs$`);
const RUNNING_JOB = new RegExp(`^${TS}: Running job: (.+)$`);
const JOB_COMPLETED = new RegExp(`^${TS}: Job (.+) completed with result: (${JOB_RESULTS.join('|')})$`);

/** `yyyy-MM-dd HH:mm:ssZ` parts → ISO-8601 (`2025-01-01T12:00:00.000Z`). */
function isoTime(date: string, time: string): string {
  const ms = Date.parse(`${date}T${time}Z`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : `${date}T${time}Z`;
}

/** What a (whole, redacted) runner output line means, if anything. */
export function parseRunnerLine(raw: string): RunnerOutputEvent | undefined {
  const line = raw.trim();
  if (line.length === 0 || line.length > 4096) return undefined;
  if (CONNECTED.test(line)) return { kind: 'connected' };
  let m = LISTENING.exec(line);
  if (m) return { kind: 'listening', at: isoTime(m[1]!, m[2]!) };
  m = JOB_COMPLETED.exec(line);
  if (m) return { kind: 'job-completed', jobName: m[3]!, result: m[4] as JobResult, at: isoTime(m[1]!, m[2]!) };
  m = RUNNING_JOB.exec(line);
  if (m) return { kind: 'job-started', jobName: m[3]!.trim(), at: isoTime(m[1]!, m[2]!) };
  return undefined;
}
