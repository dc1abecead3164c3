/**
 * The job gets no instance credentials: the runner's uid cannot reach the instance metadata
 * service, where the instance role's credentials are (169.254.169.254, `[fd00:ec2::254]`, and
 * `AWS_EC2_METADATA_SERVICE_ENDPOINT` when set). IMDSv2's hop limit of 1 stops containers,
 * not processes on the host.
 *
 * Mechanism: an owner match in the host firewall, set up before run.sh (and config.sh) starts
 * and never removed (the instance ends with the job). nftables first — the default firewall of
 * Amazon Linux 2023 and Ubuntu, one atomic transaction in a table of the agent's own
 * (`inet runs_fleet_agent`, chain `job_imds`, an `output` hook) — else iptables/ip6tables
 * (`-m owner --uid-owner`). Why not the unit's `IPAddressDeny=`: it would cut the agent off IMDS
 * too (spot notices, identity), and a per-job systemd scope needs the agent to drive systemd
 * over D-Bus; the owner match needs neither and works the same under systemd or not.
 * The agent itself (root) keeps its access.
 *
 * No mechanism available means no job: the caller fails closed unless the operator opted out
 * (RUNS_FLEET_JOB_IMDS=allow).
 */
import { execa } from 'execa';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export const NFT_TABLE = 'runs_fleet_agent';
export const NFT_CHAIN = 'job_imds';
export const NFT_FORWARD_CHAIN = 'job_imds_forward';

export interface BlockTarget {
  address: string;
  family: 4 | 6;
  /** A TCP port, for an endpoint shared with other services (a loopback IMDS); undefined = the whole address. */
  port?: number;
}

/** The real IMDS addresses, and the configured endpoint's (a name resolved to its addresses). */
export async function imdsTargets(endpoint: string | undefined): Promise<BlockTarget[]> {
  const targets: BlockTarget[] = [
    { address: '169.254.169.254', family: 4 },
    { address: 'fd00:ec2::254', family: 6 },
  ];
  if (endpoint) {
    const url = new URL(endpoint);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const addresses = isIP(host) ? [{ address: host, family: isIP(host) as 4 | 6 }] : await lookup(host, { all: true });
    for (const { address, family } of addresses) {
      if (targets.some((t) => t.address === address && t.port === undefined)) continue;
      targets.push({ address, family: family as 4 | 6, port });
    }
  }
  return targets;
}

export type FirewallMechanism = 'nft' | 'iptables';

export interface FirewallDeps {
  run(file: string, args: string[], input?: string): Promise<{ exitCode: number; stdout: string; stderr: string }>;
}

const realDeps: FirewallDeps = {
  run: async (file, args, input) => {
    const result = await execa(file, args, { input, reject: false, timeout: 15_000, cleanup: false, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, extendEnv: false });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
  },
};

const comment = (uid: number, t: BlockTarget, tcp = false) => `runs-fleet uid ${uid} ${t.address}${t.port ? ` port ${t.port}` : ''}${tcp ? ' tcp' : ''}`;

/**
 * The rules for one target, each with the comment that finds it again. A whole address gets a
 * TCP reset, inserted at the chain's head, and a reject for all else: rejected with ICMP alone, a
 * connect() fails only when its SYN is sent again a second later (the error arrives while
 * connect() holds the socket), which made every probe, and every attempt of the job's own, take
 * a second.
 */
function nftRules(uid: number, t: BlockTarget): { comment: string; rule: string }[] {
  const daddr = t.family === 6 ? `ip6 daddr ${t.address}` : `ip daddr ${t.address}`;
  const rule = (verb: 'add' | 'insert', match: string, verdict: string, tcp = false) => {
    const note = comment(uid, t, tcp);
    return { comment: note, rule: `${verb} rule inet ${NFT_TABLE} ${NFT_CHAIN} meta skuid ${uid} ${daddr}${match} counter ${verdict} comment "${note}"` };
  };
  if (t.port) return [rule('add', ` tcp dport ${t.port}`, 'reject with tcp reset')];
  return [rule('insert', ' meta l4proto tcp', 'reject with tcp reset', true), rule('add', '', 'reject')];
}

/**
 * Refuse `uid` every target, with nftables else iptables; idempotent (a rule already there is
 * not added twice). Throws, naming what is missing, when neither mechanism works.
 */
export async function blockForUid(uid: number, targets: BlockTarget[], deps: FirewallDeps = realDeps): Promise<FirewallMechanism> {
  if (!Number.isInteger(uid) || uid <= 0) throw new Error(`refusing to firewall uid ${uid}: only an unprivileged runner user is blocked`);
  const failures: string[] = [];
  const nft = await deps.run('nft', ['--version']).catch(() => undefined);
  if (nft && nft.exitCode === 0) {
    // Also a forward hook: nothing forwarded (a bridged container) reaches the real IMDS either.
    const setup = [
      `add table inet ${NFT_TABLE}`,
      `add chain inet ${NFT_TABLE} ${NFT_CHAIN} { type filter hook output priority 0 ; policy accept ; }`,
      `add chain inet ${NFT_TABLE} ${NFT_FORWARD_CHAIN} { type filter hook forward priority 0 ; policy accept ; }`,
      `flush chain inet ${NFT_TABLE} ${NFT_FORWARD_CHAIN}`,
      `add rule inet ${NFT_TABLE} ${NFT_FORWARD_CHAIN} ip daddr 169.254.169.254 counter drop`,
      `add rule inet ${NFT_TABLE} ${NFT_FORWARD_CHAIN} ip6 daddr fd00:ec2::254 counter drop`,
      '',
    ].join('\n');
    const created = await deps.run('nft', ['-f', '-'], setup);
    if (created.exitCode === 0) {
      const listed = await deps.run('nft', ['list', 'chain', 'inet', NFT_TABLE, NFT_CHAIN]);
      const missing = targets.flatMap((t) => nftRules(uid, t)).filter((r) => !listed.stdout.includes(`"${r.comment}"`));
      if (missing.length === 0) return 'nft';
      const added = await deps.run('nft', ['-f', '-'], `${missing.map((r) => r.rule).join('\n')}\n`);
      if (added.exitCode === 0) return 'nft';
      failures.push(`nft: ${added.stderr.trim() || `exit ${added.exitCode}`}`);
    } else failures.push(`nft: ${created.stderr.trim() || `exit ${created.exitCode}`}`);
  } else failures.push('nft: not installed');

  for (const family of [4, 6] as const) {
    const tool = family === 4 ? 'iptables' : 'ip6tables';
    for (const t of targets.filter((x) => x.family === family)) {
      const rule = ['-m', 'owner', '--uid-owner', String(uid), '-d', t.address, ...(t.port ? ['-p', 'tcp', '--dport', String(t.port)] : []), '-j', 'REJECT', ...(t.port ? ['--reject-with', 'tcp-reset'] : [])];
      const check = await deps.run(tool, ['-C', 'OUTPUT', ...rule]).catch(() => undefined);
      if (check?.exitCode === 0) continue;
      // First in the chain: an ACCEPT a hardened baseline put earlier must not win over it.
      const add = await deps.run(tool, ['-I', 'OUTPUT', '1', ...rule]).catch(() => undefined);
      if (add?.exitCode !== 0) {
        // IPv6 may be off entirely on the instance: then there is nothing to reach either.
        if (family === 6 && add?.stderr && /not supported|can't initialize|Address family not supported/i.test(add.stderr)) continue;
        failures.push(`${tool}: ${add?.stderr.trim() || 'not installed'}`);
        throw new Error(`cannot keep the job off the instance metadata service: ${failures.join('; ')}`);
      }
    }
  }
  return 'iptables';
}

export interface ProbeUser {
  uid: number;
  gid: number;
  setpriv?: string;
}

/**
 * Check, as the runner user, that the block holds: a TCP connection to each target (the real
 * IMDS on port 80) must fail. Connected = the block does not hold (another rule accepted it
 * first, a firewall the agent does not know): throws, and the job does not run.
 */
export async function probeBlocked(user: ProbeUser, targets: BlockTarget[], deps: FirewallDeps = realDeps): Promise<void> {
  if (!user.setpriv) return; // no way to act as the runner here; the rules stand alone
  const setpriv = user.setpriv;
  // All at once: a TCP connect the rules reject fails only on the SYN's first retransmission
  // (the ICMP error comes back while connect() still holds the socket: a soft error), ~1 s
  // each, which one after the other was 2 of the 2.2 s between the runner installed and run.sh.
  const results = await Promise.all(
    targets.map((t) =>
      deps
        .run(setpriv, ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', '--', 'timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${t.address}/${t.port ?? 80}`])
        .catch(() => undefined),
    ),
  );
  const reached = targets.findIndex((_, i) => results[i]?.exitCode === 0);
  if (reached !== -1) {
    const t = targets[reached]!;
    throw new Error(`the runner user still reaches ${t.address}:${t.port ?? 80} after the firewall rules were set: another rule lets it through`);
  }
}
