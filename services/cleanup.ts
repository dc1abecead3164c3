/**
 * What must not outlive the job on disk: the runner's registration and credentials,
 * its work dir, and the agent's state files. Each removal is attempted even when
 * another fails; the errors are returned, not thrown, so termination goes on.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

export const RUNNER_SECRET_FILES = ['.runner', '.credentials', '.credentials_rsaparams', '.env.jit'];

export async function cleanupRunner(runnerDir: string, stateDir: string): Promise<string[]> {
  const targets = [...RUNNER_SECRET_FILES.map((f) => join(runnerDir, f)), join(runnerDir, '_work'), stateDir];
  const errors: string[] = [];
  await Promise.all(
    targets.map(async (target) => {
      try {
        await rm(target, { recursive: true, force: true, maxRetries: 2 });
      } catch (error) {
        errors.push(`${target}: ${(error as Error).message}`);
      }
    }),
  );
  return errors;
}
