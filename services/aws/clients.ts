/**
 * AWS clients, made once per region and handed to actors by injection.
 * Endpoints come from the SDK's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>):
 * nothing here knows about emulators.
 *
 * Each client's package is loaded on first use: EC2 is only needed for the very last call, and
 * boot needs SSM only. (The bundle holds each client with only the commands the agent calls,
 * scripts/lean-bundle.mjs; from node_modules, the whole EC2 client costs ~90 MB and ~0.4 s.)
 */
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { Env } from '../settings.js';

/** A client factory: sync in tests, lazily loading in the agent. */
export type ClientFactory<T> = (region?: string) => T | Promise<T>;

export interface AwsClients {
  ssm(region?: string): Promise<SSMClient>;
  sqs(region?: string): Promise<SQSClient>;
  ec2(region?: string): Promise<EC2Client>;
  s3(region?: string): Promise<S3Client>;
  logs(region?: string): Promise<CloudWatchLogsClient>;
  destroy(): void;
}

interface ClientConfig {
  region?: string;
  maxAttempts?: number;
  forcePathStyle?: boolean;
}
type Destroyable = { destroy(): void };

export function createAwsClients(env: Env, defaultRegion?: string): AwsClients {
  const made = new Map<string, Promise<Destroyable>>();
  // A custom S3 endpoint (an emulator, MinIO, a VPC endpoint by IP) needs path-style addressing.
  const forcePathStyle = Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL);
  const get = <T extends Destroyable>(name: string, load: () => Promise<new (config: ClientConfig) => T>, region?: string): Promise<T> => {
    const key = `${name}:${region ?? defaultRegion ?? ''}`;
    let client = made.get(key) as Promise<T> | undefined;
    if (!client) {
      // Our own retry loops (visible in the machine or in the services) decide about retries:
      // SDK retries on top would multiply attempts and stretch every deadline.
      client = load().then((Client) => new Client({ region: region ?? defaultRegion, maxAttempts: 1, ...(name === 's3' ? { forcePathStyle } : {}) }));
      made.set(key, client);
    }
    return client;
  };
  return {
    ssm: (region) => get('ssm', async () => (await import('@aws-sdk/client-ssm')).SSMClient, region),
    sqs: (region) => get('sqs', async () => (await import('@aws-sdk/client-sqs')).SQSClient, region),
    ec2: (region) => get('ec2', async () => (await import('@aws-sdk/client-ec2')).EC2Client, region),
    s3: (region) => get('s3', async () => (await import('@aws-sdk/client-s3')).S3Client, region),
    logs: (region) => get('logs', async () => (await import('@aws-sdk/client-cloudwatch-logs')).CloudWatchLogsClient, region),
    destroy: () => {
      for (const client of made.values()) void client.then((c) => c.destroy(), () => {});
      made.clear();
    },
  };
}
