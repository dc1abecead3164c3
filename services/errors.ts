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
export class TelemetryError extends AgentError {}

/** A one-line description of any thrown value, for logs and telemetry. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * The one classifier of AWS failures (every service uses it; the chart's retry guards read the
 * `retriable` it puts on the error): throttling, 5xx, timeouts and requests that never got an
 * answer (reset, refused, DNS) may succeed if tried again; other 4xx and programming errors not.
 */
export function isRetriableAwsError(error: unknown): boolean {
  const e = error as { $retryable?: unknown; $metadata?: { httpStatusCode?: number }; name?: string; code?: string } | undefined;
  if (e?.$retryable) return true;
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429 || /Throttl|TooManyRequests|RequestLimitExceeded/i.test(`${e?.name ?? ''}`);
  if (/Throttl|TooManyRequests|RequestLimitExceeded|ServiceUnavailable|ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|TimeoutError|AbortError/i.test(`${e?.name ?? ''} ${e?.code ?? ''}`)) {
    return true;
  }
  if (error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError) return false;
  // No HTTP status at all: the request never got an answer.
  return error instanceof Error;
}
