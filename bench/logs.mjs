#!/usr/bin/env node
/**
 * Log-shipping benchmark (issue 5): runs bench/logs.ts — the real built agent, a fake job
 * printing 1,000,000 lines of 100 bytes, shipped to moto — through scripts/run-ts.mjs,
 * which bundles the TypeScript world harness with esbuild. Options are passed on; see
 * bench/logs.ts. Build the agent first (`node scripts/build.mjs`).
 *
 *   node bench/logs.mjs [--lines 1000000] [--rounds 2] [--no-double] [--no-sink]
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const result = spawnSync(process.execPath, ['scripts/run-ts.mjs', 'bench/logs.ts', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
