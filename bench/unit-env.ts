/** The systemd unit's `Environment=` assignments, for a bench to run the agent as the unit does (none without a unit). */
import { existsSync, readFileSync } from 'node:fs';

export const UNIT_FILE = 'deploy/systemd/runs-fleet-agent.service';

export function unitEnvironment(file: string | undefined): Record<string, string> {
  if (!file || !existsSync(file)) return {};
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('Environment=')) continue;
    for (const m of line.slice('Environment='.length).matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)) env[m[1]!] = m[2] ?? m[3]!;
  }
  return env;
}
