/**
 * A PutLogEvents command whose body is the batch's JSON as the lane already holds it
 * (`putLogEventsBody`), not the SDK's serialization of decoded events: the serializer is
 * handed the call without its events (cheap), then the body is swapped in before signing.
 * The command's `input.logEvents` decodes the batch only if something reads it (the SDK's
 * own serializer, a test's mock). Should the SDK ever serialize CloudWatch Logs otherwise
 * than as AWS JSON, the swap refuses, the call is serialized the SDK's way instead, and
 * this stays with that from then on (`onFallback` says so once).
 */
import { PutLogEventsCommand, type PutLogEventsCommandInput } from '@aws-sdk/client-cloudwatch-logs';
import { putLogEventsBody } from './events.js';
import type { LogBatch } from './lane.js';

class NotAwsJson extends Error {}

export class LeanPutLogEvents {
  /** False once the SDK's request turned out not to be AWS JSON. */
  private enabled = true;
  /**
   * The request body's memory, reused from call to call: the shipper has one call in flight at a
   * time (its pump), and a body is not read after its response came. A new 1 MiB body per call
   * waits for a full GC before its memory is free (most of a log flood's peak RSS, with the blocks).
   */
  private scratch: Buffer | undefined;

  constructor(private readonly onFallback: () => void) {}

  command(logGroupName: string, logStreamName: string, batch: LogBatch): PutLogEventsCommand {
    const input = { logGroupName, logStreamName } as PutLogEventsCommandInput;
    Object.defineProperty(input, 'logEvents', {
      enumerable: true,
      get: () => batch.entries.map((e) => ({ timestamp: e.ts, message: e.msg })),
    });
    const command = new PutLogEventsCommand(input);
    if (!this.enabled) return command;
    let lean = true;
    command.middlewareStack.add(
      (next) => async (args) => {
        try {
          return await next({ ...args, input: { logGroupName, logStreamName, logEvents: [] } });
        } catch (error) {
          if (!(error instanceof NotAwsJson)) throw error;
          lean = false;
          if (this.enabled) {
            this.enabled = false;
            this.onFallback();
          }
          return next(args);
        }
      },
      { step: 'serialize', priority: 'high', name: 'runsFleetLeanPutLogEvents' },
    );
    command.middlewareStack.add(
      (next) => async (args) => {
        if (!lean) return next(args);
        const request = args.request as { headers?: Record<string, string>; body?: unknown } | undefined;
        const type = request?.headers?.['content-type'] ?? request?.headers?.['Content-Type'];
        if (!request?.headers || !/^application\/x-amz-json-1\.[01]\b/.test(type ?? '')) throw new NotAwsJson();
        const body = putLogEventsBody(logGroupName, logStreamName, batch.json, this.scratch);
        if (body.buffer !== this.scratch?.buffer) this.scratch = Buffer.from(body.buffer, 0, body.buffer.byteLength);
        request.body = body;
        batch.sentAsBody = true;
        for (const name of Object.keys(request.headers)) if (name.toLowerCase() === 'content-length') delete request.headers[name];
        request.headers['content-length'] = String(body.byteLength);
        return next(args);
      },
      { step: 'serialize', priority: 'low', name: 'runsFleetPutLogEventsBody' },
    );
    return command;
  }
}
