/**
 * Free space on the filesystem that holds (or will hold) a path.
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DownloadError } from './errors.js';

const MB = 1024 * 1024;

/** The path itself if it exists, else its nearest existing ancestor (statfs needs an existing path). */
export async function nearestExistingPath(path: string): Promise<string> {
  let current = path;
  for (;;) {
    try {
      await statfs(current);
      return current;
    } catch (error) {
      const parent = dirname(current);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === current) throw error;
      current = parent;
    }
  }
}

export interface FreeSpace {
  /** The existing path that was measured. */
  path: string;
  /** Space available to unprivileged users, in MiB. */
  freeMb: number;
}

export async function freeSpace(path: string): Promise<FreeSpace> {
  const measured = await nearestExistingPath(path);
  const stats = await statfs(measured);
  return { path: measured, freeMb: Math.floor((Number(stats.bavail) * Number(stats.bsize)) / MB) };
}

/** Throws a terminal DownloadError when less than `minFreeMb` MiB are free where `dir` lives. */
export async function ensureFreeSpaceForDownload(dir: string, minFreeMb: number): Promise<FreeSpace> {
  let space: FreeSpace;
  try {
    space = await freeSpace(dir);
  } catch (error) {
    throw new DownloadError(`cannot measure free disk space for ${dir}: ${(error as Error).message}`, { cause: error });
  }
  if (space.freeMb < minFreeMb) {
    throw new DownloadError(
      `not enough disk space to download the runner: ${space.freeMb} MB free on the filesystem of ${space.path} ` +
        `(runner dir ${dir}), at least ${minFreeMb} MB required (RUNS_FLEET_DOWNLOAD_MIN_FREE_MB)`,
    );
  }
  return space;
}
