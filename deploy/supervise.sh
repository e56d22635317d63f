#!/usr/bin/env bash
# deploy/supervise.sh CMD [ARG…] — runs a chartscan process (a worker) and starts it again
# whenever it dies by itself: a crash, the OOM killer, kill -9. SIGTERM or SIGINT to the
# supervisor is passed on (a worker then hands its tasks back) and ends both. Restarts back
# off from 1 s to 30 s while the process keeps dying within a minute of its start.
# `make run` starts the worker with it; a production host uses its service manager instead
# (deploy/systemd/, Kubernetes), which does the same.
set -uo pipefail
child=
stopping=
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
delay=1
while :; do
  started=$(date +%s)
  "$@" &
  child=$!
  wait "$child"; rc=$?
  # A trapped signal ends wait early: wait again for the process itself.
  while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
  [ -n "$stopping" ] && exit 0
  echo "supervise: $(basename "$1") ${2:-} exited (status $rc); starting it again in ${delay}s" >&2
  sleep "$delay" & wait $!
  [ -n "$stopping" ] && exit 0
  if (( $(date +%s) - started > 60 )); then delay=1; else delay=$(( delay * 2 > 30 ? 30 : delay * 2 )); fi
done
