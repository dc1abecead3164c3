/**
 * Reading, as root, what the job could have touched: a directory pinned by an open handle
 * (a later swap of its path cannot redirect us) and files opened without following a link
 * or blocking on a FIFO, checked again on the open file.
 */
import { constants, existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** The directory through its open handle (a later swap of the path cannot redirect us); the path itself where /proc is missing. */
export function pinnedPath(dir: FileHandle, path: string): string {
  const viaFd = `/proc/self/fd/${dir.fd}`;
  return existsSync(viaFd) ? viaFd : path;
}

/**
 * Run `use` on a regular file opened without following a symlink or blocking on a FIFO
 * (checked again on the open file: the path may have been swapped since it was listed);
 * undefined for anything else.
 */
export async function withRegularFile<T>(path: string, use: (handle: FileHandle, size: number) => Promise<T>): Promise<T | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined; // a symlink (ELOOP), gone, or not readable
  }
  try {
    const stat = await handle.stat();
    // A hard link (which O_NOFOLLOW does not stop) could name a root-only file: one name only.
    return stat.isFile() && stat.nlink === 1 ? await use(handle, stat.size) : undefined;
  } finally {
    await handle.close().catch(() => {});
  }
}

