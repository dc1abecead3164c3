/**
 * The last call: EC2 TerminateInstances on this instance — one attempt, classified (the chart's
 * `requestingTermination` loop retries it). Only the emulator or a real instance's own id ever
 * reach this (never the machine we run on).
 */
import { TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { TerminationError, isRetriableAwsError } from '../errors.js';

export async function terminateInstance(client: EC2Client, instanceId: string, options: { signal?: AbortSignal } = {}): Promise<void> {
  try {
    await client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal: options.signal });
  } catch (error) {
    throw new TerminationError(`TerminateInstances for ${instanceId} failed: ${(error as Error).name}: ${(error as Error).message}`, {
      cause: error,
      retriable: !options.signal?.aborted && isRetriableAwsError(error),
    });
  }
}
