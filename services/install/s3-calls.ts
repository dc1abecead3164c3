/**
 * The S3 commands the runner cache (s3-cache.ts) sends, in a module of their own that is
 * loaded on the cache's first call: a static import of `@aws-sdk/client-s3` anywhere in the
 * agent's start-up graph loads the whole S3 client at start (several MB of heap for the job's
 * whole life) even on the many instances without a cache bucket, which defeats the lazy
 * client factory (services/aws/clients.ts).
 */
import { GetObjectCommand, PutObjectCommand, type GetObjectCommandInput, type PutObjectCommandInput } from '@aws-sdk/client-s3';

export const getObject = (input: GetObjectCommandInput): GetObjectCommand => new GetObjectCommand(input);
export const putObject = (input: PutObjectCommandInput): PutObjectCommand => new PutObjectCommand(input);
