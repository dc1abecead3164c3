#!/bin/bash
# Fake actions/runner run.sh, shaped like the real one: it runs the listener in a loop
# while it exits 2 (retryable). With RUNNER_MANUALLY_TRAP_SIG set it turns job control on
# (the listener gets ITS OWN process group) and forwards INT/TERM as SIGINT to that group.
# The listener's exit code is mapped as the real run-helper.sh.template does (v2.336.0): 7 stays 7
# when ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1, 2 restarts, everything else is 0.
ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$ROOT/bin/fake-runner-lib.sh"
refuse_root

# run-helper.sh's mapping of the listener's code: prints its line, sets rc to what it exits with.
helper_code() {
  case $rc in
    0) echo "Runner listener exit with 0 return code, stop the service, no retry needed." ;;
    2) echo "Runner listener exit with retryable error, re-launch runner in 5 seconds."; return ;;
    7) if [ "$ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE" = 1 ]; then echo "Runner listener exit with deprecated version exit code: 7."; return; fi
       echo "Exiting with unknown error code: 7" ;;
    1) echo "Runner listener exit with terminated error, stop the service, no retry needed." ;;
    5) echo "Runner listener exit with Session Conflict error, stop the service, no retry needed." ;;
    *) [ $rc -gt 128 ] && return # killed by a signal: the helper died with it
       echo "Exiting with unknown error code: ${rc}" ;;
  esac
  rc=0
}

run() {
  while :; do
    "$ROOT/bin/Runner.Listener" run "$@"
    rc=$?
    helper_code
    if [ $rc -eq 2 ]; then echo "Restarting runner..."; sleep 1; continue; fi
    echo "Exiting runner..."
    exit $rc
  done
}

# Like the real runWithManualTrap: a trapped INT/TERM interrupts `wait`, whose status (128 + the
# signal) is then run.sh's own exit code once the listener is done ("wait for last parts to be logged").
runWithManualTrap() {
  set -m
  signaled=0
  trap 'kill -INT -$PID 2>/dev/null; signaled=130' INT
  trap 'kill -INT -$PID 2>/dev/null; signaled=143' TERM
  while :; do
    "$ROOT/bin/Runner.Listener" run "$@" &
    PID=$!
    wait $PID
    rc=$?
    if [ $signaled -ne 0 ]; then
      echo "Exiting runner..."
      trap - INT TERM
      while kill -0 $PID 2>/dev/null; do wait $PID; done
      exit $signaled
    fi
    helper_code
    if [ $rc -eq 2 ]; then echo "Restarting runner..."; sleep 1; continue; fi
    echo "Exiting runner..."
    trap - INT TERM
    exit $rc
  done
}

if [ -z "$RUNNER_MANUALLY_TRAP_SIG" ]; then run "$@"; else runWithManualTrap "$@"; fi
