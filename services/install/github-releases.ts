/**
 * actions/runner releases on GitHub (or GitHub Enterprise Server): which version,
 * which asset, which SHA-256 — and the HTTP side of downloading it.
 *
 * Failures are classified once, here, for the machine's retry loop:
 * - retriable: connection refused/reset/timeout, 5xx, 429, 403 with
 *   `x-ratelimit-remaining: 0` (the server's wait, when it gives one, is kept as `retryAfterMs`);
 * - terminal: 404 and every other 4xx (the message names the URL and the status),
 *   a release without the asset, a release without a checksum.
 * No token is sent: the agent only reads public releases.
 */
import { Readable } from 'node:stream';
import { DownloadError } from '../errors.js';

export type RunnerArch = 'x64' | 'arm64';

export const USER_AGENT = 'runs-fleet-agent';
/** Time allowed for one API call (connect + headers + JSON body). */
export const API_TIMEOUT_MS = 30_000;
/** Time allowed for the download's response headers (the body has its own stall detection). */
export const DOWNLOAD_HEADERS_TIMEOUT_MS = 60_000;

export type Fetch = typeof fetch;

/** A failed HTTP exchange, with what the retry loop needs to know about it. */
export class HttpDownloadError extends DownloadError {
  readonly url: string;
  /** HTTP status; undefined when no response came back (network failure). */
  readonly status?: number;
  /** How long the server asked us to wait (Retry-After or x-ratelimit-reset), in ms. */
  readonly retryAfterMs?: number;
  constructor(
    message: string,
    options: { url: string; status?: number; retryAfterMs?: number; retriable: boolean; cause?: unknown },
  ) {
    super(message, { cause: options.cause, retriable: options.retriable });
    this.url = options.url;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Node's `process.arch` → the runner's asset architecture; anything else is a DownloadError naming it. */
export function runnerArch(nodeArch: string = process.arch): RunnerArch {
  if (nodeArch === 'x64' || nodeArch === 'arm64') return nodeArch;
  throw new DownloadError(
    `unsupported CPU architecture "${nodeArch}": actions/runner for Linux is published for x64 and arm64 only`,
  );
}

/** `actions-runner-linux-{arch}-{version}.tar.gz` */
export function runnerAssetName(arch: RunnerArch, version: string): string {
  return `actions-runner-linux-${arch}-${version}.tar.gz`;
}

export interface RunnerRelease {
  /** Without the leading `v`, e.g. `2.330.0`. */
  version: string;
  assetName: string;
  /** The asset's `browser_download_url`. */
  url: string;
  /** Lower-case hex. */
  sha256: string;
  /** Where the checksum came from. */
  checksumSource: 'digest' | 'body';
  /** Asset size in bytes, when the API gave it. */
  size?: number;
}

export interface ResolveReleaseOptions {
  /** `RUNS_FLEET_GITHUB_API_URL`, e.g. `https://api.github.com` or `https://ghes.example.com/api/v3`. */
  apiUrl: string;
  /** `latest` or a version like `2.330.0` (a leading `v` is accepted). */
  version: string;
  arch: RunnerArch;
  signal?: AbortSignal;
  fetch?: Fetch;
  timeoutMs?: number;
}

interface ReleaseJson {
  tag_name?: unknown;
  body?: unknown;
  assets?: { name?: unknown; browser_download_url?: unknown; digest?: unknown; size?: unknown }[];
}

const HEX64 = /^[0-9a-f]{64}$/;

/** GET the release (`/releases/latest` or `/releases/tags/v{V}`) and pick this architecture's asset and checksum. */
export async function resolveRelease(options: ResolveReleaseOptions): Promise<RunnerRelease> {
  const base = options.apiUrl.replace(/\/+$/, '');
  const wanted = options.version.replace(/^v/, '');
  const url =
    wanted === 'latest'
      ? `${base}/repos/actions/runner/releases/latest`
      : `${base}/repos/actions/runner/releases/tags/v${encodeURIComponent(wanted)}`;

  const { response, done } = await request(url, {
    fetch: options.fetch,
    signal: options.signal,
    timeoutMs: options.timeoutMs ?? API_TIMEOUT_MS,
    accept: 'application/vnd.github+json',
    what: 'GitHub API',
  });
  let json: ReleaseJson;
  try {
    json = (await response.json()) as ReleaseJson;
  } catch (error) {
    throw bodyFailure(url, error, options.signal, 'GitHub API');
  } finally {
    done();
  }

  const tag = typeof json.tag_name === 'string' ? json.tag_name : undefined;
  const version = tag?.replace(/^v/, '');
  if (!version || !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new DownloadError(`GitHub API ${url} returned a release without a usable tag_name (${JSON.stringify(tag)})`);
  }
  if (wanted !== 'latest' && version !== wanted) {
    throw new DownloadError(`GitHub API ${url} returned release ${version}, not the requested ${wanted}`);
  }

  const assetName = runnerAssetName(options.arch, version);
  const asset = (Array.isArray(json.assets) ? json.assets : []).find((a) => a?.name === assetName);
  if (!asset || typeof asset.browser_download_url !== 'string') {
    throw new DownloadError(`actions/runner release v${version} has no asset ${assetName} (${url})`);
  }

  const fromDigest = typeof asset.digest === 'string' ? /^sha256:([0-9a-fA-F]{64})$/.exec(asset.digest)?.[1] : undefined;
  const fromBody = typeof json.body === 'string' ? checksumFromReleaseBody(json.body, options.arch) : undefined;
  const sha256 = (fromDigest ?? fromBody)?.toLowerCase();
  if (!sha256) {
    throw new DownloadError(
      `actions/runner release v${version} gives no SHA-256 for ${assetName} (neither an asset digest nor a ` +
        `<!-- BEGIN SHA linux-${options.arch} --> marker in the release notes): refusing to install an unverified runner`,
    );
  }
  return {
    version,
    assetName,
    url: asset.browser_download_url,
    sha256,
    checksumSource: fromDigest ? 'digest' : 'body',
    size: typeof asset.size === 'number' ? asset.size : undefined,
  };
}

/** The checksum between `<!-- BEGIN SHA linux-{arch} -->` and `<!-- END SHA linux-{arch} -->`, if any. */
export function checksumFromReleaseBody(body: string, arch: RunnerArch): string | undefined {
  const marker = new RegExp(`<!--\\s*BEGIN SHA linux-${arch}\\s*-->\\s*([0-9a-fA-F]{64})\\s*<!--\\s*END SHA linux-${arch}\\s*-->`);
  const hex = marker.exec(body)?.[1]?.toLowerCase();
  return hex && HEX64.test(hex) ? hex : undefined;
}

export interface OpenedDownload {
  body: Readable;
  /** From Content-Length, when the server sent it. */
  size?: number;
}

/** GET a release asset (redirects followed) and return its body as a Node stream; HTTP failures classified. */
export async function openDownload(
  url: string,
  options: { signal?: AbortSignal; fetch?: Fetch; timeoutMs?: number } = {},
): Promise<OpenedDownload> {
  const { response } = await request(url, {
    fetch: options.fetch,
    signal: options.signal,
    timeoutMs: options.timeoutMs ?? DOWNLOAD_HEADERS_TIMEOUT_MS,
    headersOnlyTimeout: true,
    accept: 'application/octet-stream',
    what: 'runner download',
  });
  if (!response.body) throw new HttpDownloadError(`runner download ${url} answered without a body`, { url, retriable: true });
  const length = Number(response.headers.get('content-length'));
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  // Until the install's pipeline takes the body (a few awaits later), an abort errors it with
  // nobody listening: that must not become an uncaught exception (a PANIC). The pipeline still
  // sees the error, and the install's own listeners record it.
  body.on('error', () => {});
  return {
    body,
    size: Number.isFinite(length) && length > 0 ? length : undefined,
  };
}

interface RequestOptions {
  fetch?: Fetch;
  signal?: AbortSignal;
  timeoutMs: number;
  /** The timeout covers only the wait for the response headers, not the body. */
  headersOnlyTimeout?: boolean;
  accept: string;
  what: string;
}

async function request(url: string, options: RequestOptions): Promise<{ response: Response; done: () => void }> {
  const doFetch = options.fetch ?? fetch;
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(new HttpDownloadError(`${options.what} ${url} did not answer within ${options.timeoutMs / 1000} s`, { url, retriable: true })),
    options.timeoutMs,
  );
  timer.unref?.();
  const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
  let response: Response;
  try {
    response = await doFetch(url, {
      signal,
      redirect: 'follow',
      headers: { 'User-Agent': USER_AGENT, Accept: options.accept, 'X-GitHub-Api-Version': '2022-11-28' },
    });
  } catch (error) {
    clearTimeout(timer);
    throw requestFailure(url, error, options, timeout.signal);
  }
  if (options.headersOnlyTimeout) clearTimeout(timer);
  if (!response.ok) {
    clearTimeout(timer);
    await response.body?.cancel().catch(() => undefined);
    throw statusFailure(url, response, options.what);
  }
  // For API calls the timer keeps running while the caller reads the (small) JSON body.
  return { response, done: () => clearTimeout(timer) };
}

function requestFailure(url: string, error: unknown, options: RequestOptions, timeoutSignal: AbortSignal): Error {
  if (options.signal?.aborted) return abortError(url, options.signal, options.what);
  if (timeoutSignal.aborted && timeoutSignal.reason instanceof HttpDownloadError) return timeoutSignal.reason;
  return new HttpDownloadError(`${options.what} ${url} failed: ${networkReason(error)}`, { url, retriable: true, cause: error });
}

/** A failure while reading a response body (reset, truncated, aborted). */
export function bodyFailure(url: string, error: unknown, signal: AbortSignal | undefined, what: string): Error {
  if (signal?.aborted) return abortError(url, signal, what);
  if (error instanceof SyntaxError) {
    return new HttpDownloadError(`${what} ${url} answered with invalid JSON: ${error.message}`, { url, retriable: true, cause: error });
  }
  return new HttpDownloadError(`${what} ${url} failed while reading the body: ${networkReason(error)}`, {
    url,
    retriable: true,
    cause: error,
  });
}

function abortError(url: string, signal: AbortSignal, what: string): DownloadError {
  // Aborted by one of our own watchdogs (stall, timeout): its error says what happened.
  if (signal.reason instanceof DownloadError) return signal.reason;
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
  return new DownloadError(`${what} ${url} aborted: ${reason}`, { cause: signal.reason, retriable: false });
}

/** `ECONNRESET`, `ECONNREFUSED`, ... from undici's `TypeError: fetch failed` (its `cause`), else the message. */
export function networkReason(error: unknown): string {
  const seen = new Set<unknown>();
  let current: unknown = error;
  const parts: string[] = [];
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const e = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof e.code === 'string') return `${e.code}${typeof e.message === 'string' && e.message ? ` (${e.message})` : ''}`;
    if (typeof e.message === 'string' && e.message) parts.push(e.message);
    current = e.cause;
  }
  return parts.join(': ') || String(error);
}

function statusFailure(url: string, response: Response, what: string): HttpDownloadError {
  const { status } = response;
  const text = `${status}${response.statusText ? ` ${response.statusText}` : ''}`;
  const rateLimited = status === 429 || (status === 403 && response.headers.get('x-ratelimit-remaining') === '0');
  if (rateLimited || status >= 500) {
    const retryAfterMs = retryAfter(response.headers);
    const hint = rateLimited ? ' (rate limited' + (retryAfterMs !== undefined ? `, retry after ${Math.ceil(retryAfterMs / 1000)} s)` : ')') : '';
    return new HttpDownloadError(`${what} ${url} answered ${text}${hint}`, { url, status, retryAfterMs, retriable: true });
  }
  const hint = status === 404 ? ': no such release or asset' : '';
  return new HttpDownloadError(`${what} ${url} answered ${text}${hint}`, { url, status, retriable: false });
}

/** `Retry-After` (seconds or an HTTP date), else `x-ratelimit-reset` (epoch seconds), as a wait in ms. */
export function retryAfter(headers: Headers, now: number = Date.now()): number | undefined {
  const after = headers.get('retry-after')?.trim();
  if (after) {
    if (/^\d+(\.\d+)?$/.test(after)) return Math.round(Number(after) * 1000);
    const date = Date.parse(after);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  const reset = headers.get('x-ratelimit-reset')?.trim();
  if (reset && /^\d+$/.test(reset)) return Math.max(0, Number(reset) * 1000 - now);
  return undefined;
}
