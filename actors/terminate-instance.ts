import type { EC2Client } from '@aws-sdk/client-ec2';
import { fromPromise } from 'xstate';
import type { TerminateInput } from '../machines/actor-contracts.js';
import { terminateInstance as terminate } from '../services/ec2-terminate.js';
import type { Logger } from '../services/logger.js';

/** EC2 TerminateInstances on this instance, retried. */
export function terminateInstance(deps: { ec2: (region?: string) => EC2Client; logger: Logger }) {
  return fromPromise<void, TerminateInput>(async ({ input, signal }) => {
    deps.logger.info({ instance_id: input.instanceId }, 'requesting TerminateInstances');
    await terminate(deps.ec2(input.region), input.instanceId, { signal });
    deps.logger.info({ instance_id: input.instanceId }, 'TerminateInstances accepted');
  });
}
