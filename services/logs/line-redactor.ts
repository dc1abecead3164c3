/**
 * Streaming redaction of the runner's output: bytes in, redacted lines out.
 *
 * - A line is redacted once it is complete, so a secret split across two chunks
 *   of output is caught like any other.
 * - A line too long to hold (`maxLineChars`) is handed on in pieces; the last
 *   `vault.longest - 1` characters are always held back and a piece never ends
 *   inside a secret, so a secret crossing a piece boundary is caught too.
 * - The runner's own masks: `::add-mask::VALUE` (and the older `##[add-mask]VALUE`)
 *   add VALUE to the vault; the line itself goes on as `::add-mask::***`.
 *
 * Handlers receive `(line, continued)`: `continued` is true for the pieces that
 * follow the first piece of a long line, which `LogShipper.runnerLine(line, ts, continued)`
 * takes as is.
 */
import { StringDecoder } from 'node:string_decoder';
import { REDACTED, type SecretVault } from '../secrets.js';

export type RedactedLineHandler = (line: string, continued: boolean) => void;

export interface LineRedactorOptions {
  /** Longest piece of a line handed on at once, in characters (default 256 Ki). */
  maxLineChars?: number;
}

export const DEFAULT_MAX_LINE_CHARS = 256 * 1024;

export class LineRedactor {
  private readonly decoder = new StringDecoder('utf8');
  private readonly maxLineChars: number;
  private pending = '';
  /** A piece of the current line was already handed on. */
  private continued = false;
  /** The current line is a mask command too long to hold: swallow it up to its end. */
  private swallowing = false;
  private masks = 0;

  constructor(
    private readonly vault: SecretVault,
    private readonly onLine: RedactedLineHandler,
    options: LineRedactorOptions = {},
  ) {
    this.maxLineChars = Math.max(16, options.maxLineChars ?? DEFAULT_MAX_LINE_CHARS);
  }

  /** Feed the next chunk of output (bytes are decoded as UTF-8, across chunk boundaries). */
  push(chunk: Uint8Array | string): void {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    let start = 0;
    for (;;) {
      const newline = text.indexOf('\n', start);
      if (newline === -1) break;
      const part = text.slice(start, newline);
      this.pending = this.pending === '' ? part : this.pending + part;
      this.finishLine();
      start = newline + 1;
    }
    if (start < text.length) {
      this.pending += text.slice(start);
      if (this.pending.length > this.maxLineChars) this.emitPieces();
    }
  }

  /** The stream ended: a last line without a newline is still a line. */
  end(): void {
    this.pending += this.decoder.end();
    if (this.pending !== '' || this.swallowing) this.finishLine();
    this.continued = false;
    this.swallowing = false;
  }

  private finishLine(): void {
    let line = this.pending;
    this.pending = '';
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (this.swallowing) {
      this.swallowing = false;
      this.continued = false;
      return;
    }
    if (!this.continued) {
      const mask = parseAddMask(line);
      if (mask) {
        this.addMask(mask.value);
        this.onLine(`${line.slice(0, mask.dataStart)}${REDACTED}`, false);
        return;
      }
      this.onLine(this.vault.redact(line), false);
      return;
    }
    // The end of a long line: an empty remainder is nothing.
    if (line !== '') this.onLine(this.vault.redact(line), true);
    this.continued = false;
  }

  /** Hand on the front of a line too long to hold, keeping back what may start a secret. */
  private emitPieces(): void {
    if (!this.continued && !this.swallowing && looksLikeAddMask(this.pending)) {
      // A mask longer than a piece: never ship it; the value cannot be used either.
      const mask = parseAddMask(this.pending);
      this.onLine(`${mask ? this.pending.slice(0, mask.dataStart) : '::add-mask::'}${REDACTED}`, false);
      this.swallowing = true;
    }
    if (this.swallowing) {
      this.pending = '';
      return;
    }
    // One character more than a secret's tail is held back, so a CR before the coming LF stays with its line.
    const hold = Math.max(1, this.vault.longest - 1);
    while (this.pending.length > this.maxLineChars) {
      const cut = this.safeCut(this.pending, Math.min(this.maxLineChars, this.pending.length - hold));
      if (cut <= 0) return;
      const piece = this.pending.slice(0, cut);
      this.pending = this.pending.slice(cut);
      this.onLine(this.vault.redact(piece), this.continued);
      this.continued = true;
    }
  }

  /** Move `cut` back so that it splits neither a secret occurrence nor a surrogate pair. */
  private safeCut(text: string, cut: number): number {
    const secrets = this.vault.list();
    for (let moved = true; moved && cut > 0; ) {
      moved = false;
      for (const secret of secrets) {
        const at = text.indexOf(secret, Math.max(0, cut - secret.length + 1));
        if (at !== -1 && at < cut) {
          // Cut before the occurrence; one at the very start is whole in `text`: cut after it.
          cut = at > 0 ? at : Math.min(text.length, at + secret.length);
          moved = at > 0;
        }
      }
    }
    const code = text.charCodeAt(cut - 1);
    if (cut > 0 && code >= 0xd800 && code <= 0xdbff) cut--;
    return cut;
  }

  private addMask(value: string): void {
    const values = new Set([value, value.trim(), ...value.split(/\r?\n/).map((v) => v.trim())]);
    for (const v of values) {
      if (v.trim() !== '') this.vault.set(`runner-mask-${++this.masks}`, v);
    }
  }
}

function looksLikeAddMask(line: string): boolean {
  return /add-mask/i.test(line.slice(0, 4096)) && parseAddMask(line.slice(0, 4096)) !== undefined;
}

/**
 * The runner's mask commands (actions/runner `ActionCommand`): `::add-mask[ props]::VALUE`
 * after leading whitespace, or `##[add-mask]VALUE` anywhere in the line. Returns the
 * unescaped value and where it starts in the line.
 */
export function parseAddMask(line: string): { value: string; dataStart: number } | undefined {
  if (!/add-mask/i.test(line)) return undefined;
  const lead = line.length - line.trimStart().length;
  if (line.startsWith('::', lead)) {
    const end = line.indexOf('::', lead + 2);
    if (end !== -1) {
      const info = line.slice(lead + 2, end);
      const name = info.split(' ')[0]!;
      if (name.toLowerCase() === 'add-mask') {
        return { value: unescape(line.slice(end + 2), false), dataStart: end + 2 };
      }
    }
  }
  const prefix = line.indexOf('##[');
  if (prefix !== -1) {
    const close = line.indexOf(']', prefix);
    if (close !== -1) {
      const name = line.slice(prefix + 3, close).split(' ')[0]!;
      if (name.toLowerCase() === 'add-mask') return { value: unescape(line.slice(close + 1), true), dataStart: close + 1 };
    }
  }
  return undefined;
}

/** The runner's escapes: data `%0D %0A %25`; the older format also `%3B %5D`. */
function unescape(data: string, legacy: boolean): string {
  let out = data.replaceAll('%0D', '\r').replaceAll('%0A', '\n');
  if (legacy) out = out.replaceAll('%3B', ';').replaceAll('%5D', ']');
  return out.replaceAll('%25', '%');
}
