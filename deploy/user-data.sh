#!/bin/bash
# user-data.sh — EC2 launch-template user data for fleets that do NOT bake the agent into the
# AMI: download the release `make publish` put in S3, verify its SHA-256, install it
# (install.sh: binary, unit, agent.env, runner user) and start the unit, which runs one job
# and ends the instance. Output lands in /var/log/cloud-init-output.log.
#
# Settings — put them in the template before this script's body (Terraform templatefile,
# CloudFormation Fn::Sub, or `export NAME=value` lines above), or edit the defaults below:
#   BUCKET     (required) the bucket `make publish BUCKET=...` wrote to
#   PREFIX     key prefix, default agent
#   VERSION    e.g. 0.1.0; default: the content of s3://BUCKET/PREFIX/latest
# Optional:
#   S3_GET     command line that copies one object: `$S3_GET s3://BUCKET/KEY LOCAL_FILE`
#              (split on spaces). Default: `aws s3 cp` when the AWS CLI is installed, else curl
#              with SigV4 (curl >= 7.75) and credentials from AWS_ACCESS_KEY_ID/... or the
#              instance role (IMDSv2). The built-ins s3_get_awscli and s3_get_curl can be named.
#              The curl path is exercised against moto only, which does not check signatures:
#              on an AMI without the AWS CLI, prefer installing it or naming your own S3_GET.
#   S3_REGION  bucket region for the curl path (default AWS_REGION, else the instance's region)
#   SHA256     the tarball's SHA-256, pinned in the launch template: then the checksum comes from
#              the template, not from the same S3 prefix as the tarball (whoever can replace the
#              tarball there can replace its .sha256 too). Recommended.
#   ON_FAILURE command run (sh -c) when the install fails. Default: poweroff — with the launch
#              template's InstanceInitiatedShutdownBehavior=terminate, a failed bootstrap ends the
#              instance instead of leaving it idle and billed. ON_FAILURE=none opts out (debugging
#              a bootstrap). With DESTDIR set (an install into a directory, tests) the default is
#              none: only a real install may end the machine it runs on.
#   RETRY_SECONDS  backoff unit between the 3 download attempts (default 2: waits 2 s, 4 s)
#   SYSTEMCTL  systemctl command (default systemctl); tests stub it.
#   DESTDIR    install root (tests). With DESTDIR set and no SYSTEMCTL, nothing is enabled
#              or started.
#   AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, AWS_EC2_METADATA_SERVICE_ENDPOINT: the standard
#              overrides (tests point them at moto and a fake IMDS).
set -euo pipefail

BUCKET=${BUCKET:-}
PREFIX=${PREFIX:-agent}
VERSION=${VERSION:-}
S3_GET=${S3_GET:-}
SHA256=${SHA256:-}
if [ -n "${DESTDIR:-}" ]; then ON_FAILURE=${ON_FAILURE:-none}; else ON_FAILURE=${ON_FAILURE:-poweroff}; fi
RETRY_SECONDS=${RETRY_SECONDS:-2}
DESTDIR=${DESTDIR:-}
IMDS=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
IMDS=${IMDS%/}
UNIT=runs-fleet-agent.service

log() { printf 'runs-fleet user-data: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

workdir=
on_exit() {
  local code=$?
  [ -n "$workdir" ] && rm -rf "$workdir"
  if [ "$code" -ne 0 ]; then
    log "FAILED (exit $code): the agent is not installed/started"
    if [ -n "$ON_FAILURE" ] && [ "$ON_FAILURE" != none ]; then
      log "running ON_FAILURE: $ON_FAILURE"
      sh -c "$ON_FAILURE" || log "ON_FAILURE exited $?"
    fi
  fi
  exit "$code"
}
trap on_exit EXIT

# --- S3 access -----------------------------------------------------------------------------
imds_token() {
  curl -fsS --max-time 5 --retry 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$IMDS/latest/api/token"
}
imds_get() { # PATH TOKEN
  curl -fsS --max-time 5 --retry 3 -H "X-aws-ec2-metadata-token: $2" "$IMDS/latest/$1"
}
json_field() { # NAME JSON — a flat string field of the IMDS credentials document
  printf '%s' "$2" | tr -d '\n' | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p"
}

s3_get_awscli() { # s3://BUCKET/KEY FILE
  aws s3 cp --only-show-errors "$1" "$2"
}

s3_get_curl() { # s3://BUCKET/KEY FILE
  local rest=${1#s3://} bucket key region endpoint url ak sk token='' itoken role doc
  bucket=${rest%%/*}
  key=${rest#*/}
  ak=${AWS_ACCESS_KEY_ID:-}
  sk=${AWS_SECRET_ACCESS_KEY:-}
  token=${AWS_SESSION_TOKEN:-}
  region=${S3_REGION:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}
  if [ -z "$ak" ] || [ -z "$region" ]; then
    itoken=$(imds_token) || die "cannot reach IMDS at $IMDS for credentials/region (set S3_GET, or AWS_* variables)"
    [ -n "$region" ] || region=$(imds_get meta-data/placement/region "$itoken") || die "cannot read the region from IMDS (set S3_REGION)"
    if [ -z "$ak" ]; then
      role=$(imds_get meta-data/iam/security-credentials/ "$itoken" | head -n 1) || die "no instance role: attach one with s3:GetObject on s3://$bucket/$PREFIX/*"
      doc=$(imds_get "meta-data/iam/security-credentials/$role" "$itoken")
      ak=$(json_field AccessKeyId "$doc")
      sk=$(json_field SecretAccessKey "$doc")
      token=$(json_field Token "$doc")
      [ -n "$ak" ] && [ -n "$sk" ] || die "instance role $role returned no credentials"
    fi
  fi
  endpoint=${AWS_ENDPOINT_URL_S3:-${AWS_ENDPOINT_URL:-}}
  if [ -n "$endpoint" ]; then
    url="${endpoint%/}/$bucket/$key"
  elif [[ $bucket == *.* ]]; then
    url="https://s3.$region.amazonaws.com/$bucket/$key"
  else
    url="https://$bucket.s3.$region.amazonaws.com/$key"
  fi
  local headers=(-H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  [ -n "$token" ] && headers+=(-H "x-amz-security-token: $token")
  curl -fsS --retry 3 --connect-timeout 10 --aws-sigv4 "aws:amz:$region:s3" --user "$ak:$sk" "${headers[@]}" -o "$2" "$url"
}

if [ -z "$S3_GET" ]; then
  if command -v aws >/dev/null 2>&1; then
    S3_GET=s3_get_awscli
  elif command -v curl >/dev/null 2>&1; then
    S3_GET=s3_get_curl
  else
    die "neither the AWS CLI nor curl is installed: set S3_GET to a command that copies s3://BUCKET/KEY to a file"
  fi
fi

fetch() { # KEY FILE — 3 attempts
  local attempt
  for attempt in 1 2 3; do
    # shellcheck disable=SC2086 # S3_GET is a command line
    if $S3_GET "s3://$BUCKET/$1" "$2"; then return 0; fi
    log "download of s3://$BUCKET/$1 failed (attempt $attempt/3)"
    [ "$attempt" -lt 3 ] && sleep $((attempt * RETRY_SECONDS))
  done
  die "cannot download s3://$BUCKET/$1 (S3_GET=$S3_GET)"
}

# --- what to install -----------------------------------------------------------------------
[ -n "$BUCKET" ] || die "BUCKET is not set: the bucket make publish wrote to"
PREFIX=${PREFIX#/}
PREFIX=${PREFIX%/}
case $(uname -m) in
  x86_64 | amd64) ARCH=x64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) die "unsupported architecture $(uname -m) (x86_64 or aarch64)" ;;
esac

workdir=$(mktemp -d "${TMPDIR:-/tmp}/runs-fleet-agent.XXXXXX")
if [ -z "$VERSION" ]; then
  fetch "$PREFIX/latest" "$workdir/latest"
  VERSION=$(tr -d '[:space:]' <"$workdir/latest")
  log "latest version: $VERSION (s3://$BUCKET/$PREFIX/latest)"
fi
[[ $VERSION =~ ^[0-9A-Za-z][0-9A-Za-z.+-]*$ ]] || die "bad version \"$VERSION\""

name=runs-fleet-agent-$VERSION-linux-$ARCH
fetch "$PREFIX/$VERSION/$ARCH/$name.tar.gz" "$workdir/$name.tar.gz"
fetch "$PREFIX/$VERSION/$ARCH/$name.tar.gz.sha256" "$workdir/$name.tar.gz.sha256"

# --- verify: the checksum file must name exactly this tarball, and the tarball must match it --
read -r sum listed extra <"$workdir/$name.tar.gz.sha256" || true
listed=${listed#\*}
if ! [[ ${sum:-} =~ ^[0-9a-f]{64}$ ]] || [ "${listed:-}" != "$name.tar.gz" ] || [ -n "${extra:-}" ] ||
  [ "$(wc -l <"$workdir/$name.tar.gz.sha256")" -ne 1 ]; then
  die "$name.tar.gz.sha256 is not one sha256sum line for $name.tar.gz: refusing to install"
fi
if [ -n "$SHA256" ]; then
  # The template's checksum wins: the .sha256 beside the tarball is as writable as the tarball.
  [[ $SHA256 =~ ^[0-9a-fA-F]{64}$ ]] || die "SHA256 is not a SHA-256 (64 hex digits)"
  SHA256=$(printf '%s' "$SHA256" | tr 'A-F' 'a-f')
  [ "$sum" = "$SHA256" ] || die "$name.tar.gz.sha256 says $sum but the launch template pins $SHA256: refusing to install"
fi
if ! (cd "$workdir" && sha256sum -c --strict --quiet "$name.tar.gz.sha256" >&2); then
  die "checksum mismatch for s3://$BUCKET/$PREFIX/$VERSION/$ARCH/$name.tar.gz: refusing to install (expected sha256 $sum)"
fi
log "verified $name.tar.gz (sha256 $sum${SHA256:+, pinned by the launch template})"

mkdir "$workdir/unpacked"
tar -xzf "$workdir/$name.tar.gz" -C "$workdir/unpacked" --no-same-owner --no-same-permissions
[ -x "$workdir/unpacked/$name/install.sh" ] || die "$name.tar.gz has no $name/install.sh"

# --- install, then start -------------------------------------------------------------------
[ -n "${SYSTEMCTL:-}" ] && export SYSTEMCTL
DESTDIR=$DESTDIR "$workdir/unpacked/$name/install.sh" >&2

if [ -n "${SYSTEMCTL:-}" ]; then
  $SYSTEMCTL start --no-block "$UNIT"
elif [ -z "$DESTDIR" ]; then
  systemctl start --no-block "$UNIT"
else
  log "skipped: systemctl start $UNIT (DESTDIR set, no SYSTEMCTL)"
  exit 0
fi
log "started $UNIT (runs-fleet-agent $VERSION, $ARCH): it runs one job, then ends this instance"
