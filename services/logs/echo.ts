/**
 * The runner's lines on the agent's stdout, for journald: the job's log stays on the instance
 * (`journalctl -u runs-fleet-agent`) whether CloudWatch shipping is off, failing or on.
 *
 * Batched. One JSON object, one ISO timestamp and one write per line cost more CPU in a log
 * flood than everything else the agent does with the line (bench/logs.ts): lines are encoded
 * by hand (the same JSON as `JSON.stringify({ level, time, msg, stream, line })`, field for
 * field), a timestamp's text is reused while the millisecond is the same, and what gathers
 * within one turn of the event loop goes out in one write (at most `BATCH_CHARS` at a time).
 *
 * In order. The agent's own log lines go through `write`, which first writes the batch
 * waiting: stdout shows the agent's and the runner's lines in the order they happened.
 *
 * Bounded. When stdout falls behind (more than `backlogBytes` not written yet, a job flooding
 * its output faster than journald takes it), lines are not echoed but counted (`notEchoed`):
 * CloudWatch still gets every one, and memory does not grow without limit.
 */

import { isPlainJsonText } from './json-text.js';

/** A batch is written once it holds this many characters (else at the end of the event loop's turn). */
export const BATCH_CHARS = 64 * 1024;
export const DEFAULT_BACKLOG_BYTES = 1024 * 1024;

/** Anything above ASCII (JSON.stringify keeps such characters as they are). */
const NOT_ASCII = /[^\x00-\x7f]/;

export interface StdoutEchoOptions {
  /** Writes to stdout; `latin1` when the text is known to be ASCII (encoded without a UTF-8 pass). */
  write: (text: string, encoding?: 'latin1') => void;
  /** Bytes stdout has not written yet (default: process.stdout.writableLength). */
  backlog?: () => number;
  backlogBytes?: number;
}

export class StdoutEcho {
  /** Runner lines not echoed because stdout was behind. */
  notEchoed = 0;
  private batch = '';
  /** Whether the batch is ASCII only (then written as latin1: a copy, where UTF-8 encodes every character). */
  private ascii = true;
  /** Whether stdout was behind when this batch started: asked once a batch, not once a line. */
  private behind = false;
  private scheduled = false;
  private lastMs = Number.NaN;
  private lastTime = '';
  private readonly out: (text: string, encoding?: 'latin1') => void;
  private readonly backlog: () => number;
  private readonly backlogBytes: number;

  constructor(options: StdoutEchoOptions) {
    this.out = options.write;
    this.backlog = options.backlog ?? (() => process.stdout.writableLength);
    this.backlogBytes = options.backlogBytes ?? DEFAULT_BACKLOG_BYTES;
  }

  /** A runner line (already redacted), read at `timestampMs`, from `stream`. */
  runnerLine(line: string, timestampMs: number, stream: 'stdout' | 'stderr'): void {
    if (this.batch === '') this.behind = this.backlog() > this.backlogBytes;
    if (this.behind) {
      this.notEchoed += 1;
      return;
    }
    if (timestampMs !== this.lastMs) {
      this.lastMs = timestampMs;
      this.lastTime = new Date(timestampMs).toISOString();
    }
    let text: string;
    if (isPlainJsonText(line)) text = `"${line}"`;
    else {
      text = JSON.stringify(line);
      if (this.ascii && NOT_ASCII.test(text)) this.ascii = false;
    }
    // The stream is `stdout` or `stderr`, the names OutputStream allows.
    const kind = `"${stream}"`;
    this.batch += `{"level":"info","time":"${this.lastTime}","msg":"runner","stream":${kind},"line":${text}}\n`;
    if (this.batch.length >= BATCH_CHARS) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Any other line for stdout (the agent's log): after the runner lines waiting, in order. */
  write(text: string): void {
    this.flush();
    this.out(text);
  }

  /** Write the runner lines waiting now. */
  flush(): void {
    if (this.batch === '') return;
    const batch = this.batch;
    const ascii = this.ascii;
    this.batch = '';
    this.ascii = true;
    if (ascii) this.out(batch, 'latin1');
    else this.out(batch);
  }
}
