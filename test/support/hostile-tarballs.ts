/**
 * Tarballs written header by header (ustar, plus pax records where asked), so tests
 * can build what no honest archiver produces: `../evil`, `/abs/evil`, a symlink to
 * `/tmp/x` followed by a file written through it, hardlinks outside, device nodes.
 */
import { gzipSync } from 'node:zlib';

export type RawEntry =
  | { type: 'file'; path: string; body?: string | Buffer; mode?: number; uid?: number; gid?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'hardlink'; path: string; target: string }
  | { type: 'chardev'; path: string }
  | { type: 'fifo'; path: string }
  /** A pax extended header whose `path` (and `linkpath`) override the next entry's names. */
  | { type: 'pax'; path: string; linkpath?: string }
  /** A pax extended header with any records, e.g. GNU tar's `GNU.sparse.name`. */
  | { type: 'paxRecords'; records: Record<string, string> };

const TYPEFLAG = { file: '0', hardlink: '1', symlink: '2', chardev: '3', dir: '5', fifo: '6', pax: 'x' } as const;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(fields: { name: string; mode: number; uid: number; gid: number; size: number; type: string; linkname?: string }): Buffer {
  const block = Buffer.alloc(512, 0);
  const put = (text: string, offset: number, width: number) => {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > width) throw new Error(`tar field too long: ${text}`);
    bytes.copy(block, offset);
  };
  put(fields.name, 0, 100);
  put(octal(fields.mode, 8), 100, 8);
  put(octal(fields.uid, 8), 108, 8);
  put(octal(fields.gid, 8), 116, 8);
  put(octal(fields.size, 12), 124, 12);
  put(octal(1735689600, 12), 136, 12); // 2025-01-01
  put('        ', 148, 8); // checksum placeholder: spaces
  put(fields.type, 156, 1);
  put(fields.linkname ?? '', 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return block;
}

function padded(body: Buffer): Buffer[] {
  const rest = body.length % 512;
  return rest === 0 ? [body] : [body, Buffer.alloc(512 - rest, 0)];
}

function paxRecord(key: string, value: string): string {
  const text = ` ${key}=${value}\n`;
  let length = text.length + 1;
  while (`${length}${text}`.length !== length) length = `${length}${text}`.length;
  return `${length}${text}`;
}

/** An uncompressed tar of these entries, in order. */
export function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    switch (entry.type) {
      case 'file': {
        const body = Buffer.isBuffer(entry.body) ? entry.body : Buffer.from(entry.body ?? '');
        blocks.push(header({ name: entry.path, mode: entry.mode ?? 0o644, uid: entry.uid ?? 0, gid: entry.gid ?? 0, size: body.length, type: TYPEFLAG.file }));
        blocks.push(...padded(body));
        break;
      }
      case 'dir':
        blocks.push(header({ name: entry.path, mode: entry.mode ?? 0o755, uid: 0, gid: 0, size: 0, type: TYPEFLAG.dir }));
        break;
      case 'symlink':
      case 'hardlink':
        blocks.push(header({ name: entry.path, mode: 0o777, uid: 0, gid: 0, size: 0, type: TYPEFLAG[entry.type], linkname: entry.target }));
        break;
      case 'chardev':
      case 'fifo':
        blocks.push(header({ name: entry.path, mode: 0o644, uid: 0, gid: 0, size: 0, type: TYPEFLAG[entry.type] }));
        break;
      case 'pax':
      case 'paxRecords': {
        const records = entry.type === 'pax' ? { path: entry.path, ...(entry.linkpath ? { linkpath: entry.linkpath } : {}) } : entry.records;
        const body = Buffer.from(Object.entries(records).map(([k, v]) => paxRecord(k, v)).join(''));
        blocks.push(header({ name: 'PaxHeader/x', mode: 0o644, uid: 0, gid: 0, size: body.length, type: TYPEFLAG.pax }));
        blocks.push(...padded(body));
        break;
      }
    }
  }
  blocks.push(Buffer.alloc(1024, 0)); // end-of-archive
  return Buffer.concat(blocks);
}

/** rawTar, gzipped: what a runner release asset looks like. */
export function rawTarGz(entries: RawEntry[]): Buffer {
  return gzipSync(rawTar(entries));
}

/** A harmless prefix so hostile entries are not the first thing in the archive. */
const PREFIX: RawEntry[] = [
  { type: 'dir', path: './' },
  { type: 'file', path: './run.sh', body: '#!/bin/sh\necho hi\n', mode: 0o755 },
];

/**
 * The hostile archives the installer must refuse, each with the entry its error must name.
 * `outside` is the absolute path a naive extractor into `root` would write, when fixed.
 */
export function hostileTarballs(outside: string): { name: string; tarball: Buffer; entry: string }[] {
  return [
    {
      name: 'parent traversal ../evil',
      entry: '../evil',
      tarball: rawTarGz([...PREFIX, { type: 'file', path: '../evil', body: 'pwned' }]),
    },
    {
      name: 'nested traversal bin/../../evil',
      entry: 'bin/../../evil',
      tarball: rawTarGz([...PREFIX, { type: 'file', path: 'bin/../../evil', body: 'pwned' }]),
    },
    {
      name: 'absolute path /abs/evil',
      entry: `${outside}/abs-evil`,
      tarball: rawTarGz([...PREFIX, { type: 'file', path: `${outside}/abs-evil`, body: 'pwned' }]),
    },
    {
      name: 'symlink to an absolute dir, then a file written through it',
      entry: 'link',
      tarball: rawTarGz([
        ...PREFIX,
        { type: 'symlink', path: 'link', target: outside },
        { type: 'file', path: 'link/evil', body: 'pwned' },
      ]),
    },
    {
      name: 'relative symlink out of the root, then a file written through it',
      entry: 'up',
      tarball: rawTarGz([
        ...PREFIX,
        { type: 'symlink', path: 'up', target: '../../../../../../../../..' + outside },
        { type: 'file', path: 'up/evil', body: 'pwned' },
      ]),
    },
    {
      name: 'harmless-looking symlink, then a file written through it',
      entry: 'bin/evil',
      tarball: rawTarGz([...PREFIX, { type: 'symlink', path: 'dot', target: '.' }, { type: 'symlink', path: 'bin', target: 'dot' }, { type: 'file', path: 'bin/evil', body: 'x' }]),
    },
    {
      name: 'symlink chain that escapes only once both links exist',
      entry: 'c',
      tarball: rawTarGz([
        ...PREFIX,
        { type: 'dir', path: 'a/' },
        { type: 'symlink', path: 'c', target: 'a/b/..' },
        { type: 'symlink', path: 'a/b', target: '..' },
      ]),
    },
    {
      name: 'hardlink to an absolute path',
      entry: 'passwd',
      tarball: rawTarGz([...PREFIX, { type: 'hardlink', path: 'passwd', target: '/etc/passwd' }]),
    },
    {
      name: 'hardlink out of the root',
      entry: 'hl',
      tarball: rawTarGz([...PREFIX, { type: 'hardlink', path: 'hl', target: '../outside-file' }]),
    },
    {
      name: 'pax path override to ../paxevil',
      entry: '../paxevil',
      tarball: rawTarGz([...PREFIX, { type: 'pax', path: '../paxevil' }, { type: 'file', path: 'innocent', body: 'pwned' }]),
    },
    {
      // GNU tar renames the entry to GNU.sparse.name; node-tar ignores the keyword: one tarball, two
      // readings. The guard saw a/b/.runner-version -> ../../outside (inside); GNU tar would have put
      // .runner-version -> ../../outside at the root, where root then wrote the version marker.
      name: 'pax GNU.sparse.name renaming a symlink for GNU tar only',
      entry: 'a/b/.runner-version',
      tarball: rawTarGz([
        ...PREFIX,
        { type: 'dir', path: 'a/' },
        { type: 'dir', path: 'a/b/' },
        { type: 'paxRecords', records: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': '.runner-version' } },
        { type: 'symlink', path: 'a/b/.runner-version', target: '../../outside' },
      ]),
    },
    {
      name: 'character device',
      entry: 'dev-null',
      tarball: rawTarGz([...PREFIX, { type: 'chardev', path: 'dev-null' }]),
    },
  ];
}

/** An archive with only safe links: a relative symlink inside, a hardlink to an earlier file. */
export function benignLinksTarball(): Buffer {
  return rawTarGz([
    ...PREFIX,
    { type: 'dir', path: './bin/' },
    { type: 'file', path: './bin/libx.so.1', body: 'lib', uid: 4242, gid: 4242 },
    { type: 'symlink', path: './bin/libx.so', target: 'libx.so.1' },
    { type: 'symlink', path: './lib', target: 'bin' },
    { type: 'hardlink', path: './bin/libx-copy.so', target: './bin/libx.so.1' },
    { type: 'file', path: './bin/Runner.Listener.deps.json', body: JSON.stringify({ libraries: { 'Runner.Listener/2.330.0': {} } }) },
  ]);
}
