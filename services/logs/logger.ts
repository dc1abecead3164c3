/**
 * The agent's own log: JSON lines on stdout (journald keeps them), every line
 * redacted of known secrets, and each line also handed on through a LogRoute to the
 * log shipper (which its actor attaches), so CloudWatch shows the whole instance's story.
 */
import pino, { type Logger } from 'pino';
import type { SecretVault } from '../secrets.js';

export type { Logger };

export interface LogSink {
  /** A line the agent logged (already redacted), with the time it was written. */
  agentLine(line: string, timestampMs: number): void;
}

/** Where the runner's output lines go besides the agent's stdout. */
export interface RunnerLineSink {
  runnerLine(line: string, timestampMs: number, continued?: boolean): void;
}

/**
 * The one way lines reach the log shipper: the logger (the agent's lines) and the runner
 * process (the job's) write here; the log shipper's actor attaches its shipper for as long
 * as it runs. Lines written before it attached are kept (bounded) and handed over when it
 * does, so the boot's first lines are not lost; lines after it detached go to stdout only.
 */
export class LogRoute implements LogSink, RunnerLineSink {
  /** Lines kept while nothing is attached; beyond this the oldest are dropped (and counted). */
  static readonly EARLY_LINES = 2_000;
  private sink: (LogSink & RunnerLineSink & { countDropped?(lines: number): void }) | undefined;
  private early: { runner: boolean; line: string; timestampMs: number; continued: boolean }[] = [];
  private earlyDropped = 0;

  agentLine(line: string, timestampMs: number): void {
    if (this.sink) this.sink.agentLine(line, timestampMs);
    else this.keep({ runner: false, line, timestampMs, continued: false });
  }

  runnerLine(line: string, timestampMs: number, continued = false): void {
    if (this.sink) this.sink.runnerLine(line, timestampMs, continued);
    else this.keep({ runner: true, line, timestampMs, continued });
  }

  attach(sink: LogSink & RunnerLineSink & { countDropped?(lines: number): void }): void {
    this.sink = sink;
    for (const e of this.early) e.runner ? sink.runnerLine(e.line, e.timestampMs, e.continued) : sink.agentLine(e.line, e.timestampMs);
    if (this.earlyDropped > 0) sink.countDropped?.(this.earlyDropped);
    this.early = [];
    this.earlyDropped = 0;
  }

  detach(sink: object): void {
    if (this.sink === sink) this.sink = undefined;
  }

  private keep(entry: { runner: boolean; line: string; timestampMs: number; continued: boolean }): void {
    if (this.early.length >= LogRoute.EARLY_LINES) {
      this.early.shift();
      this.earlyDropped += 1;
    }
    this.early.push(entry);
  }
}

export interface LoggerOptions {
  vault: SecretVault;
  /** Where lines go besides stdout: the route the log shipper's actor attaches to. */
  route?: LogSink;
  write?: (line: string) => void;
  level?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const destination = {
    write(raw: string) {
      const line = options.vault.redact(raw);
      write(line);
      options.route?.agentLine(line.replace(/\n$/, ''), Date.now());
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
