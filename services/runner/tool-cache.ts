/**
 * The Actions tool cache the AMI bakes (`AGENT_TOOLSDIRECTORY`, default /opt/hostedtoolcache):
 * which `<Tool>/<version>/<platform>` entries a job installed on demand — the orchestrator's
 * `tool_cache_misses` metric (pkg/agent/toolcache.go). An install is complete when its
 * `<platform>.complete` marker exists, so the markers are the entries.
 *
 * The job can write the tool cache, so the walk is bounded (entries visited, depth 2, no
 * symlink followed) and reads names only.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const DEFAULT_TOOL_CACHE_DIR = '/opt/hostedtoolcache';
/** Misses one job reports at most (the orchestrator's maxToolCacheMisses). */
export const MAX_TOOL_CACHE_MISSES = 50;
/** Directory entries one snapshot reads at most: a job writing millions of markers cannot hold reporting. */
export const MAX_TOOL_CACHE_ENTRIES = 20_000;

export interface ToolCacheSnapshot {
  entries: string[];
  /** The walk stopped at MAX_TOOL_CACHE_ENTRIES. */
  truncated: boolean;
}

/** The tool cache's dir for the job's environment. */
export function toolCacheDir(env: Readonly<Record<string, string | undefined>>): string {
  return env.AGENT_TOOLSDIRECTORY?.trim() || DEFAULT_TOOL_CACHE_DIR;
}

/** Completed entries under `dir`; throws when `dir` itself cannot be read (as the Go agent's snapshot errors). */
export async function snapshotToolCache(dir: string, maxEntries = MAX_TOOL_CACHE_ENTRIES): Promise<ToolCacheSnapshot> {
  const entries: string[] = [];
  let visited = 0;
  const list = async (path: string) => {
    const dirents = await readdir(path, { withFileTypes: true });
    visited += dirents.length;
    return dirents;
  };
  for (const tool of await list(dir)) {
    if (visited > maxEntries) return { entries, truncated: true };
    if (!tool.isDirectory()) continue;
    let versions;
    try {
      versions = await list(join(dir, tool.name));
    } catch {
      continue; // unreadable entry: skipped, like WalkDir's per-entry errors
    }
    for (const version of versions) {
      if (visited > maxEntries) return { entries, truncated: true };
      if (!version.isDirectory()) continue;
      let files;
      try {
        files = await list(join(dir, tool.name, version.name));
      } catch {
        continue;
      }
      for (const file of files) {
        if (file.isFile() && file.name.endsWith('.complete') && file.name.length > '.complete'.length) {
          entries.push(`${tool.name}/${version.name}/${file.name.slice(0, -'.complete'.length)}`);
        }
      }
    }
  }
  return { entries, truncated: false };
}

/** Entries in `after` but not in `before`, sorted, capped. */
export function toolCacheMisses(before: readonly string[], after: readonly string[], max = MAX_TOOL_CACHE_MISSES): string[] {
  const known = new Set(before);
  return [...new Set(after.filter((key) => !known.has(key)))].sort().slice(0, max);
}
