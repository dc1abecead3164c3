/**
 * The runner's own diagnostics, shipped once after the job (issue 5, item 4): the
 * `*.log` files directly in `{runnerDir}/_diag` (`Runner_*.log` from the listener,
 * `Worker_*.log` from the job's worker) go to the sibling stream `{stream}/diag`,
 * each line redacted with the vault. Other files there (`.json`, `.txt`, the
 * `pages/` directory) are not logs and are never read.
 *
 * Cap. At most `maxBytes` (default 5 MiB) in all, shared out fairly: files smaller
 * than their share go whole, and what they leave is shared among the bigger ones,
 * each of which keeps its END (the last bytes of a log are where a failure shows).
 * The lines cut off are counted and reported as dropped, never silently lost; each
 * file is introduced by a header line (not counted) saying what was kept. Files go
 * oldest first; at most the 50 newest are read (the lines of older ones are counted).
 *
 * Safety. The `_diag` directory belongs to the runner user, and the job ran as that
 * user: a symlink, a FIFO or a directory swapped in must not make the agent (root)
 * read something else. The directory is opened once without following links and the
 * files are opened through that handle (`/proc/self/fd/N/name`) with O_NOFOLLOW and
 * O_NONBLOCK; anything that is not a regular file is skipped. Files last modified
 * before the agent started (a runner dir baked into the AMI) are not this job's.
 *
 * Best effort: nothing here throws; reading stops at the deadline or on abort.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import { pinnedPath, withRegularFile } from '../safe-fs.js';
import { isAbsolute, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { describeError } from '../errors.js';
import type { SecretVault } from '../secrets.js';

export const DIAG_STREAM_SUFFIX = '/diag';
export const DEFAULT_DIAG_MAX_BYTES = 5 * 1024 * 1024;
/** Files modified this long before the agent started are still taken (clock steps at boot). */
const SINCE_SLACK_MS = 5 * 60_000;
const READ_CHUNK_BYTES = 256 * 1024;
/** Files read at most (the newest); older ones are only counted as dropped. */
const MAX_DIAG_FILES = 50;

/** Where diagnostic lines go: `counted` is false for the header lines this module writes. */
export interface DiagSink {
  diagLine(line: string, timestampMs: number, counted?: boolean): void;
  /** Lines that were cut (cap) or could not be read: reported as dropped. */
  countDropped(lines: number): void;
}

export interface DiagLogsOptions {
  /** The runner's `_diag` directory; must be absolute. */
  dir: string;
  vault?: SecretVault;
  /** Total bytes read from all files (default 5 MiB). */
  maxBytes?: number;
  /** Files last modified before this (epoch ms) are skipped (default: this process's start, less 5 min). */
  sinceMs?: number;
  /** Stop reading at this time (epoch ms); what is left is counted as dropped. */
  deadlineMs?: number;
  signal?: AbortSignal;
  now?: () => number;
}

export interface DiagFileSummary {
  name: string;
  size: number;
  /** Bytes kept (the file's tail). */
  kept: number;
  lines: number;
  /** Lines cut off by the cap (or left unread at the deadline). */
  cut: number;
}

export interface DiagSummary {
  files: DiagFileSummary[];
  lines: number;
  cut: number;
  /** Why nothing (or not everything) was read, if so. */
  problem?: string;
}

interface Candidate {
  name: string;
  size: number;
  mtimeMs: number;
  /** Bytes to read: the file's tail. */
  keep: number;
}

/**
 * Read the diagnostics, hand every line to `sink` (oldest file first, each file in order),
 * and count what the cap cut off. Never throws.
 */
export async function shipDiagLogs(options: DiagLogsOptions, sink: DiagSink): Promise<DiagSummary> {
  const summary: DiagSummary = { files: [], lines: 0, cut: 0 };
  const now = options.now ?? Date.now;
  const expired = () => options.signal?.aborted === true || (options.deadlineMs !== undefined && now() >= options.deadlineMs);
  if (!isAbsolute(options.dir)) return { ...summary, problem: `${JSON.stringify(options.dir)} is not an absolute path` };
  let dir: FileHandle;
  try {
    dir = await open(options.dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ...summary, problem: code === 'ENOENT' ? 'no _diag directory' : `cannot open ${options.dir}: ${describeError(error)}` };
  }
  try {
    const base = pinnedPath(dir, options.dir);
    const since = options.sinceMs ?? Date.now() - process.uptime() * 1000 - SINCE_SLACK_MS;
    const found: Candidate[] = [];
    for (const name of (await readdir(base)).filter((n) => n.endsWith('.log'))) {
      try {
        const stat = await lstat(join(base, name));
        if (stat.isFile() && stat.mtimeMs >= since) found.push({ name, size: stat.size, mtimeMs: stat.mtimeMs, keep: 0 });
      } catch {
        /* gone meanwhile */
      }
    }
    // The newest files, oldest first (so that the stream reads in time order); the others are only counted.
    found.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.name < b.name ? 1 : -1));
    const chosen = found.slice(0, MAX_DIAG_FILES);
    shareOut(chosen, options.maxBytes ?? DEFAULT_DIAG_MAX_BYTES);
    chosen.reverse();
    for (const file of chosen) {
      const result = await withRegularFile(join(base, file.name), (handle, size) => readTail({ ...file, size, keep: Math.min(file.keep, size) }, handle, options, sink, expired, now));
      if (!result) continue;
      summary.files.push(result);
      summary.lines += result.lines;
      summary.cut += result.cut;
    }
    for (const file of found.slice(MAX_DIAG_FILES)) {
      summary.cut += (await withRegularFile(join(base, file.name), (handle, size) => countLines(handle, 0, size, expired))) ?? 0;
    }
    if (found.length > MAX_DIAG_FILES) summary.problem = `${found.length - MAX_DIAG_FILES} older diagnostic files not shipped (at most ${MAX_DIAG_FILES})`;
  } catch (error) {
    summary.problem = `reading ${options.dir} failed: ${describeError(error)}`;
  } finally {
    await dir.close().catch(() => {});
  }
  if (summary.cut > 0) sink.countDropped(summary.cut);
  return summary;
}

/** Fair shares of `budget`: smallest files first, each taking at most an equal share of what is left. */
function shareOut(files: Candidate[], budget: number): void {
  let left = Math.max(0, budget);
  const bySize = [...files].sort((a, b) => a.size - b.size);
  bySize.forEach((file, i) => {
    const share = Math.floor(left / (bySize.length - i));
    file.keep = Math.min(file.size, share);
    left -= file.keep;
  });
}

async function readTail(
  file: Candidate,
  handle: FileHandle,
  options: DiagLogsOptions,
  sink: DiagSink,
  expired: () => boolean,
  now: () => number,
): Promise<DiagFileSummary> {
  const result: DiagFileSummary = { name: file.name, size: file.size, kept: 0, lines: 0, cut: 0 };
  let start = file.size - file.keep;
  // Cut inside a line: the kept part starts after the next newline.
  if (start > 0 && file.keep > 0) {
    const probe = Buffer.alloc(Math.min(file.keep, 64 * 1024));
    const { bytesRead } = await handle.read(probe, 0, probe.length, start - 1);
    const nl = probe.subarray(0, bytesRead).indexOf(10);
    start = nl === -1 ? file.size : start + nl; // no newline near: keep nothing of that line
  }
  result.kept = file.size - start;
  const cap = start > 0 ? `; only the last ${result.kept} kept: diagnostics are capped at ${options.maxBytes ?? DEFAULT_DIAG_MAX_BYTES} bytes` : '';
  sink.diagLine(`==> _diag/${file.name} (${file.size} bytes${cap}) <==`, now(), false);

  const decoder = new StringDecoder('utf8');
  const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let pending = '';
  let pos = start;
  const emit = (line: string) => {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    sink.diagLine(options.vault ? options.vault.redact(text) : text, now(), true);
    result.lines++;
  };
  while (pos < file.size) {
    if (expired()) {
      // Out of time: the rest is counted, not read.
      // (A line begun in `pending` ends in that rest, so it is counted there.)
      result.cut += await countLines(handle, pos, file.size, () => false);
      if (start > 0) result.cut += await countLines(handle, 0, start, expired);
      return result;
    }
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, file.size - pos), pos);
    if (bytesRead === 0) break; // truncated meanwhile
    pos += bytesRead;
    const text = pending + decoder.write(buf.subarray(0, bytesRead));
    let from = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
      emit(text.slice(from, nl));
      from = nl + 1;
    }
    pending = text.slice(from);
  }
  pending += decoder.end();
  if (pending !== '') emit(pending);
  // Counted last, so that counting a huge head never delays what is shipped.
  if (start > 0) result.cut += await countLines(handle, 0, start, expired);
  return result;
}

/** Lines (newline-terminated, plus a last unterminated one) in [from, to) of the file. */
async function countLines(handle: FileHandle, from: number, to: number, expired: () => boolean): Promise<number> {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  let lines = 0;
  let pos = from;
  let last = 10;
  while (pos < to) {
    if (expired()) return lines + Math.ceil((to - pos) / 100); // estimated: ~100 bytes a line
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, to - pos), pos);
    if (bytesRead === 0) break;
    const data = buf.subarray(0, bytesRead);
    for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) lines++;
    last = buf[bytesRead - 1]!;
    pos += bytesRead;
  }
  return lines + (pos > from && last !== 10 ? 1 : 0);
}
