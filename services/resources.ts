/** Free disk space and available memory, in MB. */
import { readFile, statfs } from 'node:fs/promises';
import { freemem } from 'node:os';
import { dirname } from 'node:path';

/** Free MB on the filesystem holding `path` (or its nearest existing ancestor). */
export async function freeDiskMb(path: string): Promise<number> {
  let candidate = path;
  for (;;) {
    try {
      const stats = await statfs(candidate);
      return Math.floor((stats.bavail * stats.bsize) / (1024 * 1024));
    } catch (error) {
      const parent = dirname(candidate);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === candidate) throw error;
      candidate = parent;
    }
  }
}

/** MemAvailable from /proc/meminfo (what the kernel can give without swapping), else os.freemem(). */
export async function availableMemoryMb(): Promise<number> {
  try {
    const text = await readFile('/proc/meminfo', 'utf8');
    const kb = /^MemAvailable:\s+(\d+) kB/m.exec(text)?.[1];
    if (kb) return Math.floor(Number(kb) / 1024);
  } catch {
    /* not Linux */
  }
  return Math.floor(freemem() / (1024 * 1024));
}
