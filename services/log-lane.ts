/**
 * One ordered queue of log events bound for one CloudWatch stream.
 *
 * Events stay in memory while the shared memory budget allows; above it, every
 * new event goes to a spill file (so order is kept: memory first, then the file,
 * read back in chunks), until the file has been read back entirely. Pushing never
 * waits for the network: the runner's output is never stalled by CloudWatch.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  EVENT_OVERHEAD_BYTES,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  MAX_BATCH_SPAN_MS,
  eventBytes,
  splitUtf8,
  toEventMessage,
  type LogEntry,
} from './log-events.js';

/** Shared by the lanes of one shipper: bytes held in memory, and the bound above which lanes spill. */
export interface MemoryBudget {
  used: number;
  readonly limit: number;
}

/** A batch taken from the lane, being sent (kept until it is shipped or dropped). */
export interface LogBatch {
  entries: LogEntry[];
  bytes: number;
  lines: number;
  attempt: number;
}

export interface LogLaneOptions {
  /** Directory for the spill file (created when first needed). */
  spillDir: string;
  budget: MemoryBudget;
  /** Called when the spill file cannot be written or read (events are then dropped and counted). */
  onSpillError: (error: unknown) => void;
}

/** Rough per-event bookkeeping cost in memory, on top of the message. */
const ENTRY_OVERHEAD_BYTES = 64;
const WRITE_BUFFER_BYTES = 256 * 1024;
const READ_CHUNK_BYTES = 512 * 1024;

let spillSequence = 0;

export class LogLane {
  /** Events queued (memory + spill file), their batch bytes, and the lines they end. */
  events = 0;
  bytes = 0;
  lines = 0;
  /** Lines this lane could not keep (spill failure, flush deadline, rejected by CloudWatch). */
  dropped = 0;
  /** Lines delivered. */
  shipped = 0;
  /** The batch being sent, if any. */
  current: LogBatch | undefined;

  private mem: LogEntry[] = [];
  private head = 0;
  private memUsed = 0;
  private lastTs = -Infinity;

  private spilling = false;
  private fd: number | undefined;
  private path: string | undefined;
  private writePos = 0;
  private readPos = 0;
  /** Records encoded and not yet written (allocated on first spill). */
  private writeBuf: Buffer | undefined;
  private writeLen = 0;
  private pendingWrite = { events: 0, bytes: 0, lines: 0 };

  constructor(
    readonly name: string,
    private readonly options: LogLaneOptions,
  ) {}

  /**
   * Queue a line (split into several events when it is too long for one). `startsLine`
   * false = a continuation piece of the previous line (it is not counted as a line).
   * Timestamps never go backwards: an earlier one is clamped to its predecessor's.
   * Never throws; false = dropped (and counted).
   */
  push(line: string, timestampMs: number, startsLine = true): boolean {
    const read = Number.isFinite(timestampMs) ? Math.floor(timestampMs) : Date.now();
    const ts = read > this.lastTs ? read : this.lastTs;
    this.lastTs = ts;
    const pieces = splitUtf8(toEventMessage(line));
    for (let i = 0; i < pieces.length; i++) {
      const msg = pieces[i]!;
      if (!this.enqueue(ts, msg, eventBytes(msg), startsLine && i === 0 ? 1 : 0)) {
        if (startsLine) this.dropped++;
        return false;
      }
    }
    return true;
  }

  /** True when a full batch is waiting (worth sending before the timer). */
  get hasFullBatch(): boolean {
    return this.events >= MAX_BATCH_EVENTS || this.bytes >= MAX_BATCH_BYTES;
  }

  get isEmpty(): boolean {
    return this.events === 0 && this.current === undefined;
  }

  /** Lines still held (queued or being sent). */
  get pendingLines(): number {
    return this.lines + (this.current?.lines ?? 0);
  }

  /** The batch to send next: the current one (being retried) or a new one, oldest events first. */
  nextBatch(): LogBatch | undefined {
    if (this.current) return this.current;
    const entries: LogEntry[] = [];
    let bytes = 0;
    let lines = 0;
    while (entries.length < MAX_BATCH_EVENTS) {
      if (this.head >= this.mem.length && !(this.spilling && this.refill())) break;
      const e = this.mem[this.head]!;
      if (bytes + e.bytes > MAX_BATCH_BYTES) break;
      if (entries.length > 0 && e.ts - entries[0]!.ts > MAX_BATCH_SPAN_MS) break;
      entries.push(e);
      this.head++;
      bytes += e.bytes;
      lines += e.lines;
      this.memUsed -= e.bytes + ENTRY_OVERHEAD_BYTES;
      this.options.budget.used -= e.bytes + ENTRY_OVERHEAD_BYTES;
    }
    this.compact();
    if (entries.length === 0) return undefined;
    this.events -= entries.length;
    this.bytes -= bytes;
    this.lines -= lines;
    this.current = { entries, bytes, lines, attempt: 0 };
    return this.current;
  }

  /** The current batch was delivered; `rejectedLines` of it were refused by CloudWatch. */
  delivered(rejectedLines = 0): void {
    if (!this.current) return;
    this.shipped += this.current.lines - rejectedLines;
    this.dropped += rejectedLines;
    this.current = undefined;
  }

  /** Give up on the current batch (counted as dropped). */
  dropCurrent(): number {
    const lines = this.current?.lines ?? 0;
    this.dropped += lines;
    this.current = undefined;
    return lines;
  }

  /** Give up on everything held (memory, spill file, current batch): counted as dropped. */
  dropAll(): number {
    const lines = this.dropCurrent() + this.lines;
    this.dropped += this.lines;
    this.options.budget.used -= this.memUsed;
    this.memUsed = 0;
    this.mem = [];
    this.head = 0;
    this.events = 0;
    this.bytes = 0;
    this.lines = 0;
    this.resetSpill();
    return lines;
  }

  /** Forget everything without counting (shipping was never configured) and remove the spill file. */
  discard(): void {
    const dropped = this.dropped;
    this.dropAll();
    this.dropped = dropped;
    this.close();
  }

  /** Close and remove the spill file. */
  close(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        /* already closed */
      }
      this.fd = undefined;
    }
    if (this.path !== undefined) {
      try {
        unlinkSync(this.path);
      } catch {
        /* already gone */
      }
      this.path = undefined;
    }
    this.writeBuf = undefined;
    this.writeLen = 0;
    this.pendingWrite = { events: 0, bytes: 0, lines: 0 };
    this.spilling = false;
    this.writePos = 0;
    this.readPos = 0;
  }

  /** Spill file bytes written and not yet read back (for tests and diagnostics). */
  get spilledBytes(): number {
    return this.writePos - this.readPos + this.writeLen;
  }

  private enqueue(ts: number, msg: string, bytes: number, lines: 0 | 1): boolean {
    const cost = bytes + ENTRY_OVERHEAD_BYTES;
    const budget = this.options.budget;
    this.events++;
    this.bytes += bytes;
    this.lines += lines;
    if (!this.spilling && budget.used + cost <= budget.limit) {
      this.mem.push({ ts, msg, bytes, lines });
      this.memUsed += cost;
      budget.used += cost;
    } else if (!this.spill(ts, msg, bytes, lines)) {
      this.events--;
      this.bytes -= bytes;
      this.lines -= lines;
      return false;
    }
    return true;
  }

  private spill(ts: number, msg: string, bytes: number, lines: 0 | 1): boolean {
    try {
      if (this.fd === undefined) {
        mkdirSync(this.options.spillDir, { recursive: true });
        this.path = join(this.options.spillDir, `${this.name}-${process.pid}-${++spillSequence}.spill`);
        this.fd = openSync(this.path, 'w+', 0o600);
      }
    } catch (error) {
      this.options.onSpillError(error);
      return false;
    }
    this.spilling = true;
    // Record: timestamp TAB flags TAB message LF; a message with a newline is JSON-encoded (flag "j").
    const plain = !msg.includes('\n');
    const header = plain ? this.header(ts, lines) : `${ts}\t${lines}j\t`;
    const body = plain ? msg : JSON.stringify(msg);
    const size = header.length + (plain ? bytes - EVENT_OVERHEAD_BYTES : Buffer.byteLength(body)) + 1;
    this.writeBuf ??= Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
    // The buffered records could not be written (counted as dropped): this one is dropped too.
    if (this.writeLen + size > this.writeBuf.length && !this.flushWrites()) return false;
    this.pendingWrite.events++;
    this.pendingWrite.bytes += bytes;
    this.pendingWrite.lines += lines;
    if (size > this.writeBuf.length) {
      // A record larger than the buffer (a ~256 KiB event) is written on its own; a failure counts it.
      this.writeRecord(Buffer.from(`${header}${body}\n`, 'utf8'));
      return true;
    }
    this.writeLen += this.writeBuf.write(header, this.writeLen, 'latin1');
    this.writeLen += this.writeBuf.write(body, this.writeLen, 'utf8');
    this.writeBuf[this.writeLen++] = 10;
    return true;
  }

  /** Record headers for the last timestamp seen (lines arrive many per millisecond). */
  private headerTs = -1;
  private headers: [string, string] = ['', ''];
  private header(ts: number, lines: 0 | 1): string {
    if (ts !== this.headerTs) {
      this.headerTs = ts;
      this.headers = [`${ts}\t0\t`, `${ts}\t1\t`];
    }
    return this.headers[lines];
  }

  private writeRecord(data: Buffer): boolean {
    try {
      this.writePos += writeSync(this.fd!, data, 0, data.length, this.writePos);
      this.pendingWrite = { events: 0, bytes: 0, lines: 0 };
      return true;
    } catch (error) {
      return this.lostWrites(error);
    }
  }

  /** Write buffered records to the spill file. False when that failed: they are dropped and counted. */
  private flushWrites(): boolean {
    if (this.writeLen === 0 || this.fd === undefined || this.writeBuf === undefined) return true;
    const len = this.writeLen;
    this.writeLen = 0;
    try {
      this.writePos += writeSync(this.fd, this.writeBuf, 0, len, this.writePos);
      this.pendingWrite = { events: 0, bytes: 0, lines: 0 };
      return true;
    } catch (error) {
      return this.lostWrites(error);
    }
  }

  /** Records that could not be written are gone: take them out of the counts, count them as dropped. */
  private lostWrites(error: unknown): false {
    this.options.onSpillError(error);
    const lost = this.pendingWrite;
    this.pendingWrite = { events: 0, bytes: 0, lines: 0 };
    this.writeLen = 0;
    this.events -= lost.events;
    this.bytes -= lost.bytes;
    this.lines -= lost.lines;
    this.dropped += lost.lines;
    if (this.writePos === this.readPos) this.resetSpill();
    return false;
  }

  /** Move the next chunk of the spill file into memory. False when the file is exhausted. */
  private refill(): boolean {
    this.flushWrites();
    if (this.fd === undefined || this.readPos >= this.writePos) {
      this.resetSpill();
      return false;
    }
    try {
      let size = READ_CHUNK_BYTES;
      for (;;) {
        const len = Math.min(size, this.writePos - this.readPos);
        const buf = Buffer.allocUnsafe(len);
        const got = readSync(this.fd, buf, 0, len, this.readPos);
        const end = buf.lastIndexOf(10, got - 1);
        if (end < 0) {
          if (got < len || len === this.writePos - this.readPos) throw new Error(`spill file ${this.path} is truncated`);
          size *= 2;
          continue;
        }
        this.readPos += end + 1;
        this.compact();
        for (const record of buf.toString('utf8', 0, end).split('\n')) {
          const entry = decodeRecord(record);
          this.mem.push(entry);
          this.memUsed += entry.bytes + ENTRY_OVERHEAD_BYTES;
          this.options.budget.used += entry.bytes + ENTRY_OVERHEAD_BYTES;
        }
        break;
      }
    } catch (error) {
      this.options.onSpillError(error);
      // What is left in the file is lost: count it (what is in memory stays).
      let inMem = { events: 0, bytes: 0, lines: 0 };
      for (let i = this.head; i < this.mem.length; i++) {
        const e = this.mem[i]!;
        inMem = { events: inMem.events + 1, bytes: inMem.bytes + e.bytes, lines: inMem.lines + e.lines };
      }
      this.dropped += this.lines - inMem.lines;
      this.events = inMem.events;
      this.bytes = inMem.bytes;
      this.lines = inMem.lines;
      this.resetSpill();
      return this.head < this.mem.length;
    }
    if (this.readPos >= this.writePos && this.writeLen === 0) this.resetSpill();
    return this.head < this.mem.length;
  }

  /** Back to memory mode: the file is empty again (kept open for the next spill). */
  private resetSpill(): void {
    this.spilling = false;
    this.writeLen = 0;
    this.pendingWrite = { events: 0, bytes: 0, lines: 0 };
    this.writePos = 0;
    this.readPos = 0;
    if (this.fd !== undefined) {
      try {
        ftruncateSync(this.fd, 0);
      } catch {
        /* the next write starts at 0 anyway */
      }
    }
  }

  private compact(): void {
    if (this.head === this.mem.length) {
      this.mem = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.mem.length) {
      this.mem = this.mem.slice(this.head);
      this.head = 0;
    }
  }
}

function decodeRecord(record: string): LogEntry {
  const t1 = record.indexOf('\t');
  const t2 = record.indexOf('\t', t1 + 1);
  const flags = record.slice(t1 + 1, t2);
  const raw = record.slice(t2 + 1);
  const msg = flags.endsWith('j') ? (JSON.parse(raw) as string) : raw;
  return { ts: Number(record.slice(0, t1)), msg, bytes: eventBytes(msg), lines: flags.startsWith('1') ? 1 : 0 };
}
