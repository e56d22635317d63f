#!/usr/bin/env bash
# deploy/run.sh — the main job: migrate, import the sample EMPI, (re)start a worker,
# ingest the sample charts, wait for every page to be filed, and print the summary.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"
BIN=$CHARTSCAN_ROOT/bin/chartscan
export OMP_THREAD_LIMIT=1

$BIN migrate
$BIN records import testdata/empi/sample.csv

pidfile=$RUN_DIR/chartscan-worker.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  kill "$(cat "$pidfile")"; while kill -0 "$(cat "$pidfile")" 2>/dev/null; do sleep 0.2; done
fi
setsid nohup "$BIN" worker >>"$RUN_DIR/worker.log" 2>&1 </dev/null &
echo $! > "$pidfile"
echo "run: worker started (pid $(cat "$pidfile"), log .run/worker.log)"

batch=$($BIN ingest --wait --label "make run sample" testdata/charts | head -n 1)
cat <<TXT

Where to look next:
  bin/chartscan export --format jsonl --batch $batch    every page with its filing
  bin/chartscan status $batch                           this summary again
  bin/chartscan ingest --wait PATH…                     your own scans (the worker keeps running)
  .run/worker.log                                       the worker's log (ids and counts, no PHI)
  make down                                             stop the stack and the worker
TXT
