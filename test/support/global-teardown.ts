import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * What the tests, run as root, leave on the machine: the agents added owner-match rules (a test
 * runner user → the fake IMDS's loopback port) to the agent's nftables table, and the runner users
 * exist. On an instance both live and die with the job; here they would outlive the run. Only this
 * checkout's are removed (test-user.ts: users `rfa-…-{worker}-{tag}`, tag = this checkout's path
 * hashed): another checkout may be testing at the same time. Self-contained: jest loads this file
 * outside its module mapper.
 */
export default async function globalTeardown(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const tag = createHash('sha256').update(process.cwd()).digest('hex').slice(0, 6);
  const users = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .filter(([name]) => name?.startsWith('rfa-') && name.endsWith(`-${tag}`))
    .map(([name, , uid]) => ({ name: name!, uid: Number(uid) }));
  const uids = new Set(users.map((u) => u.uid));
  for (const chain of ['job_imds']) {
    const listed = spawnSync('nft', ['-a', 'list', 'chain', 'inet', 'runs_fleet_agent', chain], { encoding: 'utf8' });
    if (listed.status !== 0) continue;
    let others = 0;
    for (const line of listed.stdout.split('\n')) {
      const m = /meta skuid (\d+) .*# handle (\d+)/.exec(line);
      if (!m) continue;
      if (uids.has(Number(m[1]))) spawnSync('nft', ['delete', 'rule', 'inet', 'runs_fleet_agent', chain, 'handle', m[2]!], { stdio: 'ignore' });
      else others++;
    }
    if (others === 0) spawnSync('nft', ['delete', 'table', 'inet', 'runs_fleet_agent'], { stdio: 'ignore' });
  }
  for (const { name } of users) spawnSync('userdel', ['--remove', name], { stdio: 'ignore' });
}
