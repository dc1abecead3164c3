/**
 * The last call: EC2 TerminateInstances on this instance, with bounded retries.
 * Only the emulator or a real instance's own id ever reach this (never the machine we run on).
 */
import { TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { TerminationError, isRetriableAwsError } from '../errors.js';
import { backoffMs, sleep } from '../retry.js';

export async function terminateInstance(
  client: EC2Client,
  instanceId: string,
  options: { attempts?: number; backoffMs?: (attempt: number) => number; signal?: AbortSignal } = {},
): Promise<void> {
  const attempts = options.attempts ?? 3;
  const backoff = options.backoffMs ?? ((n: number) => backoffMs(n, 1_000, 4_000));
  for (let attempt = 1; ; attempt += 1) {
    try {
      await client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal: options.signal });
      return;
    } catch (error) {
      if (attempt >= attempts || !isRetriableAwsError(error) || options.signal?.aborted) {
        throw new TerminationError(
          `TerminateInstances for ${instanceId} failed after ${attempt} attempt(s): ${(error as Error).name}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      await sleep(backoff(attempt), options.signal);
    }
  }
}
