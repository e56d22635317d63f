#!/usr/bin/env bash
# deploy/bench-pipeline.sh — end-to-end page rate of chartscan against plain Tesseract on
# the same pages, side by side in one run. Plain: `tesseract --psm 1` on each page image,
# two processes at once (one per core, OMP_THREAD_LIMIT=1). chartscan: a fresh batch of
# the same PDFs through ingest → split → OCR → extract → match with a 2-slot worker.
# Usage: deploy/bench-pipeline.sh [DOCUMENTS]   (default 12 documents, about 50 pages)
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"
export OMP_THREAD_LIMIT=1
BIN=$CHARTSCAN_ROOT/bin/chartscan
docs=${1:-12}
work=$(mktemp -d /tmp/chartscan-bench-XXXX)
trap 'rm -rf "$work"' EXIT
seed=$(date +%s) # new content each run, so nothing is deduplicated away

$BIN synth --out "$work/charts" --seed "$seed" --documents "$docs" --min-patients 1 --max-patients 3 \
  --min-pages 1 --max-pages 3 --not-in-empi 0.1 >/dev/null
$BIN records import "$work/charts/empi.csv" >/dev/null
pages=$(python3 -c "import json,sys; print(sum(len(d['pages']) for d in json.load(open(sys.argv[1]))['documents']))" "$work/charts/truth.json")

# Plain Tesseract on the very page images chartscan reads (pdfimages keeps them as stored).
mkdir -p "$work/img" "$work/txt"
for f in "$work"/charts/*.pdf; do pdfimages -png "$f" "$work/img/$(basename "$f" .pdf)"; done
start=$(date +%s.%N)
ls "$work"/img/*.png | xargs -P 2 -I{} sh -c 'tesseract "$1" "$2/$(basename "$1" .png)" --psm 1 --dpi 300 >/dev/null 2>&1' _ {} "$work/txt"
plain=$(python3 -c "print($(date +%s.%N) - $start)")

# chartscan, with a worker of its own for the run.
pidfile=$RUN_DIR/chartscan-worker.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  kill "$(cat "$pidfile")"; while kill -0 "$(cat "$pidfile")" 2>/dev/null; do sleep 0.2; done
fi
CHARTSCAN_CONCURRENCY=2 setsid nohup "$BIN" worker >>"$RUN_DIR/worker.log" 2>&1 </dev/null &
echo $! > "$pidfile"
sleep 1
start=$(date +%s.%N)
$BIN ingest --wait "$work/charts" >/dev/null 2>"$work/ingest.log" || true
ours=$(python3 -c "print($(date +%s.%N) - $start)")

python3 - "$pages" "$plain" "$ours" <<'PY'
import sys
pages, plain, ours = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"{'pipeline':<44}{'pages':>6}{'seconds':>9}{'pages/s':>9}")
print(f"{'plain tesseract --psm 1, 2 processes':<44}{pages:>6}{plain:>9.1f}{pages/plain:>9.2f}")
print(f"{'chartscan ingest --wait (2 worker slots)':<44}{pages:>6}{ours:>9.1f}{pages/ours:>9.2f}")
print(f"chartscan end to end = {100*plain/ours:.0f}% of plain Tesseract's rate")
PY
