/**
 * A pass-through stream that reads the (uncompressed) tar headers going to the
 * extractor and refuses the whole archive at the first entry that could land outside
 * the runner dir — before the extractor has seen that entry's header.
 *
 * Refused, each with a DownloadError naming the entry:
 * - absolute paths (`/abs/evil`) and paths with a `..` component (`../evil`, `a/../../x`);
 * - entries at or below a symlink the archive created earlier (writing through a symlink);
 * - symlinks with an absolute target, or whose target — resolved through the archive's
 *   own symlinks, like the kernel would once extracted — leaves the root (checked per
 *   entry lexically, and for every symlink again at the end of the archive, which also
 *   catches chains such as `c -> a/b/..` followed by `a/b -> ..`);
 * - hardlinks to anything but a regular file extracted earlier from the same archive;
 * - device nodes, FIFOs and other special entries;
 * - pax extended headers with a keyword outside POSIX's own (GNU tar acts on `GNU.sparse.name`,
 *   which renames an entry for GNU tar but not for node-tar: one tarball, two readings);
 * - more than MAX_ARCHIVE_ENTRIES entries or MAX_ARCHIVE_BYTES of uncompressed tar (a gzip bomb
 *   fills no disk: the stream fails first).
 *
 * After extraction, services/install/tree-check.ts checks the tree as it landed on disk, whoever read it.
 *
 * Headers are parsed by node-tar's Parser (pax and GNU long names included); its
 * `filter` hook runs synchronously while the header block is parsed, so a refused
 * entry's chunk is never forwarded to the extractor.
 */
import { posix } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { DownloadError } from '../errors.js';

export class UnsafeArchiveError extends DownloadError {
  constructor(
    readonly entry: string,
    reason: string,
  ) {
    super(`refusing the runner archive: entry ${JSON.stringify(entry)} ${reason}`);
  }
}

const SAFE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);
const MAX_SYMLINK_HOPS = 40;
/** A real actions/runner is ~6,000 entries and ~600 MB unpacked: far below both. */
export const MAX_ARCHIVE_ENTRIES = 100_000;
export const MAX_ARCHIVE_BYTES = 4 * 1024 ** 3;
/** POSIX.1-2001's pax keywords: anything else (GNU.sparse.*, vendor keywords) is refused. */
const PAX_KEYWORDS = new Set(['atime', 'charset', 'comment', 'ctime', 'gid', 'gname', 'hdrcharset', 'linkpath', 'mtime', 'path', 'size', 'uid', 'uname']);

/**
 * The keywords of a pax extended header's records (`<len> <keyword>=<value>\n`); undefined when
 * the text is not pax records (node-tar's parser hands GNU long names through the same event).
 */
export function paxKeywords(meta: string): string[] | undefined {
  const keywords: string[] = [];
  let rest = meta.replace(/\0+$/, '');
  while (rest.length > 0) {
    const m = /^(\d+) ([^=\n]+)=/.exec(rest);
    if (!m) return undefined;
    const length = Number(m[1]);
    if (!(length > m[0].length) || Buffer.byteLength(rest) < length) return undefined;
    keywords.push(m[2]!);
    rest = Buffer.from(rest).subarray(length).toString();
  }
  return keywords;
}

/** `./a//b/` → `a/b`; `.` and `./` → `` (the root). */
function clean(path: string): string {
  return path
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}

/**
 * Walk `target` from `dir` (relative to the root) as path resolution would, following the
 * `symlinks` of the same tree (path → target); why it escapes the root, if it does.
 */
export function resolveThroughSymlinks(symlinks: ReadonlyMap<string, string>, dir: string, target: string): string | undefined {
  if (target.startsWith('/')) return 'resolves to an absolute path';
  const start = clean(dir);
  const stack = start === '' ? [] : start.split('/');
  let queue = target.split('/');
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (stack.length === 0) return "resolves outside the runner directory (through the archive's symlinks)";
      stack.pop();
      continue;
    }
    stack.push(part);
    const link = symlinks.get(stack.join('/'));
    if (link !== undefined) {
      if (++hops > MAX_SYMLINK_HOPS) return 'is part of a symlink loop';
      if (link.startsWith('/')) return 'resolves to an absolute path';
      stack.pop();
      queue = [...link.split('/'), ...queue];
    }
  }
  return undefined;
}

export class TarGuard {
  private readonly symlinks = new Map<string, string>();
  private readonly files = new Set<string>();
  private count = 0;

  /** Number of entries checked so far. */
  get entries(): number {
    return this.count;
  }

  /** Check one entry; throws UnsafeArchiveError. */
  check(type: string, rawPath: string, rawLinkpath?: string): void {
    this.count++;
    if (rawPath.startsWith('/')) throw new UnsafeArchiveError(rawPath, 'has an absolute path');
    const parts = rawPath.split('/');
    if (parts.includes('..')) throw new UnsafeArchiveError(rawPath, 'has a ".." path component (path traversal)');
    if (!SAFE_TYPES.has(type)) throw new UnsafeArchiveError(rawPath, `is a ${type} entry, which a runner archive never needs`);
    const path = clean(rawPath);
    if (path === '' && type !== 'Directory') throw new UnsafeArchiveError(rawPath, 'replaces the runner directory itself');

    const through = this.symlinkPrefix(path);
    if (through !== undefined) {
      throw new UnsafeArchiveError(rawPath, `would be written at or through the symlink "${through}" created earlier by the archive`);
    }

    if (type === 'SymbolicLink') {
      const target = rawLinkpath ?? '';
      if (target === '') throw new UnsafeArchiveError(rawPath, 'is a symlink without a target');
      if (target.startsWith('/')) throw new UnsafeArchiveError(rawPath, `is a symlink to the absolute path "${target}" outside the runner directory`);
      const lexical = posix.normalize(posix.join(posix.dirname(path) || '.', target));
      if (lexical === '..' || lexical.startsWith('../')) {
        throw new UnsafeArchiveError(rawPath, `is a symlink to "${target}", outside the runner directory`);
      }
      this.symlinks.set(path, target);
    } else if (type === 'Link') {
      const target = rawLinkpath ?? '';
      if (target.startsWith('/')) throw new UnsafeArchiveError(rawPath, `is a hardlink to the absolute path "${target}" outside the runner directory`);
      if (target.split('/').includes('..')) throw new UnsafeArchiveError(rawPath, `is a hardlink to "${target}", outside the runner directory`);
      if (!this.files.has(clean(target))) {
        throw new UnsafeArchiveError(rawPath, `is a hardlink to "${target}", which is not a file extracted earlier from this archive`);
      }
      this.files.add(path);
    } else if (type !== 'Directory') {
      this.files.add(path);
    }
  }

  /** At the end of the archive: every symlink, resolved through the others, must stay inside. */
  verifySymlinks(): void {
    for (const [path, target] of this.symlinks) {
      const escape = resolveThroughSymlinks(this.symlinks, posix.dirname(path), target);
      if (escape) throw new UnsafeArchiveError(path, `is a symlink to "${target}", which ${escape}`);
    }
  }

  /** The first symlink that `path` equals or lies below, if any. */
  private symlinkPrefix(path: string): string | undefined {
    if (this.symlinks.size === 0 || path === '') return undefined;
    let prefix = '';
    for (const part of path.split('/')) {
      prefix = prefix ? `${prefix}/${part}` : part;
      if (this.symlinks.has(prefix)) return prefix;
    }
    return undefined;
  }
}

/**
 * The guard as a Transform for the uncompressed tar stream: chunks pass through
 * unchanged once their headers were accepted; the stream fails with UnsafeArchiveError
 * (or a DownloadError for a malformed archive) otherwise.
 */
export function tarGuardStream(guard: TarGuard = new TarGuard(), limits = { entries: MAX_ARCHIVE_ENTRIES, bytes: MAX_ARCHIVE_BYTES }): Transform & { guard: TarGuard } {
  let failure: Error | undefined;
  let bytes = 0;
  let lastPath = '(the first entry)';
  const endFailure = () => (pendingKeyword !== undefined ? new UnsafeArchiveError(lastPath, `is followed by a pax header keyword "${pendingKeyword}" with no entry`) : undefined);
  const parser = new Parser({
    strict: true,
    filter: (_path: string, entry: ReadEntry | import('node:fs').Stats) => {
      if (failure) return false;
      const e = entry as ReadEntry;
      lastPath = e.path;
      try {
        if (pendingKeyword !== undefined) {
          throw new UnsafeArchiveError(e.path, `comes with a pax extended header keyword "${pendingKeyword}", which tar implementations read differently`);
        }
        guard.check(e.type, e.path, e.linkpath);
        if (guard.entries > limits.entries) throw new UnsafeArchiveError(e.path, `is entry number ${guard.entries}: a runner archive has at most ${limits.entries}`);
      } catch (error) {
        failure = error as Error;
      }
      return false; // headers only: bodies are skipped, never buffered
    },
  });
  // Raw extended-header text, before the entry it applies to is parsed: what node-tar would ignore
  // refuses that entry (its header never reaches the extractor).
  let pendingKeyword: string | undefined;
  parser.on('meta', (meta: string) => {
    pendingKeyword ??= paxKeywords(meta)?.find((k) => !PAX_KEYWORDS.has(k));
  });
  parser.on('error', (error: Error) => {
    failure ??= new DownloadError(`the runner archive is not a valid tar stream: ${error.message}`, { cause: error });
  });
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      bytes += chunk.length;
      if (bytes > limits.bytes && !failure) {
        failure = new UnsafeArchiveError(lastPath, `takes the archive past ${limits.bytes} bytes uncompressed (a runner is far smaller)`);
      }
      if (!failure) parser.write(chunk);
      if (failure) return callback(failure);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        if (!failure && guard.entries === 0) failure = new DownloadError('the runner archive has no entries');
        failure ??= endFailure();
        if (!failure) {
          try {
            guard.verifySymlinks();
          } catch (error) {
            failure = error as Error;
          }
        }
        callback(failure ?? null);
      };
      parser.once('error', settle);
      parser.end(settle);
      // An archive that ends mid-entry can make the parser fail without finishing.
      if (failure) settle();
    },
  });
  return Object.assign(stream, { guard });
}
