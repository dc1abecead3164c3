#!/bin/bash
# Fake actions/runner run.sh, shaped like the real one: it runs the listener in a loop
# while it exits 2 (retryable). With RUNNER_MANUALLY_TRAP_SIG set it turns job control on
# (the listener gets ITS OWN process group) and forwards INT/TERM as SIGINT to that group.
# Unlike the real one (whose run-helper maps 1 to 0) it exits with the listener's code.
ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$ROOT/bin/fake-runner-lib.sh"
refuse_root

run() {
  while :; do
    "$ROOT/bin/Runner.Listener" run "$@"
    rc=$?
    if [ $rc -eq 2 ]; then echo "Restarting runner..."; sleep 1; continue; fi
    echo "Exiting runner..."
    exit $rc
  done
}

runWithManualTrap() {
  set -m
  signaled=0
  trap 'kill -INT -$PID 2>/dev/null; signaled=1' INT TERM
  while :; do
    "$ROOT/bin/Runner.Listener" run "$@" &
    PID=$!
    wait $PID
    rc=$?
    # wait returned early because of a trapped signal: wait again for the real exit code.
    while [ $signaled -eq 1 ] && kill -0 $PID 2>/dev/null; do wait $PID; rc=$?; done
    if [ $rc -eq 2 ]; then echo "Restarting runner..."; sleep 1; continue; fi
    echo "Exiting runner..."
    trap - INT TERM
    exit $rc
  done
}

if [ -z "$RUNNER_MANUALLY_TRAP_SIG" ]; then run "$@"; else runWithManualTrap "$@"; fi
