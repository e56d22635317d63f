#!/usr/bin/env bash
# deploy/bench-match.sh — the matching benchmark (issue 3): a synthetic EMPI from one
# version of each person in testdata/identities, charts printed from another, noisier
# version, rendered and OCR'd through the whole pipeline, then every page's filing checked
# against the ground truth, by page kind. It runs in a database, bucket and Redis
# database of its own, so the local stack's data is untouched.
# Usage: deploy/bench-match.sh [DOCUMENTS]   (default 60 documents, about 240 pages)
# BENCH_SEED=N draws another synthetic set (a hold-out for tuning).
# BENCH_KEEP=DIR keeps the charts and their truth in DIR (the database stays until the
# next run), so `chartscan refile` + `chartscan evaluate` can replay the matching alone.
# BENCH_REVIEW=1 then works the review queue as a reviewer who knows the truth and
# counts the decisions (each decision re-files its document, as the server does).
# BENCH_NAME=NAME names the database and bucket (default chartscan_bench_match), so two
# kept runs (two seeds) can stand side by side.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"
export OMP_THREAD_LIMIT=1
BIN=$CHARTSCAN_ROOT/bin/chartscan
docs=${1:-60}
if [ -n "${BENCH_KEEP:-}" ]; then
  work=$BENCH_KEEP
  rm -rf "$work" && mkdir -p "$work"
else
  work=$(mktemp -d /tmp/chartscan-bench-match-XXXX)
fi
worker_pid=
cleanup() {
  [ -z "$worker_pid" ] || kill "$worker_pid" 2>/dev/null || true
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

db=${BENCH_NAME:-chartscan_bench_match}
PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -qtA \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
export DATABASE_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$db?sslmode=disable"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/14"
export MINIO_BUCKET=${db//_/-}
redis-cli -p "$REDIS_PORT" -n 14 flushdb >/dev/null

$BIN synth --out "$work/charts" --seed "${BENCH_SEED:-20261126}" --documents "$docs" \
  --min-patients 1 --max-patients 3 --min-pages 1 --max-pages 3 \
  --continuation 0.35 --not-in-empi 0.1 --near-twins 0.1 --name-dob 0.15 --wrong-mrn 0.1 --variants 0.5 \
  --skew 1.5 --noise 0.002
$BIN records import "$work/charts/empi.csv"

CHARTSCAN_CONCURRENCY=2 "$BIN" worker >"$work/worker.log" 2>&1 &
worker_pid=$!
batch=$($BIN ingest --wait "$work/charts" 2>"$work/ingest.log" | head -n 1) || true
echo "$batch" >"$work/batch"
echo
echo "Matching benchmark: $docs synthetic documents, EMPI from one version of each person,"
echo "charts printed from another (testdata/identities/splink), OCR'd by the full pipeline."
echo
$BIN evaluate --truth "$work/charts/truth.json" --batch "$batch"
if [ -n "${BENCH_REVIEW:-}" ]; then
  # Then a reviewer who knows the truth works the queue: how many decisions it takes.
  echo
  $BIN evaluate --review --truth "$work/charts/truth.json" --batch "$batch"
fi
