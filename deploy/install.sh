#!/bin/sh
# install.sh — put the runs-fleet agent on this machine (or into an image root), from an
# unpacked release directory (runs-fleet-agent-{version}-linux-{arch}/, where this file lives).
#
#   sudo ./install.sh                      # on the AMI build host / instance
#   DESTDIR=/mnt/image ./install.sh        # into another root (packaging, chroot AMI builds, tests)
#
# What it does — idempotent: running it again gives the same tree and no error:
#   /usr/local/bin/runs-fleet-agent                 the binary (0755, replaced atomically)
#   /etc/systemd/system/runs-fleet-agent.service    the unit (0644)
#   /etc/runs-fleet-agent/agent.env                 from agent.env.example, ONLY if absent (0600):
#                                                   an operator's file is never overwritten
#   /etc/runs-fleet-agent/agent.env.example         always refreshed, for reference (0644)
#   the runner user (RUNS_FLEET_RUNNER_USER, default runner): useradd --system --create-home
#   /opt/actions-runner (RUNS_FLEET_RUNNER_DIR)     owned by that user (0755)
#   systemctl enable runs-fleet-agent.service       enabled for the next boot
# It never starts the unit (starting it runs a job and ends with a poweroff) and never
# powers anything off. deploy/user-data.sh starts it, on instances meant to run a job.
#
# Variables:
#   DESTDIR                 install root, default empty (= this machine).
#   SYSTEMCTL               the systemctl command, default `systemctl`; tests stub it.
#                           With DESTDIR set and SYSTEMCTL unset, enabling is SKIPPED (said so):
#                           the host's systemd must not learn about an image's unit. To enable
#                           inside an image root, pass SYSTEMCTL="systemctl --root=$DESTDIR".
#   RUNS_FLEET_RUNNER_USER  runner account, default runner.
#   RUNS_FLEET_RUNNER_DIR   runner directory, default /opt/actions-runner.
#
# The runner user with DESTDIR set: the host's users are never touched.
#   - $DESTDIR/etc/passwd exists (a real image root): `useradd --root "$DESTDIR"` creates the
#     user there, and /opt/actions-runner is chowned to the uid/gid found in $DESTDIR/etc/passwd.
#   - otherwise (a staging tree): nothing is created; the useradd and chown the target needs
#     are printed as "pending:" lines.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
DESTDIR=${DESTDIR:-}
RUNNER_USER=${RUNS_FLEET_RUNNER_USER:-runner}
RUNNER_DIR=${RUNS_FLEET_RUNNER_DIR:-/opt/actions-runner}
UNIT=runs-fleet-agent.service

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

case $RUNNER_USER in
  '' | -* | *[!A-Za-z0-9._-]*) die "RUNS_FLEET_RUNNER_USER=\"$RUNNER_USER\" is not a valid user name" ;;
esac
case $RUNNER_DIR in
  /*) ;;
  *) die "RUNS_FLEET_RUNNER_DIR=\"$RUNNER_DIR\" must be an absolute path" ;;
esac
if [ -n "$DESTDIR" ]; then
  case $DESTDIR in
    /*) ;;
    *) DESTDIR=$(pwd)/$DESTDIR ;;
  esac
  DESTDIR=${DESTDIR%/}
fi
for f in runs-fleet-agent "$UNIT" agent.env.example; do
  [ -f "$here/$f" ] || die "$here/$f is missing: run install.sh from an unpacked release directory"
done

# put SRC DST MODE: copy through a temporary file and rename, so a running binary is
# replaced rather than rewritten in place ("Text file busy"), and a reader never sees half a file.
put() {
  tmp="$2.install.$$"
  cp "$1" "$tmp"
  chmod "$3" "$tmp"
  mv -f "$tmp" "$2"
}

install -d -m 0755 "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/runs-fleet-agent"
put "$here/runs-fleet-agent" "$DESTDIR/usr/local/bin/runs-fleet-agent" 0755
put "$here/$UNIT" "$DESTDIR/etc/systemd/system/$UNIT" 0644
put "$here/agent.env.example" "$DESTDIR/etc/runs-fleet-agent/agent.env.example" 0644
say "installed $DESTDIR/usr/local/bin/runs-fleet-agent and $DESTDIR/etc/systemd/system/$UNIT"

env_file=$DESTDIR/etc/runs-fleet-agent/agent.env
if [ -e "$env_file" ]; then
  say "kept $env_file (never overwritten)"
else
  (umask 077 && cp "$here/agent.env.example" "$env_file.install.$$")
  chmod 0600 "$env_file.install.$$"
  mv -f "$env_file.install.$$" "$env_file"
  say "created $env_file from agent.env.example (0600): edit it for this fleet"
fi

# The runner user, then its directory. owner= is "uid:gid" when known, empty when pending.
owner=
home=/home/$RUNNER_USER
shell=/bin/sh
[ -x "$DESTDIR/bin/bash" ] && shell=/bin/bash
if [ -z "$DESTDIR" ]; then
  if id -u "$RUNNER_USER" >/dev/null 2>&1; then
    say "user $RUNNER_USER exists"
  else
    useradd --system --create-home --home-dir "$home" --user-group --shell "$shell" "$RUNNER_USER"
    say "created system user $RUNNER_USER (home $home)"
  fi
  owner="$(id -u "$RUNNER_USER"):$(id -g "$RUNNER_USER")"
elif [ -f "$DESTDIR/etc/passwd" ]; then
  if ! grep -q "^$RUNNER_USER:" "$DESTDIR/etc/passwd"; then
    useradd --root "$DESTDIR" --system --create-home --home-dir "$home" --user-group --shell "$shell" "$RUNNER_USER"
    say "created system user $RUNNER_USER in $DESTDIR/etc/passwd"
  else
    say "user $RUNNER_USER exists in $DESTDIR/etc/passwd"
  fi
  owner=$(awk -F: -v u="$RUNNER_USER" '$1 == u { print $3 ":" $4; exit }' "$DESTDIR/etc/passwd")
  [ -n "$owner" ] || die "user $RUNNER_USER not found in $DESTDIR/etc/passwd after useradd"
else
  say "pending: useradd --system --create-home --home-dir $home --user-group --shell $shell $RUNNER_USER" \
    "(no $DESTDIR/etc/passwd: the host's users are not touched)"
fi

install -d -m 0755 "$DESTDIR$RUNNER_DIR"
if [ -n "$owner" ]; then
  chown "$owner" "$DESTDIR$RUNNER_DIR"
  say "$DESTDIR$RUNNER_DIR owned by $RUNNER_USER ($owner)"
else
  say "pending: chown $RUNNER_USER: $RUNNER_DIR"
fi

# Enable (never start) the unit.
if [ -n "${SYSTEMCTL:-}" ]; then
  if [ -z "$DESTDIR" ]; then $SYSTEMCTL daemon-reload; fi
  $SYSTEMCTL enable "$UNIT"
  say "enabled $UNIT (not started)"
elif [ -z "$DESTDIR" ]; then
  command -v systemctl >/dev/null 2>&1 || die "systemctl not found: the agent needs systemd (or set SYSTEMCTL)"
  systemctl daemon-reload
  systemctl enable "$UNIT"
  say "enabled $UNIT (not started)"
else
  say "skipped: systemctl enable $UNIT (DESTDIR set, no SYSTEMCTL; use SYSTEMCTL=\"systemctl --root=$DESTDIR\" to enable in an image)"
fi
say "done; nothing was started (the unit runs one job, then powers the machine off)"
