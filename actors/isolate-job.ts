/**
 * registering, first step: keep the job off the instance metadata service — and so off the
 * instance role — before anything runs as the runner user (services/runner/imds-firewall.ts). Fails
 * closed: a block that cannot be set up is a boot failure, unless the operator opted out with
 * RUNS_FLEET_JOB_IMDS=allow. An agent that is not root runs the job as itself: nothing to
 * separate then (local use).
 */
import { fromPromise } from 'xstate';
import type { IsolateJobInput } from '../machines/actor-contracts.js';
import { RegistrationError } from '../services/errors.js';
import { execa } from 'execa';
import { blockForUid, imdsTargets, probeBlocked, type FirewallDeps } from '../services/runner/imds-firewall.js';
import type { Logger } from '../services/logs/logger.js';
import type { RunnerUserDeps } from '../services/runner/user.js';

/** Groups whose members are root in all but name. */
const ROOT_EQUIVALENT_GROUPS = ['docker', 'sudo', 'wheel', 'admin', 'lxd', 'libvirt'];

async function supplementaryGroups(user: string): Promise<string[]> {
  const result = await execa('id', ['-Gn', user], { reject: false, timeout: 5_000, cleanup: false });
  return result.exitCode === 0 ? String(result.stdout).trim().split(/\s+/) : [];
}

export interface IsolateJobDeps {
  logger: Logger;
  env?: Readonly<Record<string, string | undefined>>;
  user?: RunnerUserDeps;
  firewall?: FirewallDeps;
}

export function isolateJob(deps: IsolateJobDeps) {
  return fromPromise<{ imds: 'blocked' | 'allowed' | 'same-user'; mechanism?: string }, IsolateJobInput>(async ({ input }) => {
    const { settings, user } = input;
    if (settings.jobImds === 'allow') {
      deps.logger.warn('RUNS_FLEET_JOB_IMDS=allow: the job can reach the instance metadata service and use the instance role');
      return { imds: 'allowed' };
    }
    if (!user.switchUser) {
      deps.logger.info({ user: user.name }, 'the job runs as the agent itself: no separate uid to keep off IMDS');
      return { imds: 'same-user' };
    }
    const endpoint = (deps.env ?? process.env).AWS_EC2_METADATA_SERVICE_ENDPOINT?.trim() || undefined;
    try {
      const targets = await imdsTargets(endpoint);
      const mechanism = await blockForUid(user.uid, targets, deps.firewall);
      await probeBlocked(user, targets, deps.firewall);
      const groups = await supplementaryGroups(user.name);
      const rootEquivalent = groups.filter((g) => ROOT_EQUIVALENT_GROUPS.includes(g));
      if (rootEquivalent.length > 0) {
        // docker: `docker run --network host` is uid 0 in the host's network, which no owner match stops —
        // and `-v /:/host` is root outright. Nothing of the job's isolation holds for such a runner user.
        deps.logger.error(
          { user: user.name, groups: rootEquivalent },
          `the runner user is in ${rootEquivalent.join(', ')}: the job is effectively root and can reach IMDS through it; use rootless Docker, or accept the instance role being reachable`,
        );
      }
      deps.logger.info({ uid: user.uid, mechanism, targets: targets.map((t) => `${t.address}${t.port ? `:${t.port}` : ''}`) }, 'the job cannot reach the instance metadata service');
      return { imds: 'blocked', mechanism };
    } catch (error) {
      throw new RegistrationError(
        `${(error as Error).message} — install nftables (or iptables) in the AMI, or set RUNS_FLEET_JOB_IMDS=allow to run jobs with the instance role`,
        { cause: error },
      );
    }
  });
}
