/**
 * Job hooks: `ACTIONS_RUNNER_HOOK_JOB_STARTED` / `_COMPLETED` scripts that tell the
 * agent the job's real identity (run id, attempt, job, repository, workflow).
 *
 * The runner runs a hook as a step of the job (as the runner user, with
 * `bash -e -o pipefail`), and a failing hook fails the job. So the scripts turn
 * errexit off, force exit status 0 on every path (EXIT trap), touch only local
 * files, and never block. They write `{stateDir}/job/job-started.json` (and
 * `job-completed.json`) atomically (temp file + rename); the agent reads it back
 * with `readJobIdentity`. Output parsing stays the primary signal: nothing
 * depends on the hooks having run.
 *
 * The hooks also carry the agent's word into the job's own log, which is what the developer
 * sees in GitHub: the started hook prints `notice/job-started.txt` (the instance, and what
 * would stop the job), the completed hook prints `notice/job-notice.txt` (a `::error` naming
 * why the agent stopped the job, a `::warning` for low memory). Only the agent writes them.
 * But the runner skips every remaining step, `always()` ones included, once the listener was
 * signalled (src/Runner.Worker/StepsRunner.cs: "Skip evaluate condition on runner shutdown"),
 * so after a stop the completed hook does not run: the reason reaches the job's log only when
 * the job ended by itself (a memory warning) — see docs/operations.md.
 *
 * Layout (the runner user can read and run the hooks but not change them; it can
 * write only the job dir):
 *   {stateDir}/            agent's, 0711: the runner user can reach below, not list or write it
 *   {stateDir}/hooks/      root-owned 0755: job-started.sh, job-completed.sh (0755)
 *   {stateDir}/notice/     root-owned 0755: job-started.txt, job-notice.txt (0644), the agent's only
 *   {stateDir}/job/        owned by the runner user, 0755
 */
import { closeSync, constants, fchmodSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, chown, mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';

export const HOOKS_SUBDIR = 'hooks';
export const JOB_SUBDIR = 'job';
export const NOTICE_SUBDIR = 'notice';
/** The most of a notice file a hook prints. */
const NOTICE_MAX_BYTES = 16 * 1024;

export interface JobHookPaths {
  /** Absolute path for ACTIONS_RUNNER_HOOK_JOB_STARTED. */
  started: string;
  /** Absolute path for ACTIONS_RUNNER_HOOK_JOB_COMPLETED. */
  completed: string;
  /** Directory the hooks write to (runner-writable). */
  jobDir: string;
  /** What the started hook prints (the agent writes it before run.sh starts). */
  startedNotice: string;
  /** What the completed hook prints: annotation lines the agent writes while the job runs. */
  jobNotice: string;
}

export interface JobIdentity {
  event: 'started' | 'completed';
  runId?: string;
  runAttempt?: string;
  job?: string;
  repository?: string;
  workflow?: string;
  /** When the hook ran (ISO-8601 UTC). */
  at?: string;
}

/** Where the hooks live for a state dir (no I/O). */
export function jobHookPaths(stateDir: string): JobHookPaths {
  return {
    started: join(stateDir, HOOKS_SUBDIR, 'job-started.sh'),
    completed: join(stateDir, HOOKS_SUBDIR, 'job-completed.sh'),
    jobDir: join(stateDir, JOB_SUBDIR),
    startedNotice: join(stateDir, NOTICE_SUBDIR, 'job-started.txt'),
    jobNotice: join(stateDir, NOTICE_SUBDIR, 'job-notice.txt'),
  };
}

/** A workflow command's message, escaped as the runner unescapes it (`%`, CR, LF). */
export function escapeCommandData(text: string): string {
  return text.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
}

/** One annotation line of the job's log, from the agent. */
export function annotation(level: 'error' | 'warning', text: string): string {
  return `::${level} title=runs-fleet::${escapeCommandData(text)}`;
}

/**
 * Replace a notice file (root-owned dir: temp file + rename, never through a link). Synchronous:
 * a stop's notice is in place before the runner is signalled. `lines` empty removes it.
 */
export function writeNotice(file: string, lines: readonly string[]): void {
  if (lines.length === 0) return rmSync(file, { force: true });
  const tmp = `${file}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    writeFileSync(fd, lines.join('\n') + '\n');
    fchmodSync(fd, 0o644);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** The hook script for one event; its paths are baked in (the job cannot redirect them). */
export function hookScript(event: 'started' | 'completed', paths: Pick<JobHookPaths, 'jobDir' | 'startedNotice' | 'jobNotice'>): string {
  const target = join(paths.jobDir, `job-${event}.json`);
  const notice = event === 'started' ? paths.startedNotice : paths.jobNotice;
  return `#!/bin/bash
# runs-fleet job hook (${event}): records the job's identity for the agent.
# It must never fail the job: errexit off, exit status forced to 0, local files only.
set +e +o pipefail 2>/dev/null
trap 'exit 0' EXIT
exec 2>/dev/null
target=${shellQuote(target)}
json() {
  local s
  s=$(printf '%s' "$1" | LC_ALL=C tr -d '\\000-\\010\\013\\014\\016-\\037')
  s=\${s//\\\\/\\\\\\\\}; s=\${s//\\"/\\\\\\"}; s=\${s//$'\\n'/\\\\n}; s=\${s//$'\\r'/\\\\r}; s=\${s//$'\\t'/\\\\t}
  printf '"%s"' "$s"
}
tmp="$target.$$.tmp"
{
  printf '{"event":"${event}","at":%s' "$(json "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
  printf ',"runId":%s' "$(json "$GITHUB_RUN_ID")"
  printf ',"runAttempt":%s' "$(json "$GITHUB_RUN_ATTEMPT")"
  printf ',"job":%s' "$(json "$GITHUB_JOB")"
  printf ',"repository":%s' "$(json "$GITHUB_REPOSITORY")"
  printf ',"workflow":%s' "$(json "$GITHUB_WORKFLOW")"
  printf '}\\n'
} > "$tmp" && mv -f "$tmp" "$target" || rm -f "$tmp"
# The agent's word for the job's log (root-owned, the agent's only): printed, never run.
notice=${shellQuote(notice)}
[ -f "$notice" ] && [ ! -L "$notice" ] && head -c ${NOTICE_MAX_BYTES} -- "$notice"
exit 0
`;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Write the hook scripts and the job dir. `owner` is the runner user when the agent
 * (root) switches to it: the job dir becomes theirs.
 */
export async function installJobHooks(stateDir: string, owner?: { uid: number; gid: number }): Promise<JobHookPaths> {
  const paths = jobHookPaths(stateDir);
  const hooksDir = join(stateDir, HOOKS_SUBDIR);
  // The state dir is the agent's: the runner user may only pass through it to the hooks (the search
  // bit), never list or write it — whoever created it, with whatever umask (systemd's is 0022).
  await mkdir(dirname(stateDir), { recursive: true, mode: 0o755 });
  await mkdir(stateDir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  const mode = (await stat(stateDir)).mode & 0o7777;
  const wanted = (mode & ~0o066) | 0o011;
  if (wanted !== mode) await chmod(stateDir, wanted);
  await mkdir(hooksDir, { recursive: true, mode: 0o755 });
  await chmod(hooksDir, 0o755);
  await mkdir(paths.jobDir, { recursive: true, mode: 0o755 });
  await chmod(paths.jobDir, 0o755);
  if (owner) await chown(paths.jobDir, owner.uid, owner.gid);
  const noticeDir = dirname(paths.jobNotice);
  await rm(noticeDir, { recursive: true, force: true }); // a previous boot's notices are not this job's
  await mkdir(noticeDir, { recursive: true, mode: 0o755 });
  await chmod(noticeDir, 0o755);
  for (const event of ['started', 'completed'] as const) {
    const file = event === 'started' ? paths.started : paths.completed;
    const tmp = `${file}.tmp`;
    await writeFile(tmp, hookScript(event, paths), { mode: 0o755 });
    await chmod(tmp, 0o755);
    await rename(tmp, file);
  }
  return paths;
}

/** Can `who` traverse to `file` and run it? Mode bits only (owner, primary group, others). */
async function canRun(file: string, who: { uid: number; gid: number }): Promise<boolean> {
  if (who.uid === 0) return true;
  const allowed = async (path: string, bits: number): Promise<boolean> => {
    const st = await stat(path);
    const shift = st.uid === who.uid ? 6 : st.gid === who.gid ? 3 : 0;
    return ((st.mode >> shift) & bits) === bits;
  };
  try {
    if (!(await allowed(file, 0o5))) return false;
    for (let dir = dirname(file); ; dir = dirname(dir)) {
      if (!(await allowed(dir, 0o1))) return false;
      if (dir === dirname(dir)) return true;
    }
  } catch {
    return false;
  }
}

/**
 * Whether the runner user can run both hooks. A hook the runner cannot execute fails
 * the job, so when this is false the agent leaves the hook variables out.
 */
export async function hooksUsableBy(paths: JobHookPaths, who: { uid: number; gid: number }): Promise<boolean> {
  return (await canRun(paths.started, who)) && (await canRun(paths.completed, who));
}

const identitySchema = z.object({
  event: z.enum(['started', 'completed']),
  at: z.string().optional(),
  runId: z.string().optional(),
  runAttempt: z.string().optional(),
  job: z.string().optional(),
  repository: z.string().optional(),
  workflow: z.string().optional(),
});

/** Largest identity file read back. */
const MAX_IDENTITY_BYTES = 64 * 1024;

/**
 * The job dir belongs to the runner user, so a job could plant a symlink, a FIFO or a
 * huge file there: read only a small regular file, never following a link, never blocking.
 */
async function readSmallRegularFile(path: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile() || st.nlink !== 1 || st.size > MAX_IDENTITY_BYTES) return undefined;
    return await handle.readFile('utf8');
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

/**
 * The job's identity as the hooks recorded it: the started record, else the completed
 * one; undefined when no hook ran (or its file is unreadable). Empty fields are omitted.
 */
export async function readJobIdentity(stateDir: string): Promise<JobIdentity | undefined> {
  const { jobDir } = jobHookPaths(stateDir);
  for (const event of ['started', 'completed'] as const) {
    const text = await readSmallRegularFile(join(jobDir, `job-${event}.json`));
    if (text === undefined) continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      continue;
    }
    const parsed = identitySchema.safeParse(json);
    if (!parsed.success) continue;
    const identity: JobIdentity = { event: parsed.data.event };
    for (const key of ['at', 'runId', 'runAttempt', 'job', 'repository', 'workflow'] as const) {
      const value = parsed.data[key];
      if (value) identity[key] = value;
    }
    return identity;
  }
  return undefined;
}
