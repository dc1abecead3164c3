/**
 * What the runner's output lines mean. (Bytes → lines, with redaction, is
 * services/logs/line-redactor.ts.)
 *
 * `parseRunnerLine` recognises the lines actions/runner prints on stdout
 * (docs/runner-and-aws-facts.md); timestamps are `yyyy-MM-dd HH:mm:ssZ`, UTC.
 * `fatalRunnerLine` recognises, on stdout or stderr (`Terminal.WriteError` writes to
 * stderr), the lines after which this ephemeral runner will never get its job
 * (actions/runner v2.336.0: src/Runner.Listener/Program.cs, MessageListener.cs,
 * BrokerMessageListener.cs, Runner.cs; src/Misc/layoutroot/run-helper.sh.template).
 */

export const JOB_RESULTS = ['Succeeded', 'SucceededWithIssues', 'Failed', 'Canceled', 'Skipped', 'Abandoned'] as const;
export type JobResult = (typeof JOB_RESULTS)[number];

export type RunnerOutputEvent =
  | { kind: 'connected' }
  | { kind: 'listening'; at: string }
  | { kind: 'job-started'; jobName: string; at: string }
  | { kind: 'job-completed'; jobName: string; result: JobResult; at: string };

/** Why the runner will never get its job, from one of its lines. */
export type RunnerFatalReason = 'deprecated' | 'session-exists' | 'runner-gone' | 'registration-deleted' | 'error';

export type RunnerFatalLine = { kind: 'fatal'; reason: RunnerFatalReason; line: string };

/**
 * Anchored to the runner's own wording: a job's display name is printed raw inside "Running job:"
 * and "completed with result" lines, so nothing here may match inside another line (and those
 * two are parsed first: `fatalRunnerLine` is for lines `parseRunnerLine` does not know).
 */
const FATAL_LINES: [RegExp, RunnerFatalReason][] = [
  // The server's 403 for a refused version ("Runner version v2.329.0 is deprecated and cannot receive
  // messages"), printed as "An error occurred: …" (Program.cs) or in a connect error; and
  // run-helper.sh's line for exit code 7.
  [/^(?:An error occur{1,2}ed|Runner connect error): .*\bversion\b.*\bis deprecated\b/i, 'deprecated'],
  [/^Runner listener exit with deprecated version exit code: 7\.?$/, 'deprecated'],
  [/^A session for this runner already exists\.?$/, 'session-exists'],
  [/^The runner no longer exists on the server\./, 'runner-gone'],
  [/^(?:Failed to create a session\. )?The runner registration has been deleted from the server/, 'registration-deleted'],
  // Program.cs before exiting; "occured" until v2.333.0.
  [/^An error occur{1,2}ed: /, 'error'],
];

/**
 * What every FATAL_LINES pattern needs somewhere in the line (case-insensitive, so a superset):
 * one scan rules out the job's ordinary lines before the anchored patterns and the trim run on each.
 */
const FATAL_HINT = /deprecated|A session for this runner|no longer exists on the server|registration has been deleted|An error occur/i;

/** The code unit after a line's leading ASCII whitespace and controls (NaN for none): what both quick checks below look at. */
function firstAfterSpaces(raw: string): number {
  let i = 0;
  while (i < raw.length && raw.charCodeAt(i) <= 0x20) i++;
  return raw.charCodeAt(i);
}

/**
 * Whether a line can be a FATAL_LINES one: after leading whitespace, every pattern starts with
 * `A`, `R`, `T` or `F` (the first, case-insensitive, with `a` or `r`). One look at a character
 * rules out most of a job's lines before FATAL_HINT scans the whole line (in a log flood that
 * scan was ~0.18 s of agent CPU per 100 MB). A first character above ASCII may be whitespace
 * that `trim` removes (a BOM, a no-break space): such a line gets the full scan.
 */
function mayBeFatalLine(raw: string): boolean {
  const c = firstAfterSpaces(raw);
  if (c > 0x7f) return true;
  switch (c) {
    case 0x41: // A
    case 0x61: // a
    case 0x52: // R
    case 0x72: // r
    case 0x54: // T
    case 0x46: // F
      return true;
    default:
      return false;
  }
}

/** A (whole, redacted) line after which this runner will never get its job, if it is one. */
export function fatalRunnerLine(raw: string): RunnerFatalLine | undefined {
  if (!mayBeFatalLine(raw) || !FATAL_HINT.test(raw)) return undefined;
  const line = raw.trim();
  if (line.length === 0 || line.length > 4096) return undefined;
  for (const [pattern, reason] of FATAL_LINES) if (pattern.test(line)) return { kind: 'fatal', reason, line };
  return undefined;
}

const TS = '(\\d{4}-\\d{2}-\\d{2}) (\\d{2}:\\d{2}:\\d{2})Z';
/** `√ Connected to GitHub`; the check mark as an escape, so that the bundle stays ASCII (scripts/build.mjs). */
const CONNECTED = /^(?:\u221a\s*)?Connected to GitHub$/;
const LISTENING = new RegExp(`^${TS}: Listening for Jobs$`);
const RUNNING_JOB = new RegExp(`^${TS}: Running job: (.+)$`);
const JOB_COMPLETED = new RegExp(`^${TS}: Job (.+) completed with result: (${JOB_RESULTS.join('|')})$`);

/** `yyyy-MM-dd HH:mm:ssZ` parts → ISO-8601 (`2025-01-01T12:00:00.000Z`). */
function isoTime(date: string, time: string): string {
  const ms = Date.parse(`${date}T${time}Z`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : `${date}T${time}Z`;
}

/**
 * Whether a line can be one `parseRunnerLine` knows: after leading whitespace, a timestamp's digit,
 * `C` (Connected) or the check mark. One look at a character rules out the job's own lines.
 */
function mayBeRunnerLine(raw: string): boolean {
  const c = firstAfterSpaces(raw);
  return (c >= 0x30 && c <= 0x39) || c === 0x43 || c === 0x221a || c > 0x7f;
}

/** What a (whole, redacted) runner output line means, if anything. */
export function parseRunnerLine(raw: string): RunnerOutputEvent | undefined {
  if (!mayBeRunnerLine(raw)) return undefined;
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
