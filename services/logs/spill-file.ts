/**
 * A lane's spill file: blocks of encoded events written in order when the memory budget is
 * spent, read back in the same order. A block on disk is [events u32][bytes u32], its
 * metadata arrays, then its JSON. Created on first use (mode 0600, under the state dir),
 * truncated when read back entirely, removed on close.
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readSync, readvSync, unlinkSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { Block, EVENT_META_BYTES, metaViews, seal } from './block.js';

const BLOCK_HEADER_BYTES = 8;
let spillSequence = 0;

export class SpillFile {
  private fd: number | undefined;
  private path: string | undefined;
  private writePos = 0;
  private readPos = 0;
  /** A block's header, written or read (each write and read is synchronous). */
  private readonly header = Buffer.alloc(BLOCK_HEADER_BYTES);

  constructor(
    private readonly dir: string,
    private readonly name: string,
  ) {}

  /** Bytes written and not read back yet. */
  get unreadBytes(): number {
    return this.writePos - this.readPos;
  }

  /** Create the file if it is not there yet; throws when it cannot be. */
  open(): void {
    if (this.fd !== undefined) return;
    try {
      mkdirSync(this.dir, { recursive: true });
      this.path = join(this.dir, `${this.name}-${process.pid}-${++spillSequence}.spill`);
      this.fd = openSync(this.path, 'w+', 0o600);
    } catch (error) {
      this.path = undefined;
      throw error;
    }
  }

  /** Append a full block (sealed here); throws on a failed or short write (nothing is then counted as written). */
  append(block: Block): void {
    if (this.fd === undefined) throw new Error('the spill file is not open');
    seal(block);
    const n = block.count;
    const header = this.header;
    header.writeUInt32LE(n, 0);
    header.writeUInt32LE(block.size, 4);
    const parts = [header, ...metaViews(block, n), block.data.subarray(0, block.size)];
    const total = BLOCK_HEADER_BYTES + EVENT_META_BYTES * n + block.size;
    const written = writevSync(this.fd, parts, this.writePos);
    if (written !== total) throw new Error(`short write to the spill file ${this.path} (${written} of ${total} bytes)`);
    this.writePos += total;
  }

  /** The next block, in the order written; throws when the file was cut short under us. */
  readNext(): Block {
    if (this.fd === undefined || this.readPos >= this.writePos) throw new Error('nothing left in the spill file');
    const header = this.header;
    if (readSync(this.fd, header, 0, BLOCK_HEADER_BYTES, this.readPos) !== BLOCK_HEADER_BYTES) throw new Error(`spill file ${this.path} is truncated`);
    const n = header.readUInt32LE(0);
    const size = header.readUInt32LE(4);
    // A new block every time: the batch made of it stays readable for as long as anything holds
    // it (a PutLogEvents input decodes its events from it when read, even after the call).
    const block = new Block(size, n);
    const total = EVENT_META_BYTES * n + size;
    const got = readvSync(this.fd, [...metaViews(block, n), block.data], this.readPos + BLOCK_HEADER_BYTES);
    if (got !== total) throw new Error(`spill file ${this.path} is truncated`);
    block.count = n;
    block.size = size;
    seal(block);
    this.readPos += BLOCK_HEADER_BYTES + total;
    return block;
  }

  /** Give up on what was not read back (after a read failure). */
  skipUnread(): void {
    this.readPos = this.writePos;
  }

  /** Empty again, kept open for the next spill. */
  reset(): void {
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

  /** Close and remove the file. */
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
    this.writePos = 0;
    this.readPos = 0;
  }
}
