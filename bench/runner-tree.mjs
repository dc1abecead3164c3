/**
 * A deterministic runner-like file tree for the benchmarks (a seeded PRNG): a quarter of the files
 * incompressible like native binaries, the rest text-like, sizes from 1 KiB to 8 MiB, spread over
 * `bin/` and `externals/node*` like the real actions/runner layout. ~400 MB of files gzip (-6) to
 * ~206 MB; ~370 MB to ~190 MB, the size of a real runner tarball.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Write the tree into `tree` (which should not exist yet) until `totalBytes` are written. */
export function writeRunnerLikeTree(tree, totalBytes) {
  let state = 0x9e3779b9;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  const words = Array.from({ length: 4096 }, (_, i) => Buffer.from(`w${((i * 2654435761) >>> 0).toString(36)}`.slice(0, 3 + (i % 9)) + ' '));
  let total = 0;
  let files = 0;
  for (let n = 0; total < totalBytes; n++) {
    const pick = next() % 100;
    const size = pick < 70 ? 1024 + (next() % 65536) : pick < 95 ? 65536 + (next() % (1 << 20)) : (1 << 20) + (next() % (7 << 20));
    const dir = join(tree, n % 5 === 0 ? 'bin' : `externals/node${n % 3}/lib/m${n % 41}`);
    mkdirSync(dir, { recursive: true });
    const buf = Buffer.allocUnsafe(size);
    if (n % 4 === 0) {
      for (let i = 0; i + 4 <= size; i += 4) buf.writeUInt32LE(next(), i); // binary-like
      buf.fill(0, size - (size % 4));
    } else {
      const vocabulary = n % 4 === 1 ? 4096 : 300; // text-like
      let offset = 0;
      while (offset < size) offset += words[next() % vocabulary].copy(buf, offset);
    }
    writeFileSync(join(dir, `f${n}.dll`), buf);
    total += size;
    files += 1;
  }
  return { bytes: total, files };
}
