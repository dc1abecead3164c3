/**
 * The JIT config, decoded into the runner root before run.sh starts — what the listener
 * itself does with `--jitconfig` (src/Runner.Listener/Runner.cs: base64 of a JSON object whose
 * entries are the root's `.runner`, `.credentials` and `.credentials_rsaparams`, each base64;
 * written, then `LoadSettings`), done by the agent instead. run.sh then starts configured, with
 * no `ACTIONS_RUNNER_INPUT_JITCONFIG` in its environment: the listener drops that variable only
 * from its own environment, so run.sh's and run-helper.sh's `/proc/PID/environ` would show the
 * whole config to a job of the same uid for the job's whole life.
 *
 * The files are the runner user's (it is the runner that reads them), mode 0600. The runner
 * root is theirs too, so they are written as root without following anything in it
 * (safe-fs.ts `writeFilesInto`). Nothing of the runner has run yet in JIT mode.
 */
import { RegistrationError } from '../errors.js';
import { writeFilesInto } from '../safe-fs.js';

/** What a JIT config must carry: the runner's settings and its credentials. */
const REQUIRED = ['.runner', '.credentials'];
/**
 * A file name of the runner root, as the runner writes them (no path, no traversal): its
 * registration and credentials files, `.runner`, `.credentials` and their `_…` siblings (cleanup removes all of those).
 */
export const RUNNER_CONFIG_FILE = /^\.(?:runner|credentials)(?:_[A-Za-z0-9_]{1,40})?$/;
const MAX_DECODED_BYTES = 1024 * 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const decode64 = (text: string, what: string): Buffer => {
  const compact = text.replace(/\s+/g, '');
  if (!BASE64.test(compact) || compact.length % 4 === 1) throw new RegistrationError(`the JIT config is not a runner JIT config: ${what} is not base64`);
  return Buffer.from(compact, 'base64');
};

/**
 * The files a JIT config holds (name → content). Throws a RegistrationError naming what is wrong
 * (never quoting the config: it is a credential).
 */
export function decodeJitConfig(jitConfig: string): Map<string, Buffer> {
  if (jitConfig.length > (MAX_DECODED_BYTES * 4) / 3 + 4) throw new RegistrationError('the JIT config is not a runner JIT config: larger than 1 MiB');
  let document: unknown;
  try {
    document = JSON.parse(decode64(jitConfig, 'the config').toString('utf8'));
  } catch (error) {
    if (error instanceof RegistrationError) throw error;
    throw new RegistrationError('the JIT config is not a runner JIT config: its base64 does not hold a JSON object');
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new RegistrationError('the JIT config is not a runner JIT config: its base64 does not hold a JSON object');
  }
  const files = new Map<string, Buffer>();
  for (const [name, value] of Object.entries(document as Record<string, unknown>)) {
    if (!RUNNER_CONFIG_FILE.test(name)) throw new RegistrationError('the JIT config is not a runner JIT config: an entry name is not a runner file name (.runner… or .credentials…, no path)');
    if (typeof value !== 'string') throw new RegistrationError(`the JIT config is not a runner JIT config: entry ${name} is not a string`);
    files.set(name, decode64(value, `entry ${name}`));
  }
  const missing = REQUIRED.filter((name) => !files.has(name));
  if (missing.length > 0) throw new RegistrationError(`the JIT config is not a runner JIT config: it has no ${missing.join(' and no ')}`);
  return files;
}

/** Write the JIT config's files into the runner root, as the runner user's 0600 files. */
export async function writeJitFiles(runnerDir: string, files: ReadonlyMap<string, Buffer>, owner?: { uid: number; gid: number }): Promise<string[]> {
  return writeFilesInto(runnerDir, files, { mode: 0o600, owner });
}
