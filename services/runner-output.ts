/**
 * The runner's output: bytes → lines → what they mean.
 *
 * `LineSplitter` turns a byte stream into lines whatever the chunking: a line split
 * across chunks, a multi-byte character split across chunks, CRLF endings, and lines
 * too long to hold (capped at `MAX_LINE_BYTES` per piece; the rest follows as
 * continuation pieces, cut on a UTF-8 character boundary).
 *
 * `parseRunnerLine` recognises the lines actions/runner prints on stdout
 * (docs/runner-and-aws-facts.md); timestamps are `yyyy-MM-dd HH:mm:ssZ`, UTC.
 */

/** Longest piece of a line handed on at once (1 MiB, the CloudWatch Logs batch limit). */
export const MAX_LINE_BYTES = 1024 * 1024;

/**
 * `continued` is false for the first piece of a line (a whole line, normally) and
 * true for the pieces that follow it when the line was longer than the cap.
 */
export type LineHandler = (line: string, continued: boolean) => void;

const LF = 0x0a;
const CR = 0x0d;

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The current line already had a piece emitted. */
  private continued = false;

  constructor(
    private readonly onLine: LineHandler,
    private readonly maxBytes: number = MAX_LINE_BYTES,
  ) {
    if (!Number.isInteger(maxBytes) || maxBytes < 4) throw new RangeError('maxBytes must be an integer ≥ 4');
  }

  /** Feed the next chunk of the stream. */
  push(chunk: Uint8Array | string): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const newline = bytes.indexOf(LF, start);
      if (newline === -1) break;
      this.append(bytes.subarray(start, newline));
      this.finishLine();
      start = newline + 1;
    }
    if (start < bytes.length) this.append(bytes.subarray(start));
  }

  /** The stream ended: a last line without a newline is still a line. */
  end(): void {
    if (this.pendingBytes > 0) this.finishLine();
    this.continued = false;
  }

  private append(part: Buffer): void {
    if (part.length === 0) return;
    this.pending.push(part);
    this.pendingBytes += part.length;
    // Hold at most ~2 caps: cut pieces off the front in one go (linear, not quadratic).
    // One byte more than the cap is always kept back so that a CR before the coming LF
    // stays with its line instead of becoming a piece of its own.
    if (this.pendingBytes > 2 * this.maxBytes) {
      const buf = Buffer.concat(this.pending, this.pendingBytes);
      let offset = 0;
      while (buf.length - offset > this.maxBytes + 1) {
        const cut = this.cutPoint(buf, offset);
        this.emit(buf.subarray(offset, cut));
        offset = cut;
      }
      this.pending = [buf.subarray(offset)];
      this.pendingBytes = buf.length - offset;
    }
  }

  private finishLine(): void {
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (buf.length > 0 && buf[buf.length - 1] === CR) buf = buf.subarray(0, buf.length - 1);
    let offset = 0;
    while (buf.length - offset > this.maxBytes) {
      const cut = this.cutPoint(buf, offset);
      this.emit(buf.subarray(offset, cut));
      offset = cut;
    }
    // An empty line is a line; an empty remainder of a long line is nothing.
    if (offset < buf.length || !this.continued) this.emit(buf.subarray(offset));
    this.continued = false;
  }

  /** Where a piece starting at `offset` ends: at most maxBytes, never inside a UTF-8 character. */
  private cutPoint(buf: Buffer, offset: number): number {
    let cut = offset + this.maxBytes;
    // Step back over continuation bytes (10xxxxxx): at most 3 for valid UTF-8.
    while (cut > offset + this.maxBytes - 4 && (buf[cut]! & 0xc0) === 0x80) cut--;
    return (buf[cut]! & 0xc0) === 0x80 ? offset + this.maxBytes : cut;
  }

  private emit(bytes: Buffer): void {
    const continued = this.continued;
    this.continued = true;
    this.onLine(bytes.toString('utf8'), continued);
  }
}

// ---------------------------------------------------------------------------------------

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
