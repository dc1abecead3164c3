/**
 * `make bench`: every benchmark, each reporting ratios against a baseline it runs in the
 * same invocation. Output: key=value lines per benchmark.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const benches: [string, string[]][] = [
  ['download (issue 3)', ['bench/download.mjs']],
  ['log shipping (issue 5)', ['scripts/run-ts.mjs', 'bench/logs.ts']],
  ['start-up and idle RSS (issue 7)', ['scripts/run-ts.mjs', 'bench/startup.ts']],
  ['time to run.sh with the config written after start (issue 10)', ['scripts/run-ts.mjs', 'bench/standby.ts']],
  ['time to run.sh with a runner-sized tarball, against a local tar -xzf (issue 15)', ['scripts/run-ts.mjs', 'bench/runsh.ts']],
];

let failed = 0;
for (const [name, args] of benches) {
  if (!existsSync(args[args.length - 1]!)) {
    console.log(`\n== ${name}: ${args[args.length - 1]} missing, skipped`);
    continue;
  }
  console.log(`\n== ${name}`);
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (result.status !== 0) failed += 1;
}
process.exit(failed > 0 ? 1 : 0);
