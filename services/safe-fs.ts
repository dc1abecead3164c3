/**
 * Reading and writing, as root, where the job could have touched: a directory pinned by an open
 * handle (a later swap of its path cannot redirect us), files read without following a link or
 * blocking on a FIFO (checked again on the open file), and files written as new temp files
 * renamed into place (a rename replaces a planted link, never follows it).
 */
import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

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


/**
 * Write `files` (name → content) into `dirPath`, following nothing there: the directory opened
 * without following a link and used through its handle; each file a new temp file
 * (O_EXCL | O_NOFOLLOW, random name) given its owner and mode before its content, then renamed
 * over the name. A temp file is removed when anything fails. Returns the names written, in order.
 */
export async function writeFilesInto(
  dirPath: string,
  files: Iterable<readonly [name: string, content: string | Buffer]>,
  options: { mode: number; owner?: { uid: number; gid: number } },
): Promise<string[]> {
  const dir = await open(dirPath, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  const written: string[] = [];
  try {
    const base = pinnedPath(dir, dirPath);
    for (const [name, content] of files) {
      const tmp = join(base, `${name}.rfa-${randomBytes(6).toString('hex')}.tmp`);
      const file = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, options.mode);
      try {
        try {
          if (options.owner) await file.chown(options.owner.uid, options.owner.gid);
          await file.chmod(options.mode);
          await file.writeFile(content);
        } finally {
          await file.close();
        }
        await rename(tmp, join(base, name));
      } catch (error) {
        await rm(tmp, { force: true });
        throw error;
      }
      written.push(name);
    }
    return written;
  } finally {
    await dir.close();
  }
}
