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

const escapeXml = (text: string) => text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);

/** The same timeline as an SVG bar chart (make demo writes out/demo-timeline.svg). */
export function renderTimelineSvg(entries: TimelineEntry[], title: string): string {
  const width = 760;
  const left = 120;
  const right = 90;
  const row = 26;
  const top = 44;
  const height = top + entries.length * row + 34;
  const origin = entries[0]?.startMs ?? 0;
  const total = Math.max(1, (entries[entries.length - 1]?.endMs ?? origin) - origin);
  const scale = (ms: number) => left + (ms / total) * (width - left - right);
  const bars = entries.map((e, i) => {
    const y = top + i * row;
    const x = scale(e.startMs - origin);
    const w = Math.max(2, scale(e.endMs - origin) - x);
    return [
      `<text x="${left - 8}" y="${y + 16}" text-anchor="end">${escapeXml(e.state)}</text>`,
      `<rect x="${x.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="16" rx="3" fill="hsl(${(i * 47) % 360},55%,55%)"/>`,
      `<text x="${(x + w + 6).toFixed(1)}" y="${y + 16}" class="d">${((e.endMs - e.startMs) / 1000).toFixed(2)} s</text>`,
    ].join('');
  });
  const axis = `<line x1="${left}" y1="${height - 28}" x2="${width - right}" y2="${height - 28}" stroke="#999"/>` +
    `<text x="${left}" y="${height - 10}" class="d">0 s</text>` +
    `<text x="${width - right}" y="${height - 10}" class="d" text-anchor="end">${(total / 1000).toFixed(2)} s</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="Helvetica,Arial,sans-serif" font-size="13">
<style>.d{fill:#555;font-size:11px}</style>
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="24" font-weight="bold">${escapeXml(title)}</text>
${bars.join('\n')}
${axis}
</svg>
`;
}
