/**
 * The runner lines' echo on stdout (services/logs/echo.ts): the same JSON lines as one
 * JSON.stringify per line, in order with the agent's own lines, batched, and bounded.
 */
import { describe, expect, it } from '@jest/globals';
import { StdoutEcho, BATCH_CHARS } from '../services/logs/echo.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('StdoutEcho', () => {
  it('writes what JSON.stringify would, field for field, for plain and escaped lines', async () => {
    const writes: string[] = [];
    const echo = new StdoutEcho({ write: (t) => writes.push(t), backlog: () => 0 });
    const lines: [string, number, 'stdout' | 'stderr'][] = [
      ['hello world', 1_700_000_000_123, 'stdout'],
      ['quote " backslash \\ tab \t é ✓ \u0001', 1_700_000_000_123, 'stderr'],
      ['', 1_700_000_000_124, 'stdout'],
    ];
    for (const [line, ts, stream] of lines) echo.runnerLine(line, ts, stream);
    await nextTurn();
    const expected = lines.map(([line, ts, stream]) => `${JSON.stringify({ level: 'info', time: new Date(ts).toISOString(), msg: 'runner', stream, line })}\n`).join('');
    expect(writes.join('')).toBe(expected);
    expect(writes).toHaveLength(1); // one write for the batch
  });

  it("keeps the agent's own lines in order with the runner lines waiting", () => {
    const writes: string[] = [];
    const echo = new StdoutEcho({ write: (t) => writes.push(t), backlog: () => 0 });
    echo.runnerLine('one', 1, 'stdout');
    echo.write('{"msg":"agent"}\n');
    echo.runnerLine('two', 2, 'stdout');
    echo.flush();
    expect(writes.join('').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { line?: string; msg: string }).line ?? 'agent')).toEqual(['one', 'agent', 'two']);
  });

  it('writes a batch as soon as it is full, without waiting for the turn to end', () => {
    const writes: string[] = [];
    const echo = new StdoutEcho({ write: (t) => writes.push(t), backlog: () => 0 });
    const line = 'x'.repeat(100);
    for (let i = 0; i < 2 * (BATCH_CHARS / 100); i++) echo.runnerLine(line, i, 'stdout');
    expect(writes.length).toBeGreaterThanOrEqual(1);
    expect(writes.every((w) => w.length <= BATCH_CHARS + 200)).toBe(true);
  });

  it('counts the lines it does not echo while stdout is behind, and echoes again once it caught up', async () => {
    const writes: string[] = [];
    let backlog = 2 * 1024 * 1024;
    const echo = new StdoutEcho({ write: (t) => writes.push(t), backlog: () => backlog });
    echo.runnerLine('lost', 1, 'stdout');
    backlog = 0;
    echo.runnerLine('kept', 2, 'stdout');
    await nextTurn();
    expect(echo.notEchoed).toBe(1);
    expect(writes.join('')).toContain('"line":"kept"');
    expect(writes.join('')).not.toContain('lost');
  });

  it('writes an ASCII batch as latin1 and a batch with any other character as UTF-8, with the same text', async () => {
    const writes: { text: string; encoding?: string }[] = [];
    const echo = new StdoutEcho({ write: (text, encoding) => writes.push({ text, encoding }), backlog: () => 0 });
    echo.runnerLine('plain', 1, 'stdout');
    echo.runnerLine('tab\there "quoted"', 1, 'stdout');
    await nextTurn();
    echo.runnerLine('plain again', 2, 'stdout');
    echo.runnerLine('caf\u00e9 \u2713', 2, 'stderr');
    await nextTurn();
    expect(writes.map((w) => w.encoding)).toEqual(['latin1', undefined]);
    expect(writes.map((w) => w.text.trim().split('\n').map((l) => (JSON.parse(l) as { line: string }).line))).toEqual([
      ['plain', 'tab\there "quoted"'],
      ['plain again', 'caf\u00e9 \u2713'],
    ]);
  });
});
