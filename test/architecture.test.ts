/**
 * How the code hangs together (issue: "the chart owns it"): imports point one way — bin → machines →
 * services, actors → services — with no cycle, and services know nothing of the machine.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import madge from 'madge';

/** Every .ts file under `dir`, recursively. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const importsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);

describe('the module graph', () => {
  it('has no import cycle (the same check as `npx madge --circular --extensions ts machines services actors bin`)', async () => {
    const graph = await madge(['machines', 'services', 'actors', 'bin'], { fileExtensions: ['ts'] });
    expect(Object.keys(graph.obj()).length).toBeGreaterThan(50); // it did resolve the .js specifiers to .ts files
    expect(graph.circular()).toEqual([]);
  });

  it('services import nothing from machines/, actors/ or bin/', () => {
    const files = sourceFiles('services');
    expect(files.length).toBeGreaterThan(30);
    const offending = files.flatMap((file) => importsOf(file).filter((spec) => /(^|\/)(machines|actors|bin)\//.test(spec)).map((spec) => `${file} → ${spec}`));
    expect(offending).toEqual([]);
  });

  it('services/ is split by subsystem, with only the shared base at its root', () => {
    const root = readdirSync('services').filter((name) => name.endsWith('.ts')).sort();
    expect(readdirSync('services').filter((name) => statSync(join('services', name)).isDirectory()).sort()).toEqual(['aws', 'install', 'logs', 'runner']);
    expect(root).toEqual(['disk.ts', 'domain.ts', 'errors.ts', 'resources.ts', 'retry.ts', 'safe-fs.ts', 'secrets.ts', 'settings.ts']);
  });

  it('no service keeps a retry loop or a timer that decides a state change: every timer and retry under services/ is on this list, with its reason', () => {
    // What each service may time or retry by itself. Everything else (a retry, a deadline that
    // ends a step) belongs to the chart: its named delays and attempt → backoff loops.
    const ALLOWED: Record<string, Record<string, string>> = {
      'services/retry.ts': { 'setTimeout(': 'sleep(): the wait the log shipper backs off with' },
      'services/aws/ssm-config.ts': { 'AbortSignal.timeout(': 'each SSM call has its own timeout: a hanging SSM is a failed poll, and the chart polls again' },
      'services/aws/telemetry.ts': { 'AbortSignal.timeout(': "one SendMessage attempt's own timeout, given by the chart (TELEMETRY_ATTEMPT_TIMEOUT_MS)" },
      'services/logs/runner-logs.ts': { 'AbortSignal.timeout(': 'the upload budget the chart passes in (runnerLogsBudgetMs), enforced inside the upload' },
      'services/runner/process.ts': { 'setTimeout(': 'after run.sh exited, how long its pipes may take to close; RUNNER_EXITED follows either way' },
      'services/install/runner-download.ts': { 'setInterval(': 'progress lines and the stall check of one download attempt (a stalled body fails the attempt; the chart decides on the next)' },
      'services/install/github-releases.ts': { 'setTimeout(': "one HTTP request's timeout (a failed attempt, classified)" },
      'services/logs/shipper.ts': {
        'setInterval(': 'the periodic batch send',
        'setTimeout(': "flush(timeoutMs): the deadline the chart's FLUSH_LOGS gives",
        'AbortSignal.timeout(': "one CloudWatch call's timeout",
        'sleep(': 'backoff between CloudWatch retries, bounded by MAX_CALL_ATTEMPTS and counted in `retries`',
        'for (let attempt': 'CreateLogStream retries, bounded by MAX_CALL_ATTEMPTS',
      },
    };
    const PATTERNS = ['setTimeout(', 'setInterval(', 'AbortSignal.timeout(', 'sleep(', 'for (let attempt', 'while (true)', 'retries:'];
    const found: Record<string, Set<string>> = {};
    for (const file of sourceFiles('services')) {
      const code = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      for (const pattern of PATTERNS) {
        const at = code.indexOf(pattern);
        // `sleep(` as a call, not `export function sleep(` itself.
        if (at >= 0 && !(pattern === 'sleep(' && file === 'services/retry.ts')) (found[file] ??= new Set()).add(pattern);
      }
    }
    const unlisted = Object.entries(found).flatMap(([file, patterns]) => [...patterns].filter((p) => !ALLOWED[file]?.[p]).map((p) => `${file}: ${p}`));
    expect(unlisted).toEqual([]);
    const stale = Object.entries(ALLOWED).flatMap(([file, patterns]) => Object.keys(patterns).filter((p) => !found[file]?.has(p)).map((p) => `${file}: ${p}`));
    expect(stale).toEqual([]); // the list says only what is there
  });
});
