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

# The EHR of the local stack (issue 14): a FHIR server (@medplum/fhir-router in memory,
# its resources kept in .run/fhir-store.json) and an MLLP receiver (@medplum/hl7) that
# logs every MDM message it reads to .run/mdm-received.log; the worker delivers to both.
for peer in fhir mllp; do
  pf=$RUN_DIR/chartscan-$peer-peer.pid  # down.sh stops every chartscan-*.pid
  if [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null; then kill "$(cat "$pf")"; sleep 0.5; fi
done
# Each peer's subshell execs it with every descriptor redirected: a subshell left waiting
# for it would hold make's output open (`make run | tee` would never end).
(cd testdata/hl7peer && exec setsid nohup node fhir-peer.mjs --port "$FHIR_PEER_PORT" --store "$RUN_DIR/fhir-store.json") \
  >>"$RUN_DIR/fhir-peer.log" 2>&1 </dev/null &
echo $! > "$RUN_DIR/chartscan-fhir-peer.pid"
(cd testdata/hl7peer && exec setsid nohup node mdm-peer.mjs --listen --daemon --port "$MLLP_PEER_PORT" --log "$RUN_DIR/mdm-received.log") \
  >>"$RUN_DIR/mllp-peer.log" 2>&1 </dev/null &
echo $! > "$RUN_DIR/chartscan-mllp-peer.pid"
for _ in $(seq 120); do curl -fsS "http://127.0.0.1:$FHIR_PEER_PORT/\$received" >/dev/null 2>&1 && break; sleep 0.5; done
export CHARTSCAN_FHIR_URL=http://127.0.0.1:$FHIR_PEER_PORT/
export CHARTSCAN_HL7_ADDR=127.0.0.1:$MLLP_PEER_PORT
echo "run: FHIR server at $CHARTSCAN_FHIR_URL, MLLP receiver at $CHARTSCAN_HL7_ADDR (logs .run/fhir-peer.log, .run/mllp-peer.log)"

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

echo
echo "run: delivered to the EHR (document number = FHIR masterIdentifier = HL7 TXA-12):"
$BIN deliver status --batch "$batch" --wait 3m || true
echo "run: the FHIR server holds: $(curl -fsS "http://127.0.0.1:$FHIR_PEER_PORT/\$received")"
echo "run: the MLLP receiver read $(grep -c . "$RUN_DIR/mdm-received.log" 2>/dev/null || echo 0) MDM messages (.run/mdm-received.log)"
cat <<TXT

Where to look next:
  http://$HTTP_ADDR/                              the web UI: sign in as demo-clerk, demo-reviewer
                                                        or demo-admin, password $DEMO_PASSWORD
  bin/chartscan export --format jsonl --batch $batch    every page with its filing
  bin/chartscan status $batch                           this summary again
  bin/chartscan deliver status --batch $batch           what was delivered to the EHR, and its answers
  http://127.0.0.1:$FHIR_PEER_PORT/DocumentReference        the local FHIR server's DocumentReferences
  bin/chartscan ingest --wait PATH…                     your own scans (the worker keeps running)
  .run/worker.log, .run/serve.log                       the worker's and server's logs (ids and counts, no PHI)
  make down                                             stop the stack, the worker and the server
TXT
