#!/bin/bash
# Fake actions/runner config.sh (test double). Test hook: argv is recorded in _diag/config-args.json.
ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$ROOT/bin/fake-runner-lib.sh"
refuse_root

mkdir -p "$ROOT/_diag"
args=""
for a in "$@"; do args+="${args:+, }$(json_str "$a")"; done
printf '[%s]\n' "$args" > "$ROOT/_diag/config-args.json"

if [ "$1" = "--version" ]; then cfg version 0.0.0; echo; exit 0; fi
cmd=configure
if [ "$1" = "remove" ]; then cmd=remove; shift; fi

unattended=0 url="" token="" name="$(hostname)" group="Default" work="_work" ephemeral=false disableupdate=false
unknown=()
while [ $# -gt 0 ]; do
  case "$1" in
    --unattended) unattended=1 ;;
    --ephemeral) ephemeral=true ;;
    --disableupdate) disableupdate=true ;;
    --replace | --no-default-labels | --runasservice) ;;
    --url) url=$2; shift ;;
    --token) token=$2; shift ;;
    --name) name=$2; shift ;;
    --runnergroup) group=$2; shift ;;
    --work) work=$2; shift ;;
    --labels | --pat) shift ;;
    *) unknown+=("$1") ;;
  esac
  shift
done
# Like the real runner, every --X option may come from ACTIONS_RUNNER_INPUT_X instead (argv wins);
# this keeps the token out of argv. Test hook: where the token came from, in _diag/config-input.json.
token_source=none
if [ -n "$token" ]; then token_source=argument
elif [ -n "$ACTIONS_RUNNER_INPUT_TOKEN" ]; then token=$ACTIONS_RUNNER_INPUT_TOKEN token_source=environment
fi
printf '{"tokenSource":"%s"}\n' "$token_source" > "$ROOT/_diag/config-input.json"
if [ ${#unknown[@]} -gt 0 ]; then
  echo "Unrecognized command-line input arguments: '${unknown[*]}'. For usage refer to: .\\config.cmd --help or ./config.sh --help" >&2
  exit 1
fi
if [ $unattended -ne 1 ]; then
  echo "An error occurred: the fake runner cannot prompt: pass --unattended" >&2
  exit 1
fi

if [ $cmd = remove ]; then
  [ -n "$token" ] || { echo "Invalid configuration provided for token. Terminating unattended configuration." >&2; exit 1; }
  echo
  echo "# Runner removal"
  echo
  rm -f "$ROOT/.runner" "$ROOT/.credentials" "$ROOT/.credentials_rsaparams"
  echo "√ Runner removed successfully"
  echo "√ Removed .credentials"
  echo "√ Removed .runner"
  exit 0
fi

[ -n "$url" ] || { echo "Invalid configuration provided for url. Terminating unattended configuration." >&2; exit 1; }
[ -n "$token" ] || { echo "Invalid configuration provided for token. Terminating unattended configuration." >&2; exit 1; }
if [ -f "$ROOT/.runner" ]; then
  echo "Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.cmd remove' or './config.sh remove' first." >&2
  exit 1
fi

cat <<'BANNER'

--------------------------------------------------------------------------------
|        ____ _ _   _   _       _          _        _   _                      |
|       / ___(_) |_| | | |_   _| |__      / \   ___| |_(_) ___  _ __  ___      |
|      | |  _| | __| |_| | | | | '_ \    / _ \ / __| __| |/ _ \| '_ \/ __|     |
|      | |_| | | |_|  _  | |_| | |_) |  / ___ \ (__| |_| | (_) | | | \__ \     |
|       \____|_|\__|_| |_|\__,_|_.__/  /_/   \_\___|\__|_|\___/|_| |_|___/     |
|                                                                              |
|                       Self-hosted runner registration                        |
|                                                                              |
--------------------------------------------------------------------------------

# Authentication

BANNER
if [ "$(cfg config succeed)" = hang ]; then
  # GitHub never answers the registration (fault injection): wait until signalled.
  trap 'exit 143' TERM INT
  while :; do sleep 60 & wait $!; done
fi
if [ "$(cfg config succeed)" = fail ]; then
  echo "Http response code: NotFound from 'POST https://api.github.com/actions/runner-registration' (Request Id: FAKE:0000)" >&2
  echo '{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}' >&2
  echo "Response status code does not indicate success: 404 (Not Found)." >&2
  exit 1
fi
echo
echo "√ Connected to GitHub"
echo
echo "# Runner Registration"
echo
echo
echo "√ Runner successfully added"
echo "√ Runner connection is good"
echo
echo "# Runner settings"
echo
umask 077
cat > "$ROOT/.runner" <<JSON
{
  "agentId": 42,
  "agentName": $(json_str "$name"),
  "poolId": 1,
  "poolName": $(json_str "$group"),
  "ephemeral": $ephemeral,
  "disableUpdate": $disableupdate,
  "serverUrl": "https://pipelinesghubeus1.actions.githubusercontent.com/fake/",
  "gitHubUrl": $(json_str "$url"),
  "workFolder": $(json_str "$work")
}
JSON
printf '{"scheme":"OAuth","data":{"clientId":"00000000-0000-0000-0000-000000000042","authorizationUrl":"https://vstoken.actions.githubusercontent.com/_apis/oauth2/token/fake","requireFipsCryptography":"True"}}\n' > "$ROOT/.credentials"
printf '{"d":"ZmFrZQ==","dp":"ZmFrZQ==","dq":"ZmFrZQ==","exponent":"AQAB","inverseQ":"ZmFrZQ==","modulus":"ZmFrZQ==","p":"ZmFrZQ==","q":"ZmFrZQ=="}\n' > "$ROOT/.credentials_rsaparams"
echo "√ Settings Saved."
echo
