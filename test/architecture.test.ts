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
});
