/**
 * One parser decides: whatever extracted the runner tarball (GNU tar or node-tar), the tree
 * that landed on disk is what gets checked, with lstat, before anything is moved into place.
 * The header guard (runner-tar-guard.ts) reads the archive with node-tar; GNU tar may read
 * the same bytes differently (pax `GNU.sparse.name` renames an entry for GNU tar only), so the
 * guard alone cannot be the last word.
 *
 * Refused: a symlink whose target — resolved through the tree's own symlinks, as the kernel
 * would — leaves the tree or is absolute; a file with a link outside the tree (its link count
 * above the names it has inside); devices, FIFOs, sockets; setuid and setgid bits.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { resolveThroughSymlinks, UnsafeArchiveError } from './tar-guard.js';

export interface TreeSummary {
  files: number;
  directories: number;
  symlinks: number;
}

export async function verifyExtractedTree(root: string): Promise<TreeSummary> {
  const summary: TreeSummary = { files: 0, directories: 0, symlinks: 0 };
  const symlinks = new Map<string, string>();
  const links = new Map<string, { nlink: number; names: string[] }>();
  const walk = async (relative: string): Promise<void> => {
    for (const name of await readdir(join(root, relative))) {
      const path = relative ? `${relative}/${name}` : name;
      const st = await lstat(join(root, path));
      if (st.isSymbolicLink()) {
        summary.symlinks++;
        symlinks.set(path, await readlink(join(root, path)));
      } else if (st.isDirectory()) {
        summary.directories++;
        if (st.mode & 0o6000) throw new UnsafeArchiveError(path, 'is a setuid/setgid directory on disk after extraction');
        await walk(path);
      } else if (st.isFile()) {
        summary.files++;
        if (st.mode & 0o6000) throw new UnsafeArchiveError(path, `is setuid/setgid on disk after extraction (mode ${(st.mode & 0o7777).toString(8)})`);
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const seen = links.get(key) ?? { nlink: st.nlink, names: [] };
          seen.names.push(path);
          links.set(key, seen);
        }
      } else {
        throw new UnsafeArchiveError(path, 'is a device, FIFO or socket on disk after extraction');
      }
    }
  };
  await walk('');
  for (const { nlink, names } of links.values()) {
    if (names.length < nlink) throw new UnsafeArchiveError(names[0]!, `is a hard link to a file outside the runner tree (${nlink} links, ${names.length} inside)`);
  }
  for (const [path, target] of symlinks) {
    const escape = resolveThroughSymlinks(symlinks, posix.dirname(path), target);
    if (escape) throw new UnsafeArchiveError(path, `is a symlink to "${target}" on disk, which ${escape}`);
  }
  return summary;
}
