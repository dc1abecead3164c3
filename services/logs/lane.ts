/**
 * One ordered queue of log events bound for one CloudWatch stream, kept ready to send.
 *
 * Each event is encoded once, when it is queued, as the JSON it will have inside the
 * PutLogEvents body (`,{"timestamp":…,"message":"…"}`), into blocks of bytes. A batch
 * is then a few contiguous ranges of those blocks: nothing is decoded, re-encoded or
 * copied event by event to send it (at full speed the old per-event work — decode the
 * spill file, build objects, serialize them again — cost more than everything else the
 * shipper does). Beside its bytes, a block keeps for each event what the batching rules
 * need: the length of its JSON, its cost (UTF-8 message bytes + 26), its timestamp and
 * whether it starts a line.
 *
 * Events stay in memory while the shared budget allows; above it, new events fill a
 * block that goes, when full, to a spill file (metadata, then bytes), and keep going
 * there until the file has been read back entirely — so order is kept. Pushing never
 * waits for the network: the runner's output is never stalled by CloudWatch.
 */
import { Block, BLOCK_DATA_BYTES, BLOCK_EVENTS, EVENT_META_BYTES, seal } from './block.js';
import { SpillFile } from './spill-file.js';
import { isPlainJsonText } from './json-text.js';
import {
  EVENT_OVERHEAD_BYTES,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  MAX_BATCH_SPAN_MS,
  MAX_EVENT_MESSAGE_BYTES,
  eventBytes,
  splitUtf8,
  toEventMessage,
  type LogEntry,
} from './events.js';

/** Shared by the lanes of one shipper: bytes held in memory, and the bound above which lanes spill. */
export interface MemoryBudget {
  used: number;
  readonly limit: number;
}

/** A batch taken from the lane, being sent (kept until it is shipped or dropped). */
export interface LogBatch {
  /** The events' JSON, back to back and comma-separated: what goes between `"logEvents":[` and `]`. */
  readonly json: readonly Buffer[];
  /** Events in the batch, their cost against MAX_BATCH_BYTES, and the lines they start. */
  readonly count: number;
  readonly bytes: number;
  readonly lines: number;
  /** 1 for each event that starts a line, in order. */
  readonly lineFlags: Uint8Array;
  attempt: number;
  /**
   * Set when a request went out with `json` as its body (lean-put.ts): the batch was never
   * decoded by the SDK, so nothing will read its bytes after it is done and its blocks may be
   * reused. A batch that is not (a mocked client, the SDK's own serializer) may be decoded
   * later through `entries`: its lane then leaves its used-up blocks to the GC.
   */
  sentAsBody: boolean;
  /** The events decoded: for the SDK's own serializer and for tests only (built on first use). */
  readonly entries: LogEntry[];
}

export interface LogLaneOptions {
  /** Directory for the spill file (created when first needed). */
  spillDir: string;
  budget: MemoryBudget;
  /** Called when the spill file cannot be written or read (events are then dropped and counted). */
  onSpillError: (error: unknown) => void;
  /** Called with the bytes of each block read back from the spill file (a new block each time). */
  onReadBack?: (bytes: number) => void;
}

/**
 * Used-up blocks a lane keeps for its next events. A dead 256 KiB block waits for a full GC
 * before its memory is free: in a log flood those made most of the agent's peak RSS.
 */
const SPARE_BLOCKS = 2;

class LaneBatch implements LogBatch {
  attempt = 0;
  sentAsBody = false;
  private decoded: LogEntry[] | undefined;

  constructor(
    readonly json: readonly Buffer[],
    readonly count: number,
    readonly bytes: number,
    readonly lines: number,
    readonly lineFlags: Uint8Array,
  ) {}

  get entries(): LogEntry[] {
    this.decoded ??= (JSON.parse(`[${Buffer.concat(this.json).toString('utf8')}]`) as { timestamp: number; message: string }[]).map((e, i) => ({
      ts: e.timestamp,
      msg: e.message,
      bytes: eventBytes(e.message),
      lines: this.lineFlags[i] as 0 | 1,
    }));
    return this.decoded;
  }
}

export class LogLane {
  /** Events queued (memory, spill file and the block being spilled), their batch bytes, and the lines they start. */
  events = 0;
  bytes = 0;
  lines = 0;
  /** Lines this lane could not keep (spill failure, flush deadline, rejected by CloudWatch). */
  dropped = 0;
  /** Lines delivered. */
  shipped = 0;
  /** The batch being sent, if any. */
  current: LogBatch | undefined;

  /** Blocks in memory, oldest first; the last one takes new events (unless spilling or sealed). */
  private mem: Block[] = [];
  private memUsed = 0;
  private lastTs = -Infinity;
  private prefixTs = Number.NaN;
  private prefix = '';
  private readonly flagScratch = new Uint8Array(MAX_BATCH_EVENTS);
  /** Used-up blocks of the standard size, ready for reuse (at most SPARE_BLOCKS). */
  private spare: Block[] = [];
  /** Used-up blocks the batch being made or sent may still refer to: spare once it is done. */
  private retired: Block[] = [];
  /** False once a batch was done without going out as its own bytes: its events may still be read. */
  private reuse = true;

  private spilling = false;
  /** The block new events go to while spilling; written to the file when full. */
  private spillBlock: Block | undefined;
  private readonly spill: SpillFile;
  /** What the file holds that was not read back yet. */
  private inFile = { events: 0, bytes: 0, lines: 0 };

  constructor(
    readonly name: string,
    private readonly options: LogLaneOptions,
  ) {
    this.spill = new SpillFile(options.spillDir, name);
  }

  /**
   * Queue a line (split into several events when it is too long for one). `startsLine`
   * false = a continuation piece of the previous line (it is not counted as a line).
   * Timestamps never go backwards: an earlier one is clamped to its predecessor's.
   * False = dropped (and counted); throws only on a line that is not a string.
   */
  push(line: string, timestampMs: number, startsLine = true): boolean {
    const read = Number.isFinite(timestampMs) ? Math.floor(timestampMs) : Date.now();
    const ts = read > this.lastTs ? read : this.lastTs;
    this.lastTs = ts;
    const message = toEventMessage(line);
    // Most lines fit one event (a UTF-16 unit is at most 3 UTF-8 bytes): no splitting to do.
    if (typeof message === 'string' && message.length * 3 <= MAX_EVENT_MESSAGE_BYTES) {
      if (this.enqueue(ts, message, startsLine ? 1 : 0)) return true;
      if (startsLine) this.dropped++;
      return false;
    }
    const pieces = splitUtf8(message);
    for (let i = 0; i < pieces.length; i++) {
      if (!this.enqueue(ts, pieces[i]!, startsLine && i === 0 ? 1 : 0)) {
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
    // The previous batch was delivered or dropped: nothing refers to its used-up blocks any more.
    if (this.reuse) for (const block of this.retired) this.recycle(block);
    this.retired = [];
    const json: Buffer[] = [];
    const budget = this.options.budget;
    let count = 0;
    let bytes = 0;
    let lines = 0;
    let firstTs = 0;
    for (;;) {
      const block = this.mem[0];
      if (block === undefined) {
        if (this.spilling && this.refill()) continue;
        break;
      }
      block.flush();
      if (block.head >= block.count) {
        // Used up: let it go, unless it is the block still taking new events. The batch being
        // made may refer to it: it is reused once that batch is done.
        if (block.sealed || this.mem.length > 1) {
          this.retired.push(this.mem.shift()!);
          continue;
        }
        break;
      }
      const start = block.headOff;
      let off = start;
      let i = block.head;
      for (; i < block.count && count < MAX_BATCH_EVENTS; i++) {
        const cost = block.cost[i]!;
        if (bytes + cost > MAX_BATCH_BYTES) break;
        const ts = block.ts[i]!;
        if (count === 0) firstTs = ts;
        else if (ts - firstTs > MAX_BATCH_SPAN_MS) break;
        bytes += cost;
        lines += this.flagScratch[count] = block.flags[i]!;
        count++;
        off += block.jsonLen[i]!;
      }
      if (off > start) {
        json.push(block.data.subarray(start, off));
        const held = off - start + EVENT_META_BYTES * (i - block.head);
        this.memUsed -= held;
        budget.used -= held;
        block.head = i;
        block.headOff = off;
      }
      if (i < block.count) break; // a limit was reached
    }
    if (count === 0) return undefined;
    json[0] = json[0]!.subarray(1); // the first event's leading comma
    this.events -= count;
    this.bytes -= bytes;
    this.lines -= lines;
    this.current = new LaneBatch(json, count, bytes, lines, this.flagScratch.slice(0, count));
    return this.current;
  }

  /** The current batch was delivered; `rejectedLines` of it were refused by CloudWatch. */
  delivered(rejectedLines = 0): void {
    if (!this.current) return;
    if (!this.current.sentAsBody) this.reuse = false;
    this.shipped += this.current.lines - rejectedLines;
    this.dropped += rejectedLines;
    this.current = undefined;
  }

  /** Give up on the current batch (counted as dropped). */
  dropCurrent(): number {
    const lines = this.current?.lines ?? 0;
    if (this.current && !this.current.sentAsBody) this.reuse = false;
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
    this.retired = [];
    this.spillBlock = undefined;
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
    this.spill.close();
    this.spillBlock = undefined;
    this.spilling = false;
    this.inFile = { events: 0, bytes: 0, lines: 0 };
  }

  /** Spilled bytes not read back yet: in the file, and in the block on its way there (for tests and diagnostics). */
  get spilledBytes(): number {
    return this.spill.unreadBytes + (this.spillBlock ? this.spillBlock.size + this.spillBlock.pending.length : 0);
  }

  private enqueue(ts: number, msg: string, lines: 0 | 1): boolean {
    if (ts !== this.prefixTs) {
      this.prefixTs = ts;
      this.prefix = `,{"timestamp":${ts},"message":`;
    }
    let json: string;
    let jsonBytes: number;
    let cost: number;
    const ascii = isPlainJsonText(msg);
    if (ascii) {
      json = `${this.prefix}"${msg}"}`;
      jsonBytes = json.length;
      cost = msg.length + EVENT_OVERHEAD_BYTES;
    } else {
      json = `${this.prefix}${JSON.stringify(msg)}}`;
      jsonBytes = Buffer.byteLength(json, 'utf8');
      cost = eventBytes(msg);
    }
    const held = jsonBytes + EVENT_META_BYTES;
    const budget = this.options.budget;
    let block: Block | undefined;
    if (!this.spilling && budget.used + held <= budget.limit) {
      block = this.memBlock(jsonBytes);
      this.memUsed += held;
      budget.used += held;
    } else {
      block = this.spillTarget(jsonBytes);
      if (block === undefined) return false;
    }
    block.append(json, ascii, cost, ts, lines, jsonBytes);
    this.events++;
    this.bytes += cost;
    this.lines += lines;
    return true;
  }

  private memBlock(jsonBytes: number): Block {
    let last = this.mem[this.mem.length - 1];
    if (last === undefined || !last.fits(jsonBytes)) {
      if (last) seal(last);
      last = this.newBlock(jsonBytes);
      this.mem.push(last);
    }
    return last;
  }

  /** The block spilled events go to; undefined when the spill file cannot be used (the event is then dropped). */
  private spillTarget(jsonBytes: number): Block | undefined {
    if (!this.spilling) {
      if (!this.openSpillFile()) return undefined;
      this.spilling = true;
      // From now on events go to the file: nothing more may join the memory blocks before it.
      const last = this.mem[this.mem.length - 1];
      if (last) seal(last);
    }
    let block = this.spillBlock;
    if (block !== undefined && !block.fits(jsonBytes)) {
      this.spillBlock = undefined;
      // The block could not be written (counted as dropped): this event is dropped too.
      if (!this.writeBlock(block)) return undefined;
      // Written (synchronously): nothing refers to it any more, it takes the next events.
      this.recycle(block);
      block = undefined;
    }
    if (block === undefined) block = this.spillBlock = this.newBlock(jsonBytes);
    return block;
  }

  /** A block for new events: a spare one when the event fits the standard size. */
  private newBlock(jsonBytes: number): Block {
    if (jsonBytes <= BLOCK_DATA_BYTES) {
      const spare = this.spare.pop();
      if (spare) return spare.reset();
    }
    return new Block(Math.max(BLOCK_DATA_BYTES, jsonBytes), BLOCK_EVENTS);
  }

  private recycle(block: Block): void {
    if (this.spare.length < SPARE_BLOCKS && block.data.length === BLOCK_DATA_BYTES && block.jsonLen.length === BLOCK_EVENTS) this.spare.push(block);
  }

  private openSpillFile(): boolean {
    try {
      this.spill.open();
      return true;
    } catch (error) {
      this.options.onSpillError(error);
      return false;
    }
  }

  /** Append a full block to the spill file. False when that failed: its events are dropped and counted. */
  private writeBlock(block: Block): boolean {
    try {
      this.spill.append(block);
      const { events, bytes, lines } = block.remaining();
      this.inFile = { events: this.inFile.events + events, bytes: this.inFile.bytes + bytes, lines: this.inFile.lines + lines };
      return true;
    } catch (error) {
      this.options.onSpillError(error);
      const lost = block.remaining();
      this.events -= lost.events;
      this.bytes -= lost.bytes;
      this.lines -= lost.lines;
      this.dropped += lost.lines;
      if (this.spill.unreadBytes === 0) this.resetSpill();
      return false;
    }
  }

  /**
   * Move the next events out of the spill: the file's next block, or — once the file is
   * read back entirely — the block being filled, and the lane is back in memory mode.
   * False when there is nothing left.
   */
  private refill(): boolean {
    const budget = this.options.budget;
    if (this.spill.unreadBytes > 0) {
      try {
        const block = this.spill.readNext();
        this.options.onReadBack?.(block.data.length);
        const { events, bytes, lines, held } = block.remaining();
        this.inFile = { events: this.inFile.events - events, bytes: this.inFile.bytes - bytes, lines: this.inFile.lines - lines };
        this.mem.push(block);
        this.memUsed += held;
        budget.used += held;
        return true;
      } catch (error) {
        this.options.onSpillError(error);
        // What is left in the file is lost: count it (what is in memory stays).
        this.events -= this.inFile.events;
        this.bytes -= this.inFile.bytes;
        this.lines -= this.inFile.lines;
        this.dropped += this.inFile.lines;
        this.inFile = { events: 0, bytes: 0, lines: 0 };
        this.spill.skipUnread();
      }
    }
    const block = this.spillBlock;
    this.spillBlock = undefined;
    this.resetSpill();
    if (block === undefined || block.count === 0) return false;
    block.flush();
    const { held } = block.remaining();
    this.mem.push(block);
    this.memUsed += held;
    budget.used += held;
    return true;
  }

  /** Back to memory mode: the file is empty again (kept open for the next spill). */
  private resetSpill(): void {
    this.spilling = false;
    this.inFile = { events: 0, bytes: 0, lines: 0 };
    this.spill.reset();
  }
}
