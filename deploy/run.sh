#!/usr/bin/env bash
# deploy/run.sh — the main job: migrate, import the sample EMPI, (re)start a worker and
# the web server, ingest the sample charts, wait for every page to be filed, and print the
# summary and where to sign in.
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
# Under a supervisor that starts the worker again if it dies (deploy/supervise.sh).
setsid nohup "$CHARTSCAN_ROOT/deploy/supervise.sh" "$BIN" worker >>"$RUN_DIR/worker.log" 2>&1 </dev/null &
echo $! > "$pidfile"
echo "run: worker started under deploy/supervise.sh (pid $(cat "$pidfile"), log .run/worker.log)"

# Demo users for the local stack only; --update-existing makes a re-run leave them as here.
DEMO_PASSWORD=chartscan-demo
for u in clerk reviewer admin; do
  printf '%s\n' "$DEMO_PASSWORD" | $BIN users add "demo-$u" --role "$u" --password-stdin --update-existing >/dev/null
done

HTTP_ADDR=${CHARTSCAN_HTTP_ADDR:-127.0.0.1:8080}
servepid=$RUN_DIR/chartscan-serve.pid
if [ -f "$servepid" ] && kill -0 "$(cat "$servepid")" 2>/dev/null; then
  kill "$(cat "$servepid")"; while kill -0 "$(cat "$servepid")" 2>/dev/null; do sleep 0.2; done
fi
CHARTSCAN_HTTP_ADDR=$HTTP_ADDR setsid nohup "$BIN" serve >>"$RUN_DIR/serve.log" 2>&1 </dev/null &
echo $! > "$servepid"
for _ in $(seq 50); do curl -fsS "http://$HTTP_ADDR/api/v1/health" >/dev/null 2>&1 && break; sleep 0.2; done
echo "run: web server started (pid $(cat "$servepid"), log .run/serve.log) at http://$HTTP_ADDR/"

batch=$($BIN ingest --wait --label "make run sample" testdata/charts | head -n 1)
cat <<TXT

Where to look next:
  http://$HTTP_ADDR/                              the web UI: sign in as demo-clerk, demo-reviewer
                                                        or demo-admin, password $DEMO_PASSWORD
  bin/chartscan export --format jsonl --batch $batch    every page with its filing
  bin/chartscan status $batch                           this summary again
  bin/chartscan ingest --wait PATH…                     your own scans (the worker keeps running)
  .run/worker.log, .run/serve.log                       the worker's and server's logs (ids and counts, no PHI)
  make down                                             stop the stack, the worker and the server
TXT
