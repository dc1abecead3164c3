/**
 * Named errors. Each side effect wraps its failures in one of these (with `cause`),
 * and says whether trying again could help — the machine's retry loops read that.
 */
export class AgentError extends Error {
  /** True when the same call may succeed if tried again (throttling, 5xx, resets). */
  readonly retriable: boolean;
  constructor(message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
  }
}

export class IdentityError extends AgentError {}
export class RunnerConfigError extends AgentError {}
export class DownloadError extends AgentError {}
export class ChecksumMismatchError extends DownloadError {}
export class RegistrationError extends AgentError {}
export class TerminationError extends AgentError {}

/** A one-line description of any thrown value, for logs and telemetry. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** True for AWS SDK errors that are worth retrying (throttling, 5xx, network). */
export function isRetriableAwsError(error: unknown): boolean {
  const e = error as { $retryable?: unknown; $metadata?: { httpStatusCode?: number }; name?: string; code?: string };
  if (e?.$retryable) return true;
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  return /Throttl|TooManyRequests|RequestLimitExceeded|ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|TimeoutError/i.test(
    `${e?.name ?? ''} ${e?.code ?? ''}`,
  );
}
