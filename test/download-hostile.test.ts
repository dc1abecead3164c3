/**
 * Safe extraction: every hostile archive is refused as a whole, naming the entry,
 * with nothing written outside the runner dir and nothing left inside it — with GNU
 * tar and with node-tar as the extractor. A benign archive with safe links installs.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DownloadError } from '../services/errors.js';
import { installArchive, type Extractor } from '../services/install/runner-archive.js';
import { paxKeywords, tarGuardStream, UnsafeArchiveError } from '../services/install/tar-guard.js';
import { verifyExtractedTree } from '../services/install/tree-check.js';
import { chownRecursive } from '../services/runner/user.js';
import { benignLinksTarball, hostileTarballs, rawTar, rawTarGz } from './support/hostile-tarballs.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const EXTRACTORS: Extractor[] = ['gnu-tar', 'node-tar'];

let root: string;
let runnerDir: string;
let outside: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'runs-fleet-hostile-'));
  runnerDir = join(root, 'deep', 'er', 'runner');
  outside = join(root, 'outside');
  await mkdir(outside);
});
afterEach(() => rm(root, { recursive: true, force: true }));

function install(tarball: Buffer, extractor: Extractor, owner?: { uid: number; gid: number }) {
  return installArchive({
    body: Readable.from([tarball]),
    expectedSha256: sha256(tarball),
    runnerDir,
    version: '2.330.0',
    origin: 'test',
    extractor,
    owner,
  });
}

async function rejection(promise: Promise<unknown>): Promise<DownloadError> {
  try {
    await promise;
  } catch (error) {
    return error as DownloadError;
  }
  throw new Error('expected the archive to be refused');
}

describe.each(EXTRACTORS)('hostile archives are refused (%s)', (extractor) => {
  it.each(hostileTarballs('/tmp/runs-fleet-hostile-target').map((h) => [h.name, h] as const))('%s', async (_name, hostile) => {
    const { tarball, entry } = hostileTarballs(outside).find((h) => h.name === hostile.name)!;

    const error = await rejection(install(tarball, extractor));

    expect(error).toBeInstanceOf(DownloadError);
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('refusing the runner archive');
    expect(error.message).toContain(JSON.stringify(entry));
    expect(await readdir(outside)).toEqual([]);
    expect(await readdir(runnerDir)).toEqual([]);
    expect(await readdir(join(root, 'deep', 'er'))).toEqual(['runner']);
  });
});

describe.each(EXTRACTORS)('safe archives install (%s)', (extractor) => {
  it('keeps safe relative symlinks and hardlinks, never the archive\'s uids', async () => {
    const result = await install(benignLinksTarball(), extractor);

    expect(result.entries).toBe(8);
    expect(await readlink(join(runnerDir, 'bin/libx.so'))).toBe('libx.so.1');
    expect(await readlink(join(runnerDir, 'lib'))).toBe('bin');
    expect((await stat(join(runnerDir, 'bin/libx-copy.so'))).ino).toBe((await stat(join(runnerDir, 'bin/libx.so.1'))).ino);
    expect((await stat(join(runnerDir, 'bin/libx.so.1'))).uid).toBe(process.getuid!());
    expect(await readFile(join(runnerDir, '.runner-version'), 'utf8')).toBe('2.330.0\n');
  });

  it('gives the tree to the runner user when one is given', async () => {
    if (process.getuid!() !== 0) return; // chown to another user needs root
    const nobody = { uid: 65534, gid: 65534 };

    await install(benignLinksTarball(), extractor, nobody);

    for (const path of ['', 'run.sh', 'bin', 'bin/libx.so.1', '.runner-version']) {
      expect((await stat(join(runnerDir, path))).uid).toBe(65534);
    }
    expect((await lstat(join(runnerDir, 'bin/libx.so'))).uid).toBe(65534);
  });

  it('drops setuid bits from the archive', async () => {
    const tarball = rawTarGz([{ type: 'file', path: 'run.sh', body: '#!/bin/sh\n', mode: 0o4755 }]);

    await install(tarball, extractor);

    expect((await stat(join(runnerDir, 'run.sh'))).mode & 0o7777).toBe(0o755);
  });

  it('installs an archive with a long zero padding after its end marker (the extractor may stop reading early)', async () => {
    const tar = Buffer.concat([rawTar([{ type: 'file', path: 'run.sh', body: '#!/bin/sh\n', mode: 0o755 }]), Buffer.alloc(4 << 20)]);
    const tarball = gzipSync(tar);

    const result = await install(tarball, extractor);

    expect(result.sha256).toBe(sha256(tarball));
    expect(await readFile(join(runnerDir, 'run.sh'), 'utf8')).toBe('#!/bin/sh\n');
  });

  it('refuses an archive that is not gzip, as a terminal error', async () => {
    const garbage = Buffer.from('this is not a tarball at all');

    const error = await rejection(install(garbage, extractor));

    expect(error).toBeInstanceOf(DownloadError);
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('not a valid gzip stream');
    expect(await readdir(runnerDir)).toEqual([]);
  });
});

describe('the header guard', () => {
  it('stops the stream before the refused entry\'s header reaches the extractor', async () => {
    const safe = rawTar([{ type: 'dir', path: './' }, { type: 'file', path: 'run.sh', body: 'ok' }]).subarray(0, 3 * 512);
    const hostile = rawTar([{ type: 'file', path: '../evil', body: 'pwned' }]);
    const blocks = [safe.subarray(0, 512), safe.subarray(512, 1024), safe.subarray(1024), ...splitBlocks(hostile)];
    const forwarded: Buffer[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (forwarded.push(chunk), cb()) });

    const error = await pipeline(Readable.from(blocks), tarGuardStream(), sink).then(() => undefined, (e: Error) => e);

    expect(error).toBeInstanceOf(UnsafeArchiveError);
    expect(Buffer.concat(forwarded).equals(safe)).toBe(true);
  });
});

function splitBlocks(buffer: Buffer): Buffer[] {
  const blocks: Buffer[] = [];
  for (let offset = 0; offset < buffer.length; offset += 512) blocks.push(buffer.subarray(offset, offset + 512));
  return blocks;
}

describe('damaged archives', () => {
  it('a gzip stream cut short is retriable (truncated in transit); garbage is terminal', async () => {
    const whole = benignLinksTarball();
    const cut = whole.subarray(0, Math.floor(whole.length / 2));

    const truncated = await rejection(install(cut, 'gnu-tar'));
    const garbage = await rejection(install(Buffer.from('not gzip'), 'gnu-tar'));

    expect(truncated.message).toContain('truncated');
    expect(truncated.retriable).toBe(true);
    expect(garbage.retriable).toBe(false);
    expect(await readdir(runnerDir)).toEqual([]);
  });
});

describe('the guard’s caps and the tree check', () => {
  it('an archive past its entry or byte cap fails the stream (a gzip bomb fills no disk)', async () => {
    const many = rawTar(Array.from({ length: 20 }, (_, i) => ({ type: 'file' as const, path: `f${i}`, body: 'x' })));
    const sink = () => new Writable({ write: (_c: Buffer, _e, cb) => cb() });
    const byEntries = await pipeline(Readable.from(splitBlocks(many)), tarGuardStream(undefined, { entries: 10, bytes: 1e9 }), sink()).then(() => undefined, (e: Error) => e);
    expect(byEntries).toBeInstanceOf(UnsafeArchiveError);
    expect(byEntries!.message).toContain('at most 10');
    const big = rawTar([{ type: 'file', path: 'zeros', body: Buffer.alloc(64 * 1024) }]);
    const byBytes = await pipeline(Readable.from(splitBlocks(big)), tarGuardStream(undefined, { entries: 10, bytes: 16 * 1024 }), sink()).then(() => undefined, (e: Error) => e);
    expect(byBytes).toBeInstanceOf(UnsafeArchiveError);
    expect(byBytes!.message).toContain('past 16384 bytes uncompressed');
  });

  it('chownRecursive (chownr + a guarded root) changes every name, never a link\'s target, and refuses a root that is a link', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root to chown');
    const tree = join(root, 'owned');
    await mkdir(join(tree, 'bin'), { recursive: true });
    await writeFile(join(tree, 'bin', 'run.sh'), 'ok');
    await writeFile(join(outside, 'target'), 'not ours');
    await symlink(join(outside, 'target'), join(tree, 'bin', 'link-out'));
    await symlink(outside, join(tree, 'dir-link-out'));
    await chownRecursive(tree, 12345, 12345);
    for (const path of [tree, join(tree, 'bin'), join(tree, 'bin', 'run.sh'), join(tree, 'bin', 'link-out'), join(tree, 'dir-link-out')]) {
      expect({ path, uid: (await lstat(path)).uid }).toEqual({ path, uid: 12345 });
    }
    expect((await stat(join(outside, 'target'))).uid).toBe(0);
    expect((await stat(outside)).uid).toBe(0);
    await symlink(tree, join(root, 'root-link'));
    await expect(chownRecursive(join(root, 'root-link'), 1, 1)).rejects.toThrow(/is a symbolic link: not following it/);
  });

  it('reads pax records and tells them from a GNU long name', () => {
    const record = (k: string, v: string) => {
      const text = ` ${k}=${v}\n`;
      let n = text.length + 1;
      while (`${n}${text}`.length !== n) n = `${n}${text}`.length;
      return `${n}${text}`;
    };
    expect(paxKeywords(record('GNU.sparse.name', '.runner-version'))).toEqual(['GNU.sparse.name']);
    expect(paxKeywords(record('path', 'a/very/long') + record('mtime', '123.45'))).toEqual(['path', 'mtime']);
    expect(paxKeywords('a/very/long/gnu/name/that/is/not/pax\0')).toBeUndefined();
  });

  it('the tree on disk is checked whoever extracted it: a link planted outside, a setuid file, a hard link out', async () => {
    const tree = join(root, 'tree');
    await mkdir(join(tree, 'a', 'b'), { recursive: true });
    await writeFile(join(tree, 'run.sh'), 'ok');
    await symlink('../lib', join(tree, 'a', 'lib-link')); // stays inside
    expect(await verifyExtractedTree(tree)).toMatchObject({ files: 1, symlinks: 1 });
    await symlink('../../outside', join(tree, '.runner-version')); // what GNU.sparse.name produced
    await expect(verifyExtractedTree(tree)).rejects.toThrow(/"\.runner-version" .*resolves outside/);
    await rm(join(tree, '.runner-version'));
    await writeFile(join(tree, 'suid'), 'x', { mode: 0o4755 });
    await chmod(join(tree, 'suid'), 0o4755);
    await expect(verifyExtractedTree(tree)).rejects.toThrow(/setuid/);
    await rm(join(tree, 'suid'));
    await writeFile(join(root, 'outside-secret'), 'x');
    await link(join(root, 'outside-secret'), join(tree, 'hard'));
    await expect(verifyExtractedTree(tree)).rejects.toThrow(/hard link to a file outside/);
  });
});
