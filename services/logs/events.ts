/**
 * CloudWatch Logs PutLogEvents limits and the pure helpers that respect them
 * (docs/runner-and-aws-facts.md): an event counts its UTF-8 bytes + 26, a call
 * carries at most 10,000 events and 1,048,576 bytes, spans at most 24 h, and
 * one event holds at most 256 KiB (so a message at most 256 KiB - 26 bytes).
 */

/** Bytes CloudWatch adds to every event when it counts a batch. */
export const EVENT_OVERHEAD_BYTES = 26;
export const MAX_BATCH_EVENTS = 10_000;
export const MAX_BATCH_BYTES = 1_048_576;
/** Largest message one event may carry, in UTF-8 bytes. */
export const MAX_EVENT_MESSAGE_BYTES = 262_144 - EVENT_OVERHEAD_BYTES;
/** A batch must span less than 24 h (first to last timestamp). */
export const MAX_BATCH_SPAN_MS = 24 * 60 * 60 * 1000 - 1;

/** One event as queued: message, timestamp, its cost in a batch, and whether it ends a line. */
export interface LogEntry {
  ts: number;
  msg: string;
  /** UTF-8 bytes of `msg` + 26: what the event costs against MAX_BATCH_BYTES. */
  bytes: number;
  /** 1 when this event starts a line (lines are counted, not pieces). */
  lines: 0 | 1;
}

/** CloudWatch refuses empty messages; an empty line is shipped as one space so that it still counts and keeps its place. */
export function toEventMessage(line: string): string {
  return line === '' ? ' ' : line;
}

/**
 * Split a message into pieces of at most `maxBytes` UTF-8 bytes each, never
 * inside a character. Most lines are short: they are returned as they are.
 */
export function splitUtf8(message: string, maxBytes = MAX_EVENT_MESSAGE_BYTES): string[] {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short strings need no counting.
  if (message.length * 3 <= maxBytes || Buffer.byteLength(message) <= maxBytes) return [message];
  const buf = Buffer.from(message, 'utf8');
  const pieces: string[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = Math.min(buf.length, start + maxBytes);
    // Back off continuation bytes (10xxxxxx) so that no character is cut in two.
    if (end < buf.length) while (end > start && (buf[end]! & 0xc0) === 0x80) end--;
    pieces.push(buf.toString('utf8', start, end));
    start = end;
  }
  return pieces;
}

/** Cost of a message in a batch. */
export function eventBytes(message: string): number {
  return Buffer.byteLength(message, 'utf8') + EVENT_OVERHEAD_BYTES;
}

/**
 * The JSON body of a PutLogEvents call (AWS JSON 1.1) around events already encoded
 * (`json`: `{"timestamp":…,"message":…}` objects, comma-separated, as the log lanes keep
 * them). The SDK's own serializer writes every body character by character: at full
 * speed that was the shipper's largest cost on the agent's main thread.
 */
export function putLogEventsBody(logGroupName: string, logStreamName: string, json: readonly Uint8Array[], scratch?: Buffer): Buffer {
  const head = `{"logGroupName":${JSON.stringify(logGroupName)},"logStreamName":${JSON.stringify(logStreamName)},"logEvents":[`;
  let total = Buffer.byteLength(head, 'utf8') + 2;
  for (const part of json) total += part.byteLength;
  // Into `scratch` when it is big enough, else into a new buffer with room for the largest batch.
  const out = scratch && scratch.length >= total ? scratch : Buffer.allocUnsafeSlow(Math.max(total, MAX_BATCH_BYTES + 4096));
  let off = out.write(head, 0, 'utf8');
  for (const part of json) {
    out.set(part, off);
    off += part.byteLength;
  }
  off += out.write(']}', off, 'latin1');
  return out.subarray(0, off);
}
