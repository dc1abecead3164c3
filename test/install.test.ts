/**
 * deploy/install.sh, run from an unpacked release into a temporary root (DESTDIR): the tree it
 * installs, modes, idempotence, an operator's agent.env kept, the unit enabled and never started,
 * and no host user, systemd or power state touched.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const UNIT = 'runs-fleet-agent.service';
const STUB_BINARY = '#!/bin/sh\necho 0.0.0-test\n';

let work: string;
let release: string;
let stubs: string;
let pathCalls: string;
let systemctlLog: string;
let recorder: string;

/** Files, directories and symlinks under root: mode, owner and content hash — a comparable picture. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      const st = lstatSync(path);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      const rel = relative(root, path);
      if (st.isDirectory()) {
        out[`${rel}/`] = `dir ${mode} ${st.uid}:${st.gid}`;
        walk(path);
      } else {
        const hash = st.isFile() ? createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16) : 'link';
        out[rel] = `file ${mode} ${st.uid}:${st.gid} ${hash}`;
      }
    }
  };
  walk(root);
  return out;
}

function install(destdir: string, extraEnv: Record<string, string | undefined> = {}) {
  const env: Record<string, string> = {
    PATH: `${stubs}:${process.env.PATH}`,
    HOME: work,
    STUB_LOG: pathCalls,
    RECORD_LOG: systemctlLog,
    DESTDIR: destdir,
    SYSTEMCTL: recorder,
  };
  for (const [k, v] of Object.entries(extraEnv)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return spawnSync('sh', [join(release, 'install.sh')], { env, encoding: 'utf8', timeout: 30_000 });
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'rfa-install-'));
  // An unpacked release, as scripts/release.mjs lays it out (a stand-in binary: install.sh only copies it).
  release = join(work, 'runs-fleet-agent-0.0.0-test-linux-x64');
  mkdirSync(release);
  copyFileSync(resolve('deploy/install.sh'), join(release, 'install.sh'));
  copyFileSync(resolve('deploy/systemd/runs-fleet-agent.service'), join(release, UNIT));
  copyFileSync(resolve('deploy/agent.env.example'), join(release, 'agent.env.example'));
  writeFileSync(join(release, 'runs-fleet-agent'), STUB_BINARY, { mode: 0o755 });
  chmodSync(join(release, 'install.sh'), 0o755);

  // SYSTEMCTL: records its arguments. PATH stubs: record any call to a host-changing command.
  systemctlLog = join(work, 'systemctl.log');
  recorder = join(work, 'record-systemctl');
  writeFileSync(recorder, '#!/bin/sh\necho "$*" >> "$RECORD_LOG"\n', { mode: 0o755 });
  pathCalls = join(work, 'path-calls.log');
  stubs = join(work, 'stubs');
  mkdirSync(stubs);
  for (const name of ['systemctl', 'useradd', 'groupadd', 'poweroff', 'shutdown', 'halt', 'reboot']) {
    writeFileSync(join(stubs, name), `#!/bin/sh\necho "${name} $*" >> "$STUB_LOG"\nexit 0\n`, { mode: 0o755 });
  }
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('install.sh into a staging DESTDIR (no etc/passwd)', () => {
  let dest: string;
  let first: Record<string, string>;
  const bin = () => join(dest, 'usr/local/bin/runs-fleet-agent');
  const envFile = () => join(dest, 'etc/runs-fleet-agent/agent.env');

  beforeAll(() => {
    dest = join(work, 'root');
    mkdirSync(dest);
  });

  it('installs the binary, the unit, agent.env and the runner dir with the right modes', () => {
    const result = install(dest);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);

    expect(readFileSync(bin(), 'utf8')).toBe(STUB_BINARY);
    expect(lstatSync(bin()).mode & 0o777).toBe(0o755);
    const unit = join(dest, 'etc/systemd/system', UNIT);
    expect(readFileSync(unit, 'utf8')).toBe(readFileSync('deploy/systemd/runs-fleet-agent.service', 'utf8'));
    expect(lstatSync(unit).mode & 0o777).toBe(0o644);
    expect(readFileSync(envFile(), 'utf8')).toBe(readFileSync('deploy/agent.env.example', 'utf8'));
    expect(lstatSync(envFile()).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(dest, 'opt/actions-runner')).isDirectory()).toBe(true);

    first = snapshot(dest);
    expect(Object.keys(first).sort()).toEqual(
      [
        'etc/',
        'etc/runs-fleet-agent/',
        'etc/runs-fleet-agent/agent.env',
        'etc/runs-fleet-agent/agent.env.example',
        'etc/systemd/',
        'etc/systemd/system/',
        `etc/systemd/system/${UNIT}`,
        'opt/',
        'opt/actions-runner/',
        'usr/',
        'usr/local/',
        'usr/local/bin/',
        'usr/local/bin/runs-fleet-agent',
      ].sort(),
    );
  });

  it('leaves the host users alone and says what the target still needs', () => {
    const out = install(dest).stdout;
    expect(out).toMatch(/pending: useradd --system --create-home .* runner/);
    expect(out).toMatch(/pending: chown runner: \/opt\/actions-runner/);
    expect(lines(pathCalls)).toEqual([]);
  });

  it('is idempotent and never overwrites an operator-edited agent.env', () => {
    writeFileSync(envFile(), 'RUNS_FLEET_LOG_GROUP=/ops/edited\n');
    const result = install(dest);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('kept');
    expect(readFileSync(envFile(), 'utf8')).toBe('RUNS_FLEET_LOG_GROUP=/ops/edited\n');
    expect(lstatSync(envFile()).mode & 0o777).toBe(0o600);

    const again = snapshot(dest);
    const { ['etc/runs-fleet-agent/agent.env']: editedEnv, ...rest } = again;
    const { ['etc/runs-fleet-agent/agent.env']: originalEnv, ...firstRest } = first;
    expect(rest).toEqual(firstRest); // same tree, modes and contents; no temporary files left
    expect(editedEnv).not.toEqual(originalEnv);
  });

  it('enables the unit through SYSTEMCTL on every run and never starts it', () => {
    const calls = lines(systemctlLog);
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(new Set(calls)).toEqual(new Set([`enable ${UNIT}`])); // no daemon-reload into a DESTDIR, no start
    expect(calls.some((c) => /\b(start|restart|reload-or-restart|isolate|poweroff|halt|reboot)\b/.test(c))).toBe(false);
    expect(lines(pathCalls)).toEqual([]);
  });

  it('with DESTDIR and no SYSTEMCTL, skips enabling and says so (the host systemd is not touched)', () => {
    const before = lines(systemctlLog).length;
    const result = install(dest, { SYSTEMCTL: undefined });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/skipped: systemctl enable runs-fleet-agent\.service/);
    expect(lines(systemctlLog)).toHaveLength(before);
    expect(lines(pathCalls)).toEqual([]);
  });
});

describe('install.sh refuses what it cannot do', () => {
  it('fails clearly, installing nothing, when run outside a release directory', () => {
    const lonely = join(work, 'lonely');
    mkdirSync(lonely);
    copyFileSync(resolve('deploy/install.sh'), join(lonely, 'install.sh'));
    const dest = join(work, 'root-nothing');
    mkdirSync(dest);
    const result = spawnSync('sh', [join(lonely, 'install.sh')], {
      env: { PATH: `${stubs}:${process.env.PATH}`, STUB_LOG: pathCalls, DESTDIR: dest, SYSTEMCTL: recorder, RECORD_LOG: systemctlLog },
      encoding: 'utf8',
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/runs-fleet-agent is missing: run install\.sh from an unpacked release directory/);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('rejects a bad runner user name', () => {
    const dest = join(work, 'root-baduser');
    mkdirSync(dest);
    const result = install(dest, { RUNS_FLEET_RUNNER_USER: 'x;rm -rf /' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/RUNS_FLEET_RUNNER_USER=.* is not a valid user name/);
    expect(readdirSync(dest)).toEqual([]);
  });
});

// An image root (a mounted AMI volume, a chroot build): useradd --root creates the user in the
// image's own passwd, never the host's. Needs root and the real useradd.
const realUseradd = ['/usr/sbin/useradd', '/sbin/useradd'].find((p) => existsSync(p));
const canUseradd = process.getuid?.() === 0 && realUseradd !== undefined;
(canUseradd ? describe : describe.skip)('install.sh into an image root (DESTDIR with etc/passwd)', () => {
  it('creates the runner user inside the image, owns the runner dir by its uid, twice without change', () => {
    const img = join(work, 'image');
    mkdirSync(join(img, 'etc'), { recursive: true });
    writeFileSync(join(img, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(img, 'etc/group'), 'root:x:0:\n');
    writeFileSync(join(img, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o600 });
    writeFileSync(join(img, 'etc/gshadow'), 'root:*::\n', { mode: 0o600 });
    const hostPasswd = readFileSync('/etc/passwd', 'utf8');

    // The real useradd this time: PATH without the stubs.
    const env = { PATH: process.env.PATH, SYSTEMCTL: recorder, RECORD_LOG: systemctlLog, RUNS_FLEET_RUNNER_USER: 'ci-runner' };
    const run = () => install(img, env);
    const first = run();
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/created system user ci-runner/);
    const entry = readFileSync(join(img, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('ci-runner:'));
    expect(entry).toBeDefined();
    const [, , uid, gid, , home] = entry!.split(':');
    const dir = lstatSync(join(img, 'opt/actions-runner'));
    expect(`${dir.uid}:${dir.gid}`).toBe(`${uid}:${gid}`);
    expect(lstatSync(join(img, home!)).isDirectory()).toBe(true);
    const tree = snapshot(img);

    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).toMatch(/user ci-runner exists/);
    expect(snapshot(img)).toEqual(tree);
    expect(readFileSync('/etc/passwd', 'utf8')).toBe(hostPasswd);
  });
});
