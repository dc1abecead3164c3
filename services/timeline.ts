/** A plain-text timeline of the lifecycle: each state, its start offset, its duration, a bar. */
export interface TimelineEntry {
  state: string;
  startMs: number;
  endMs: number;
}

const WIDTH = 40;

export function renderTimeline(entries: TimelineEntry[]): string {
  if (entries.length === 0) return '';
  const origin = entries[0]!.startMs;
  const total = Math.max(1, entries[entries.length - 1]!.endMs - origin);
  const name = Math.max(...entries.map((e) => e.state.length));
  const lines = entries.map((e) => {
    const start = Math.round(((e.startMs - origin) / total) * WIDTH);
    const length = Math.max(1, Math.round(((e.endMs - e.startMs) / total) * WIDTH));
    const bar = ' '.repeat(Math.min(start, WIDTH - 1)) + '█'.repeat(Math.min(length, WIDTH - Math.min(start, WIDTH - 1)));
    const offset = `+${((e.startMs - origin) / 1000).toFixed(2)}s`.padStart(9);
    const duration = `${((e.endMs - e.startMs) / 1000).toFixed(2)}s`.padStart(8);
    return `  ${e.state.padEnd(name)} ${offset} ${duration} |${bar.padEnd(WIDTH)}|`;
  });
  return [`  ${'state'.padEnd(name)} ${'start'.padStart(9)} ${'took'.padStart(8)}`, ...lines, `  total ${(total / 1000).toFixed(2)}s`].join('\n');
}
