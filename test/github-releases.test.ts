/**
 * The Releases API client against the fake GitHub: version and checksum selection,
 * and the classification of every failure into retriable or terminal.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { DownloadError } from '../services/errors.js';
import {
  checksumFromReleaseBody,
  HttpDownloadError,
  openDownload,
  resolveRelease,
  retryAfter,
  runnerArch,
  type Fetch,
} from '../services/install/github-releases.js';
import { startFakeGitHub, type FakeGitHub } from './support/fake-github.js';
import { freePort } from './support/net.js';

const VERSION = '2.330.0';
const X64 = Buffer.from('x64 tarball bytes');
const ARM64 = Buffer.from('arm64 tarball bytes');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function rejection(promise: Promise<unknown>): Promise<HttpDownloadError & DownloadError> {
  try {
    await promise;
  } catch (error) {
    return error as HttpDownloadError;
  }
  throw new Error('expected a rejection');
}

describe('resolveRelease', () => {
  let github: FakeGitHub;
  beforeAll(async () => {
    github = await startFakeGitHub({ version: VERSION, tarballs: { x64: X64, arm64: ARM64 } });
  });
  afterAll(() => github.close());

  it('resolves latest to the version, asset URL and digest checksum of this architecture', async () => {
    const release = await resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'arm64' });

    expect(release).toMatchObject({
      version: VERSION,
      assetName: `actions-runner-linux-arm64-${VERSION}.tar.gz`,
      url: `${github.webUrl}/actions/runner/releases/download/v${VERSION}/actions-runner-linux-arm64-${VERSION}.tar.gz`,
      sha256: sha(ARM64),
      checksumSource: 'digest',
    });
    expect(github.requests.at(-1)).toEqual({ method: 'GET', path: '/api/repos/actions/runner/releases/latest' });
  });

  it('asks for tags/v{V} for a pinned version and sends the GitHub headers, no token', async () => {
    const seen: Headers[] = [];
    const spy: Fetch = (url, init) => {
      seen.push(new Headers(init?.headers));
      return fetch(url, init);
    };

    await resolveRelease({ apiUrl: github.apiUrl, version: VERSION, arch: 'x64', fetch: spy });

    expect(github.requests.at(-1)!.path).toBe(`/api/repos/actions/runner/releases/tags/v${VERSION}`);
    expect(seen[0]!.get('user-agent')).toBe('runs-fleet-agent');
    expect(seen[0]!.get('accept')).toBe('application/vnd.github+json');
    expect(seen[0]!.has('authorization')).toBe(false);
  });

  it('a 500 is retriable and names the URL', async () => {
    github.failNext(1, 500);

    const error = await rejection(resolveRelease({ apiUrl: github.apiUrl, version: VERSION, arch: 'x64' }));

    expect(error).toBeInstanceOf(DownloadError);
    expect(error.retriable).toBe(true);
    expect(error.status).toBe(500);
    expect(error.message).toContain(`${github.apiUrl}/repos/actions/runner/releases/tags/v${VERSION}`);
  });

  it('a 404 is terminal, naming the URL and the status', async () => {
    const error = await rejection(resolveRelease({ apiUrl: github.apiUrl, version: '9.9.9', arch: 'x64' }));

    expect(error.retriable).toBe(false);
    expect(error.status).toBe(404);
    expect(error.message).toContain(`${github.apiUrl}/repos/actions/runner/releases/tags/v9.9.9`);
    expect(error.message).toContain('404');
  });

  it('429 with Retry-After is retriable and keeps the wait', async () => {
    github.failNext(1, 429, { 'retry-after': '7' });

    const error = await rejection(resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'x64' }));

    expect(error.retriable).toBe(true);
    expect(error.retryAfterMs).toBe(7000);
    expect(error.message).toContain('rate limited');
  });

  it('403 with x-ratelimit-remaining: 0 is retriable (wait from x-ratelimit-reset); a plain 403 is terminal', async () => {
    const reset = Math.floor(Date.now() / 1000) + 120;
    github.failNext(1, 403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) });
    const limited = await rejection(resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'x64' }));
    github.failNext(1, 403);
    const forbidden = await rejection(resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'x64' }));

    expect(limited.retriable).toBe(true);
    expect(limited.retryAfterMs).toBeGreaterThan(100_000);
    expect(limited.retryAfterMs).toBeLessThanOrEqual(120_000);
    expect(forbidden.retriable).toBe(false);
    expect(forbidden.status).toBe(403);
  });

  it('a refused connection is retriable and says why', async () => {
    const port = await freePort();

    const error = await rejection(resolveRelease({ apiUrl: `http://127.0.0.1:${port}/api`, version: 'latest', arch: 'x64' }));

    expect(error.retriable).toBe(true);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('an API that does not answer in time is retriable', async () => {
    github.setHang(true);
    try {
      const error = await rejection(resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'x64', timeoutMs: 200 }));

      expect(error.retriable).toBe(true);
      expect(error.message).toContain('did not answer within 0.2 s');
    } finally {
      github.setHang(false);
    }
  });

  it('an aborted call is not retriable', async () => {
    github.setHang(true);
    try {
      const controller = new AbortController();
      const pending = rejection(resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'x64', signal: controller.signal }));
      controller.abort(new Error('SIGTERM'));
      const error = await pending;

      expect(error.retriable).toBe(false);
      expect(error.message).toContain('aborted');
    } finally {
      github.setHang(false);
    }
  });
});

describe('checksums from the release', () => {
  it('falls back to the release-body markers when assets have no digest', async () => {
    const github = await startFakeGitHub({ version: VERSION, tarballs: { x64: X64, arm64: ARM64 }, checksum: 'body' });
    try {
      const release = await resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'x64' });

      expect(release.sha256).toBe(sha(X64));
      expect(release.checksumSource).toBe('body');
    } finally {
      await github.close();
    }
  });

  it('refuses a release that gives no checksum at all (terminal)', async () => {
    const github = await startFakeGitHub({ version: VERSION, tarballs: { x64: X64 }, checksum: 'none' });
    try {
      const error = await rejection(resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'x64' }));

      expect(error).toBeInstanceOf(DownloadError);
      expect(error.retriable).toBe(false);
      expect(error.message).toContain('no SHA-256');
    } finally {
      await github.close();
    }
  });

  it('refuses a release without this architecture\'s asset (terminal)', async () => {
    const github = await startFakeGitHub({ version: VERSION, tarballs: { x64: X64 } });
    try {
      const error = await rejection(resolveRelease({ apiUrl: github.apiUrl, version: 'latest', arch: 'arm64' }));

      expect(error.retriable).toBe(false);
      expect(error.message).toContain(`actions-runner-linux-arm64-${VERSION}.tar.gz`);
    } finally {
      await github.close();
    }
  });

  it('reads the marker of the right architecture only', () => {
    const body = `- x <!-- BEGIN SHA linux-x64 -->${'a'.repeat(64)}<!-- END SHA linux-x64 -->\n- y <!-- BEGIN SHA linux-arm64 -->${'B'.repeat(64)}<!-- END SHA linux-arm64 -->`;

    expect(checksumFromReleaseBody(body, 'x64')).toBe('a'.repeat(64));
    expect(checksumFromReleaseBody(body, 'arm64')).toBe('b'.repeat(64));
    expect(checksumFromReleaseBody('no markers', 'x64')).toBeUndefined();
  });
});

describe('runnerArch and Retry-After parsing', () => {
  it('maps x64 and arm64 through; anything else is a DownloadError naming the arch', () => {
    expect(runnerArch('x64')).toBe('x64');
    expect(runnerArch('arm64')).toBe('arm64');
    expect(() => runnerArch('ia32')).toThrow(DownloadError);
    expect(() => runnerArch('s390x')).toThrow(/unsupported CPU architecture "s390x"/);
  });

  it('reads Retry-After as seconds or a date, else x-ratelimit-reset', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');

    expect(retryAfter(new Headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(retryAfter(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:10 GMT' }), now)).toBe(10_000);
    expect(retryAfter(new Headers({ 'x-ratelimit-reset': String(now / 1000 + 60) }), now)).toBe(60_000);
    expect(retryAfter(new Headers(), now)).toBeUndefined();
  });
});

describe('openDownload', () => {
  it('an abort between the headers and the install taking the body is not an uncaught exception', async () => {
    const github = await startFakeGitHub({ version: VERSION, tarballs: { x64: Buffer.alloc(256 * 1024, 1), arm64: ARM64 } });
    github.setThrottle(1_000);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const release = await resolveRelease({ apiUrl: github.apiUrl, version: VERSION, arch: 'x64' });
      const controller = new AbortController();
      const download = await openDownload(release.url, { signal: controller.signal });
      controller.abort(); // the prefetch stopped: nobody reads the body yet
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(uncaught).toEqual([]);
      expect(download.body.destroyed).toBe(true);
    } finally {
      process.off('uncaughtException', onUncaught);
      github.setThrottle(undefined);
      await github.close();
    }
  });
});
