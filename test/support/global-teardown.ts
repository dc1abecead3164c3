import { spawnSync } from 'node:child_process';

/**
 * The agents the tests ran as root added owner-match rules (the test runner user → the fake
 * IMDS's loopback port) to the agent's nftables table; on an instance it lives and dies with
 * the job, here it would outlive the run. Self-contained: jest loads this file outside its
 * module mapper.
 */
export default async function globalTeardown(): Promise<void> {
  if (process.getuid?.() === 0) spawnSync('nft', ['delete', 'table', 'inet', 'runs_fleet_agent'], { stdio: 'ignore' });
}
