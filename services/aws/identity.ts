/**
 * Who and where this instance is: from the environment when given, else IMDSv2
 * (`@aws-sdk/ec2-metadata-service` does the token flow and honors
 * AWS_EC2_METADATA_SERVICE_ENDPOINT).
 */
import type { Identity } from '../domain.js';
import { IdentityError } from '../errors.js';
import type { Settings } from '../settings.js';

/** The part of MetadataService we use; paths have no leading slash. */
export interface MetadataClient {
  request(path: string, options: { method?: string; headers?: Record<string, string> }): Promise<string>;
}

export async function resolveIdentity(settings: Settings, imds: () => MetadataClient): Promise<Identity> {
  if (settings.instanceId && settings.region) return { instanceId: settings.instanceId, region: settings.region };
  const client = imds();
  const ask = async (path: string, what: string): Promise<string> => {
    try {
      const value = (await client.request(path, {})).trim();
      if (!value) throw new Error('empty answer');
      return value;
    } catch (error) {
      throw new IdentityError(
        `could not learn the ${what} from IMDS (${path}): ${(error as Error).message}. ` +
          `Set ${what === 'region' ? 'AWS_REGION' : 'RUNS_FLEET_INSTANCE_ID'} or check AWS_EC2_METADATA_SERVICE_ENDPOINT`,
        { cause: error, retriable: true },
      );
    }
  };
  const instanceId = settings.instanceId ?? (await ask('latest/meta-data/instance-id', 'instance id'));
  const region = settings.region ?? (await ask('latest/meta-data/placement/region', 'region'));
  if (!/^i-[0-9a-zA-Z]+$/.test(instanceId)) {
    throw new IdentityError(`IMDS returned an instance id that does not look like one: ${JSON.stringify(instanceId.slice(0, 40))}`);
  }
  return { instanceId, region };
}
