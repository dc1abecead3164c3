/**
 * The runner's output: byte chunks → lines (any chunking, CRLF, multi-byte characters,
 * very long lines) and lines → meaning (the lines actions/runner prints).
 */
import { describe, it, expect } from '@jest/globals';
import { LineRedactor } from '../services/logs/line-redactor.js';
import { fatalRunnerLine, parseRunnerLine } from '../services/runner/output.js';
import { SecretVault } from '../services/secrets.js';

interface Piece {
  line: string;
  continued: boolean;
}

function split(chunks: (string | Buffer)[], maxChars?: number): Piece[] {
  const out: Piece[] = [];
  const splitter = new LineRedactor(new SecretVault(), (line, continued) => out.push({ line, continued }), { maxLineChars: maxChars });
  for (const c of chunks) splitter.push(c);
  splitter.end();
  return out;
}
const lines = (chunks: (string | Buffer)[]) => split(chunks).map((p) => p.line);

describe('splitting the runner output into lines (LineRedactor, no secrets)', () => {
  it('splits on LF and keeps empty lines', () => {
    expect(lines(['a\nb\n\nc\n'])).toEqual(['a', 'b', '', 'c']);
  });

  it('joins a line split across chunks, at every possible cut', () => {
    const text = '√ Connected to GitHub\n2025-01-01 12:00:00Z: Listening for Jobs\n';
    const bytes = Buffer.from(text);
    for (let i = 0; i <= bytes.length; i++) {
      expect(lines([bytes.subarray(0, i), bytes.subarray(i)])).toEqual([
        '√ Connected to GitHub',
        '2025-01-01 12:00:00Z: Listening for Jobs',
      ]);
    }
  });

  it('one byte at a time, including a multi-byte character split across chunks', () => {
    const bytes = Buffer.from('héllo √ wörld\r\n€\n');
    expect(lines([...bytes].map((b) => Buffer.from([b])))).toEqual(['héllo √ wörld', '€']);
  });

  it('strips CRLF, also when CR and LF arrive in different chunks; a lone CR stays', () => {
    expect(lines(['a\r\nb\r', '\nc\rd\n'])).toEqual(['a', 'b', 'c\rd']);
  });

  it('emits a last line without newline at end(), and nothing for an empty stream', () => {
    expect(lines(['a\nlast'])).toEqual(['a', 'last']);
    expect(lines([])).toEqual([]);
    expect(lines(['a\n'])).toEqual(['a']);
  });
});

describe('parseRunnerLine', () => {
  it('recognises the lines actions/runner prints', () => {
    expect(parseRunnerLine('√ Connected to GitHub')).toEqual({ kind: 'connected' });
    expect(parseRunnerLine('2025-01-02 03:04:05Z: Listening for Jobs')).toEqual({
      kind: 'listening',
      at: '2025-01-02T03:04:05.000Z',
    });
    expect(parseRunnerLine('2025-01-02 03:04:05Z: Running job: build (ubuntu, 20)')).toEqual({
      kind: 'job-started',
      jobName: 'build (ubuntu, 20)',
      at: '2025-01-02T03:04:05.000Z',
    });
    expect(parseRunnerLine('2025-01-02 03:04:09Z: Job build (ubuntu, 20) completed with result: Succeeded')).toEqual({
      kind: 'job-completed',
      jobName: 'build (ubuntu, 20)',
      result: 'Succeeded',
      at: '2025-01-02T03:04:09.000Z',
    });
  });

  it('knows every result', () => {
    for (const result of ['Succeeded', 'SucceededWithIssues', 'Failed', 'Canceled', 'Skipped', 'Abandoned']) {
      expect(parseRunnerLine(`2025-01-02 03:04:09Z: Job test completed with result: ${result}`)).toMatchObject({
        kind: 'job-completed',
        jobName: 'test',
        result,
      });
    }
    expect(parseRunnerLine('2025-01-02 03:04:09Z: Job test completed with result: Exploded')).toBeUndefined();
  });

  it('job names may contain the separator words', () => {
    expect(parseRunnerLine('2025-01-02 03:04:09Z: Job Job x completed with result: y completed with result: Failed')).toMatchObject({
      jobName: 'Job x completed with result: y',
      result: 'Failed',
    });
    expect(parseRunnerLine('2025-01-02 03:04:05Z: Running job: Running job: twice')).toMatchObject({
      jobName: 'Running job: twice',
    });
  });

  it('tolerates surrounding whitespace (CR left by a writer, trailing spaces)', () => {
    expect(parseRunnerLine('2025-01-02 03:04:05Z: Listening for Jobs \r')).toMatchObject({ kind: 'listening' });
    expect(parseRunnerLine('  √ Connected to GitHub  ')).toEqual({ kind: 'connected' });
  });

  it('ignores everything else, including look-alikes without the runner timestamp', () => {
    for (const line of [
      '',
      "Current runner version: '2.330.0'",
      'Running job: build',
      'Listening for Jobs',
      '2025-01-02 03:04:05: Listening for Jobs',
      '2025-01-02T03:04:05Z: Listening for Jobs',
      'echo "2025-01-02 03:04:05Z: Running job: fake"',
      'The runner has received a shutdown signal.',
      'x'.repeat(100_000),
    ]) {
      expect(parseRunnerLine(line)).toBeUndefined();
    }
  });
});

describe('lines after which the runner never gets its job (v2.336.0: Program.cs, MessageListener.cs, BrokerMessageListener.cs, Runner.cs)', () => {
  it.each([
    ['An error occurred: Runner version v2.329.0 is deprecated and cannot receive messages.', 'deprecated'],
    ['Runner listener exit with deprecated version exit code: 7.', 'deprecated'],
    ['A session for this runner already exists.', 'session-exists'],
    ['The runner no longer exists on the server. Please reconfigure the runner.', 'runner-gone'],
    ['The runner no longer exists on the server. Cleaning up local configuration.', 'runner-gone'],
    [
      'Failed to create a session. The runner registration has been deleted from the server, please re-configure. Runner registrations are automatically deleted for runners that have not connected to the service recently.',
      'registration-deleted',
    ],
    ['An error occurred: Not configured. Run config.sh to configure the runner.', 'error'],
    ['An error occured: Access denied. System:ServiceIdentity needs View permissions', 'error'], // before v2.333.0
  ])('%s → %s', (line, reason) => {
    expect(fatalRunnerLine(`${line}\r`)).toEqual({ kind: 'fatal', reason, line });
  });

  it.each([
    ['  A session for this runner already exists.', 'session-exists', 'A session for this runner already exists.'],
    ['\tThe runner no longer exists on the server.', 'runner-gone', 'The runner no longer exists on the server.'],
    ['an error occurred: Runner version v2.329.0 is deprecated and cannot receive messages.', 'deprecated', undefined],
    ['runner connect error: version v2.329.0 is deprecated', 'deprecated', undefined],
    ['\ufeffA session for this runner already exists.', 'session-exists', 'A session for this runner already exists.'], // a BOM: trim removes it
    ['\u00a0 The runner no longer exists on the server.', 'runner-gone', 'The runner no longer exists on the server.'],
  ])('after leading whitespace, and the first pattern in any case: %s → %s', (raw, reason, line) => {
    expect(fatalRunnerLine(raw)).toEqual({ kind: 'fatal', reason, line: line ?? raw });
  });

  it.each([
    "Warning: '--once' is going to be deprecated in the future, please consider using '--ephemeral' during runner registration.",
    'Runner connect error: The HTTP request timed out. Retrying until reconnected.',
    '2025-01-01 12:00:00Z: Listening for Jobs',
    'echo An error occurred: inside a step',
    // A job's display name is printed raw: it must not read as an error line.
    '2025-01-01 12:00:00Z: Running job: lint (node version 16 is deprecated)',
    '2025-01-01 12:00:00Z: Job check registration has been deleted completed with result: Succeeded',
    '2025-01-01 12:00:00Z: Running job: A session for this runner already exists.',
    '',
  ])('not fatal: %s', (line) => {
    expect(fatalRunnerLine(line)).toBeUndefined();
  });
});
