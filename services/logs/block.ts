/**
 * A block of log events encoded back to back as the JSON they have inside a PutLogEvents
 * body, with what the batching rules need per event (JSON length, cost, timestamp, whether
 * it starts a line). Lanes (lane.ts) queue blocks; the spill file (spill-file.ts) stores them.
 */
/** Bytes of event JSON a block holds (more for one bigger event), and events. */
export const BLOCK_DATA_BYTES = 256 * 1024;
export const BLOCK_EVENTS = 4096;
/** What an event's metadata costs: JSON length (4), cost (4), timestamp (8), line flag (1). */
export const EVENT_META_BYTES = 17;
/** ASCII JSON is gathered as a string and written into the block this many characters at a time. */
const PENDING_CHARS = 16 * 1024;


/** Events encoded back to back, with their metadata. */
export class Block {
  readonly jsonLen: Uint32Array;
  readonly cost: Uint32Array;
  readonly ts: Float64Array;
  readonly flags: Uint8Array;
  readonly data: Buffer;
  /** Bytes of `data` written; `pending` holds more (ASCII) JSON not written yet. */
  size = 0;
  pending = '';
  count = 0;
  /** The next event to take, and where its JSON starts. */
  head = 0;
  headOff = 0;
  /** No more appends (full, or on its way to or back from the spill file). */
  sealed = false;

  constructor(dataBytes: number, events: number) {
    this.data = Buffer.allocUnsafe(dataBytes);
    this.jsonLen = new Uint32Array(events);
    this.cost = new Uint32Array(events);
    this.ts = new Float64Array(events);
    this.flags = new Uint8Array(events);
  }

  /** Empty again, for the next events (a lane reuses its used-up blocks instead of leaving them to the GC). */
  reset(): this {
    this.size = 0;
    this.pending = '';
    this.count = 0;
    this.head = 0;
    this.headOff = 0;
    this.sealed = false;
    return this;
  }

  fits(jsonBytes: number): boolean {
    return !this.sealed && this.count < this.jsonLen.length && this.size + this.pending.length + jsonBytes <= this.data.length;
  }

  append(json: string, ascii: boolean, cost: number, ts: number, lines: 0 | 1, jsonBytes: number): void {
    const i = this.count++;
    this.jsonLen[i] = jsonBytes;
    this.cost[i] = cost;
    this.ts[i] = ts;
    this.flags[i] = lines;
    if (ascii) {
      this.pending += json;
      if (this.pending.length >= PENDING_CHARS) this.flush();
    } else {
      this.flush();
      this.size += this.data.write(json, this.size, 'utf8');
    }
  }

  flush(): void {
    if (this.pending === '') return;
    this.size += this.data.write(this.pending, this.size, 'latin1');
    this.pending = '';
  }

  /** What the events not taken yet weigh: their lines, their cost, and their budget bytes. */
  remaining(): { events: number; bytes: number; lines: number; held: number } {
    let bytes = 0;
    let lines = 0;
    let json = 0;
    for (let i = this.head; i < this.count; i++) {
      bytes += this.cost[i]!;
      lines += this.flags[i]!;
      json += this.jsonLen[i]!;
    }
    return { events: this.count - this.head, bytes, lines, held: json + EVENT_META_BYTES * (this.count - this.head) };
  }
}

export function seal(block: Block): void {
  block.flush();
  block.sealed = true;
}

/** A block's metadata arrays as bytes, for its first `n` events (spill file order). */
export function metaViews(block: Block, n: number): Uint8Array[] {
  return [
    new Uint8Array(block.jsonLen.buffer, block.jsonLen.byteOffset, 4 * n),
    new Uint8Array(block.cost.buffer, block.cost.byteOffset, 4 * n),
    new Uint8Array(block.ts.buffer, block.ts.byteOffset, 8 * n),
    new Uint8Array(block.flags.buffer, block.flags.byteOffset, n),
  ];
}
