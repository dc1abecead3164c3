import { describe, expect, it } from '@jest/globals';
import { CloudWatchLogsClient, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineRedactor, parseAddMask } from '../services/logs/line-redactor.js';
import { LogShipper } from '../services/logs/shipper.js';
import { createLogger, LogRoute } from '../services/logs/logger.js';
import { SecretVault } from '../services/secrets.js';
import { prepareTelemetry } from '../services/aws/telemetry.js';

const SECRETS = {
  jit_config: 'eyJydW5uZXIiOiJqaXQtY29uZmlnLXNlY3JldCJ9LmFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6MDEyMzQ1Njc4OQ==',
  jit_token: 'AABBCCDDEEFFGG0011223344REGTOKEN',
  cache_token: 'ghs_cacheTokenSecretValue42',
};

function vaultWithSecrets(): SecretVault {
  const vault = new SecretVault();
  for (const [name, value] of Object.entries(SECRETS)) vault.set(name, value);
  return vault;
}

/** Feed `chunks` through a redactor; return what it hands on. */
function run(vault: SecretVault, chunks: (string | Buffer)[], maxLineChars?: number): { line: string; continued: boolean }[] {
  const out: { line: string; continued: boolean }[] = [];
  const redactor = new LineRedactor(vault, (line, continued) => out.push({ line, continued }), { maxLineChars });
  for (const c of chunks) redactor.push(c);
  redactor.end();
  return out;
}

function expectNoSecret(text: string, secrets: string[] = Object.values(SECRETS)): void {
  for (const s of secrets) expect(text).not.toContain(s);
}

describe('LineRedactor', () => {
  it.each(Object.entries(SECRETS))('redacts the %s when a job echoes it', (_name, secret) => {
    const out = run(vaultWithSecrets(), [`before\necho ${secret} and again ${secret}\nafter\n`]);
    expect(out.map((o) => o.line)).toEqual(['before', 'echo *** and again ***', 'after']);
  });

  it.each(Object.entries(SECRETS))('redacts the %s split across two output chunks, at every split point', (_name, secret) => {
    const text = `job says: ${secret} done\n`;
    for (let cut = 1; cut < text.length; cut++) {
      const out = run(vaultWithSecrets(), [Buffer.from(text.slice(0, cut)), Buffer.from(text.slice(cut))]);
      expect(out).toEqual([{ line: 'job says: *** done', continued: false }]);
    }
  });

  it('decodes UTF-8 split across chunks and strips CRLF; a last line without newline is still a line', () => {
    const bytes = Buffer.from('héllo wörld\r\nlast');
    const out = run(new SecretVault(), [bytes.subarray(0, 2), bytes.subarray(2, 9), bytes.subarray(9)]);
    expect(out.map((o) => o.line)).toEqual(['héllo wörld', 'last']);
  });

  it('hands a very long line on in pieces and still catches a secret crossing a piece boundary', () => {
    const vault = vaultWithSecrets();
    const secret = SECRETS.jit_config;
    const max = 100;
    for (let offset = 0; offset < 2 * max; offset += 3) {
      const line = `${'a'.repeat(offset)}${secret}${'b'.repeat(3 * max)}`;
      // Fed in small chunks, as a pipe would.
      const chunks = line.match(/.{1,17}/g)!.concat('\n');
      const out = run(vault, chunks, max);
      const joined = out.map((o) => o.line).join('');
      expectNoSecret(joined);
      expect(joined).toBe(`${'a'.repeat(offset)}***${'b'.repeat(3 * max)}`);
      expect(out.length).toBeGreaterThan(1);
      expect(out[0]!.continued).toBe(false);
      expect(out.slice(1).every((o) => o.continued)).toBe(true);
      for (const o of out) expect(o.line.length).toBeLessThanOrEqual(max);
    }
  });

  it('::add-mask::VALUE adds VALUE to the vault, and the raw line is never handed on', () => {
    const vault = new SecretVault();
    const out = run(vault, ['::add-mask::my-runtime-secret-1\n', 'echo my-runtime-secret-1\n', '  ::add-mask::second%0Aline-two-secret\n', 'line-two-secret\n']);
    expect(out.map((o) => o.line)).toEqual(['::add-mask::***', 'echo ***', '  ::add-mask::***', '***']);
    expectNoSecret(JSON.stringify(out), ['my-runtime-secret-1', 'line-two-secret']);
  });

  it('understands the older ##[add-mask] form and a mask split across chunks', () => {
    const vault = new SecretVault();
    const out = run(vault, ['##[add-ma', 'sk]older-format-secret\nprint older-format-', 'secret\n']);
    expect(out.map((o) => o.line)).toEqual(['##[add-mask]***', 'print ***']);
  });

  it('a mask command too long to hold is swallowed, not shipped', () => {
    const out = run(new SecretVault(), [`::add-mask::${'z'.repeat(500)}`, `${'z'.repeat(500)}\nnext\n`], 100);
    expect(out.map((o) => o.line)).toEqual(['::add-mask::***', 'next']);
  });

  it('parseAddMask follows the runner: leading spaces, properties, escapes; other commands are not masks', () => {
    expect(parseAddMask('::add-mask::a%25b%0Dc')).toEqual({ value: 'a%b\rc', dataStart: 12 });
    expect(parseAddMask('   ::add-mask foo=bar::val')?.value).toBe('val');
    expect(parseAddMask('::warning::add-mask me')).toBeUndefined();
    expect(parseAddMask('echo "::add-mask::x"')).toBeUndefined();
  });
});

describe('no secret reaches CloudWatch, the agent log or telemetry', () => {
  it('runner output through LineRedactor and agent log lines through the logger ship redacted', async () => {
    const spillDir = mkdtempSync(join(tmpdir(), 'redaction-test-'));
    const client = new CloudWatchLogsClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    const cw = mockClient(client);
    cw.on(CreateLogStreamCommand).resolves({});
    cw.on(PutLogEventsCommand).resolves({});
    try {
      const vault = vaultWithSecrets();
      const shipper = new LogShipper({ spillDir });
      const stdout: string[] = [];
      const route = new LogRoute();
      route.attach(shipper);
      const logger = createLogger({ vault, route, write: (l) => stdout.push(l) });
      await shipper.start({ client, logGroup: 'g', stream: 'i-1/1' });

      const redactor = new LineRedactor(vault, (line, continued) => route.runnerLine(line, Date.now(), continued), { maxLineChars: 64 });
      const output = Object.values(SECRETS).map((s) => `token=${s}\n`).join('') + `${'x'.repeat(60)}${SECRETS.jit_token}${'y'.repeat(80)}\n`;
      for (let i = 0; i < output.length; i += 7) redactor.push(Buffer.from(output.slice(i, i + 7)));
      redactor.end();
      logger.error({ err: `registration failed with ${SECRETS.jit_token}` }, `config ${SECRETS.jit_config}`);
      await shipper.flush(2_000);
      shipper.close();

      const shipped = JSON.stringify(cw.commandCalls(PutLogEventsCommand).map((c) => c.args[0].input));
      expect(shipped).toContain('***');
      expectNoSecret(shipped);
      expectNoSecret(stdout.join(''));
    } finally {
      cw.restore();
      rmSync(spillDir, { recursive: true, force: true });
    }
  });

  it('a telemetry error text is redacted before it is truncated and sent', () => {
    const vault = vaultWithSecrets();
    const error = `${'e'.repeat(4090)}${SECRETS.jit_token} then more`;
    const prepared = prepareTelemetry(
      {
        instance_id: 'i-0123456789abcdef0',
        job_id: '1',
        run_id: '2',
        status: 'failure',
        exit_code: 1,
        duration_seconds: 1,
        started_at: '2025-01-01T00:00:00.000Z',
        completed_at: '2025-01-01T00:00:01.000Z',
        error,
        interrupted_by: null,
        timings: { running: 1 },
        memory_warnings: 0,
      },
      vault,
    );
    expect(prepared.ok).toBe(true);
    if (!prepared.ok) return;
    expectNoSecret(prepared.body);
    // Not even a prefix of the secret survives at the truncation boundary.
    expect(prepared.body).not.toContain(SECRETS.jit_token.slice(0, 6));
  });
});
