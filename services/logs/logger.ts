/**
 * The agent's own log: JSON lines on stdout (journald keeps them), every line
 * redacted of known secrets, and each line also handed to the log shipper so
 * CloudWatch shows the whole instance's story.
 */
import pino, { type Logger } from 'pino';
import type { SecretVault } from '../secrets.js';

export type { Logger };

export interface LogSink {
  /** A line the agent logged (already redacted), with the time it was written. */
  agentLine(line: string, timestampMs: number): void;
}

export interface LoggerOptions {
  vault: SecretVault;
  /** Where lines go besides stdout (the log shipper); settable after creation. */
  sink?: { current?: LogSink };
  write?: (line: string) => void;
  level?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const destination = {
    write(raw: string) {
      const line = options.vault.redact(raw);
      write(line);
      options.sink?.current?.agentLine(line.replace(/\n$/, ''), Date.now());
    },
  };
  return pino(
    {
      level: options.level ?? process.env.RUNS_FLEET_LOG_LEVEL ?? 'info',
      base: undefined,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
