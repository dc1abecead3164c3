import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ClientFactory } from '../services/aws/clients.js';
import { fromPromise } from 'xstate';
import type { TerminateInput } from '../machines/actor-contracts.js';
import type { Logger } from '../services/logs/logger.js';

/** EC2 TerminateInstances on this instance: one attempt (the chart retries). */
export function terminateInstance(deps: { ec2: ClientFactory<EC2Client>; logger: Logger }) {
  return fromPromise<void, TerminateInput>(async ({ input, signal }) => {
    deps.logger.info({ instance_id: input.instanceId }, 'requesting TerminateInstances');
    // Loaded only now: the EC2 SDK is the heaviest package the agent uses, needed for this call only.
    const { terminateInstance: terminate } = await import('../services/aws/ec2-terminate.js');
    await terminate(await deps.ec2(input.region), input.instanceId, { signal });
    deps.logger.info({ instance_id: input.instanceId }, 'TerminateInstances accepted');
  });
}
