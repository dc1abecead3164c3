/**
 * The runner's output: byte chunks → lines (any chunking, CRLF, multi-byte characters,
 * very long lines) and lines → meaning (the lines actions/runner prints).
 */
import { describe, it, expect } from '@jest/globals';
import { LineSplitter, MAX_LINE_BYTES, parseRunnerLine } from '../services/runner-output.js';

interface Piece {
  line: string;
  continued: boolean;
}

function split(chunks: (string | Buffer)[], maxBytes?: number): Piece[] {
  const out: Piece[] = [];
  const splitter = new LineSplitter((line, continued) => out.push({ line, continued }), maxBytes);
  for (const c of chunks) splitter.push(c);
  splitter.end();
  return out;
}
const lines = (chunks: (string | Buffer)[], maxBytes?: number) => split(chunks, maxBytes).map((p) => p.line);

describe('LineSplitter', () => {
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

  it('caps very long lines: pieces of at most maxBytes, the rest as continuation pieces', () => {
    const long = 'x'.repeat(25);
    expect(split([long + '\nnext\n'], 10)).toEqual([
      { line: 'x'.repeat(10), continued: false },
      { line: 'x'.repeat(10), continued: true },
      { line: 'x'.repeat(5), continued: true },
      { line: 'next', continued: false },
    ]);
    // Streamed in small chunks, the splitter never holds more than ~2 caps.
    const streamed = split([...long].concat(['\n']), 10);
    expect(streamed.map((p) => p.line).join('')).toBe(long);
    expect(streamed.every((p) => Buffer.byteLength(p.line) <= 10)).toBe(true);
    expect(streamed[0]!.continued).toBe(false);
    expect(streamed.slice(1).every((p) => p.continued)).toBe(true);
  });

  it('a line of exactly the cap, with CRLF split off, is one piece (no empty continuation)', () => {
    expect(split(['x'.repeat(10) + '\r', '\n'], 10)).toEqual([{ line: 'x'.repeat(10), continued: false }]);
    expect(split(['x'.repeat(20) + '\r\n'], 10)).toEqual([
      { line: 'x'.repeat(10), continued: false },
      { line: 'x'.repeat(10), continued: true },
    ]);
  });

  it('never cuts inside a UTF-8 character', () => {
    const text = '€'.repeat(10); // 3 bytes each
    const pieces = split([text + '\n'], 10);
    expect(pieces.map((p) => p.line).join('')).toBe(text);
    expect(pieces.every((p) => !p.line.includes('\uFFFD') && Buffer.byteLength(p.line) <= 10)).toBe(true);
  });

  it('a 3 MiB line at the default cap: 1 MiB pieces, nothing lost, then the next line', () => {
    const big = Buffer.alloc(3 * MAX_LINE_BYTES + 5, 'a');
    const chunks: Buffer[] = [];
    for (let i = 0; i < big.length; i += 65536) chunks.push(big.subarray(i, i + 65536));
    const pieces = split([...chunks, Buffer.from('\n2025-01-01 12:00:00Z: Listening for Jobs\n')]);
    expect(pieces.map((p) => p.line.length)).toEqual([MAX_LINE_BYTES, MAX_LINE_BYTES, MAX_LINE_BYTES, 5, 40]);
    expect(pieces.map((p) => p.continued)).toEqual([false, true, true, true, false]);
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
