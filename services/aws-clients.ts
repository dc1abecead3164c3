/**
 * AWS clients, made once per region and handed to actors by injection.
 * Endpoints come from the SDK's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>):
 * nothing here knows about emulators.
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Env } from './settings.js';

export interface AwsClients {
  ssm(region?: string): SSMClient;
  sqs(region?: string): SQSClient;
  ec2(region?: string): EC2Client;
  s3(region?: string): S3Client;
  logs(region?: string): CloudWatchLogsClient;
  destroy(): void;
}

type Ctor<T> = new (config: { region?: string; maxAttempts?: number; forcePathStyle?: boolean }) => T & { destroy(): void };

export function createAwsClients(env: Env, defaultRegion?: string): AwsClients {
  const made = new Map<string, { destroy(): void }>();
  // A custom S3 endpoint (an emulator, MinIO, a VPC endpoint by IP) needs path-style addressing.
  const forcePathStyle = Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL);
  const get = <T>(name: string, ctor: Ctor<T>, region?: string): T => {
    const key = `${name}:${region ?? defaultRegion ?? ''}`;
    let client = made.get(key) as T | undefined;
    if (!client) {
      // Our own retry loops (visible in the machine or in the services) decide about retries:
      // SDK retries on top would multiply attempts and stretch every deadline.
      client = new ctor({ region: region ?? defaultRegion, maxAttempts: 1, ...(name === 's3' ? { forcePathStyle } : {}) });
      made.set(key, client as { destroy(): void });
    }
    return client;
  };
  return {
    ssm: (region) => get('ssm', SSMClient, region),
    sqs: (region) => get('sqs', SQSClient, region),
    ec2: (region) => get('ec2', EC2Client, region),
    s3: (region) => get('s3', S3Client, region),
    logs: (region) => get('logs', CloudWatchLogsClient, region),
    destroy: () => {
      for (const client of made.values()) client.destroy();
      made.clear();
    },
  };
}
