import { fromPromise } from 'xstate';
import type { IdentityInput } from '../machines/actor-contracts.js';
import type { Identity } from '../machines/types.js';
import { resolveIdentity as resolve, type MetadataClient } from '../services/aws/identity.js';

/** Instance id and region: environment first, IMDSv2 otherwise. */
export function resolveIdentity(deps: { imds: () => MetadataClient }) {
  return fromPromise<Identity, IdentityInput>(({ input }) => resolve(input.settings, deps.imds));
}
