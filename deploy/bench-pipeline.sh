#!/usr/bin/env bash
# deploy/bench-pipeline.sh — chartscan's page rate against the machine's limit, plain
# Tesseract on the very same page images, side by side (issue 11).
#
# The pages are what scanners and fax servers produce: synthetic charts (every layout
# family, ~5% of pages scanned turned 90/180/270) written as multi-page PDFs whose pages
# mix the codecs of real scans — 8-bit grey JPEG (DCTDecode), CCITT Group 4, 1-bit
# Flate — at 300 dpi, with some fax pages at 200 and 150 dpi (Group 4). Each PDF page is
# one image: synth's own page for grey JPEG and 1-bit Flate, libtiff's tiff2pdf (which
# embeds the Group 4 data as it is) for the rest; poppler's pdfunite joins the pages.
#
# The limit: `tesseract IMG -` (its defaults: page segmentation 3, no orientation
# detection) on each page image as pdfimages extracts it, one single-threaded process per
# core (OMP_THREAD_LIMIT=1, xargs -P CORES). chartscan: `ingest --wait` of the same PDFs
# into a fresh database and bucket, a worker with one slot per core — upload, split,
# decode, orientation where a read looks wrong, deskew, barcodes, Tesseract, storage,
# extraction, matching, all queued through Redis. Both are timed in each of RUNS rounds
# (default 3), alternating; the table gives each round and the median. The worker's
# chartscan_stage_seconds histogram gives the per-stage table (seconds per page, all
# rounds). The searchable PDF/A of each filed patient document is then built from the
# stored words (`chartscan export --format fhir`, which assembles them) and its cost put
# beside the OCR time of its pages.
#
# Memory: one PDF of MEMORY_PAGES pages (default 500; 0 skips) and one of 20 pages, each
# split and read by a fresh worker; the peak resident memory of the worker and of its
# reader processes (sampled every 0.2 s from /proc) is reported for both.
#
# Usage: deploy/bench-pipeline.sh [DOCUMENTS]   (default 16 documents, about 60 pages)
# Environment: RUNS (3), MEMORY_PAGES (500), BENCH_SEED (11).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"
export OMP_THREAD_LIMIT=1
BIN=$CHARTSCAN_ROOT/bin/chartscan
docs=${1:-16}
runs=${RUNS:-3}
memory_pages=${MEMORY_PAGES:-500}
seed=${BENCH_SEED:-11}
cores=$(env -u OMP_THREAD_LIMIT -u OMP_NUM_THREADS nproc) # nproc counts OMP_THREAD_LIMIT
work=$(mktemp -d /tmp/chartscan-bench-pipeline-XXXX)
worker_pid=
cleanup() {
  [ -z "$worker_pid" ] || kill "$worker_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
db=chartscan_bench_pipeline
metrics_port=$((9500 + RANDOM % 400))
export CHARTSCAN_WORKER_METRICS_ADDR=127.0.0.1:$metrics_port
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/13"
export MINIO_BUCKET=${db//_/-}
export DATABASE_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$db?sslmode=disable"

# stop_worker ends the run's worker (SIGTERM: it finishes or hands back its tasks).
stop_worker() {
  [ -n "$worker_pid" ] || return 0
  kill "$worker_pid" 2>/dev/null || true
  wait "$worker_pid" 2>/dev/null || true
  worker_pid=
}

# fresh_stack gives the next round an empty database, bucket and queue, and a new worker.
fresh_stack() {
  stop_worker
  sql -d "$PG_DB" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
  redis-cli -p "$REDIS_PORT" -n 13 flushdb >/dev/null
  $BIN migrate >/dev/null
  $BIN records import "$work/charts/empi.csv" >/dev/null
  CHARTSCAN_CONCURRENCY=$cores "$BIN" worker >>"$work/worker.log" 2>&1 &
  worker_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://$CHARTSCAN_WORKER_METRICS_ADDR/metrics" >/dev/null && return 0
    sleep 0.1
  done
  echo "bench-pipeline: the worker did not start; its log:" >&2
  tail -20 "$work/worker.log" >&2
  exit 1
}

now() { date +%s.%N; }
sql() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -qtA "$@"; }

# --- the pages -------------------------------------------------------------------------
echo "bench-pipeline: making scanner-like PDFs ($docs documents, seed $seed)…" >&2
synth_opts=(--seed "$seed" --documents "$docs" --min-patients 1 --max-patients 3 --min-pages 1 --max-pages 3
  --not-in-empi 0.1 --rotate 0.05 --layouts all --page-numbers)
$BIN synth --out "$work/charts" "${synth_opts[@]}" >/dev/null
# The same pages again as grey JPEG (the same seed draws the same pages).
$BIN synth --out "$work/grey" "${synth_opts[@]}" --jpeg >/dev/null
mkdir -p "$work/scans" "$work/pages" "$work/img"
# codec_of N: the Nth page's codec, in a fixed cycle of 20 — 8 grey JPEG, 6 Group 4,
# 4 Flate at 300 dpi, one Group 4 fax page at 200 dpi and one at 150 dpi.
codecs=(jpeg g4 flate jpeg g4 jpeg flate g4 jpeg fax200 jpeg g4 flate jpeg g4 jpeg flate g4 jpeg fax150)
n=0
for pdf in "$work"/charts/*.pdf; do
  base=$(basename "$pdf" .pdf)
  rm -f "$work"/pages/*
  pdfimages -png "$pdf" "$work/pages/p"
  parts=()
  k=0
  for png in "$work"/pages/p-*.png; do
    codec=${codecs[$((n % ${#codecs[@]}))]}
    n=$((n + 1)) k=$((k + 1))
    tif=$work/pages/$(basename "$png" .png).tif
    case $codec in
    g4) convert "$png" -units PixelsPerInch -density 300 -monochrome -compress Group4 "$tif" ;;
    fax200) convert "$png" -resize 66.667% -units PixelsPerInch -density 200 -monochrome -compress Group4 "$tif" ;;
    fax150) convert "$png" -resize 50% -units PixelsPerInch -density 150 -monochrome -compress Group4 "$tif" ;;
    esac
    case $codec in
    # synth's own pages: 1-bit FlateDecode, as a document scanner's default writes it
    # (tiff2pdf would turn a bilevel page into Group 4), and grey JPEG.
    flate) pdfseparate -f "$k" -l "$k" "$pdf" "${tif%.tif}.pdf" ;;
    jpeg) pdfseparate -f "$k" -l "$k" "$work/grey/$base.pdf" "${tif%.tif}.pdf" ;;
    *) tiff2pdf -o "${tif%.tif}.pdf" "$tif" 2>/dev/null ;;
    esac
    parts+=("${tif%.tif}.pdf")
  done
  if [ ${#parts[@]} -eq 1 ]; then cp "${parts[0]}" "$work/scans/$base.pdf"; else pdfunite "${parts[@]}" "$work/scans/$base.pdf"; fi
  # The limit reads the page images exactly as stored: JPEG as the JPEG, the rest as PNG.
  pdfimages -j -png "$work/scans/$base.pdf" "$work/img/$base"
done
pages=$(ls "$work"/img | wc -l)
echo "bench-pipeline: $pages pages in $(ls "$work"/scans | wc -l) PDFs; codecs: $(for f in "$work"/scans/*.pdf; do pdfimages -list "$f" 2>/dev/null; done | awk '$3=="image"{print $9}' | sort | uniq -c | tr -s ' \n' ' ')" >&2

# --- the rounds ------------------------------------------------------------------------
: >"$work/rounds"
for r in $(seq "$runs"); do
  echo "bench-pipeline: round $r of $runs: plain tesseract…" >&2
  start=$(now)
  ls "$work"/img/* | xargs -P "$cores" -I{} sh -c 'tesseract "$1" - >/dev/null 2>&1' _ {}
  plain=$(python3 -c "print($(now) - $start)")

  echo "bench-pipeline: round $r of $runs: chartscan…" >&2
  fresh_stack
  start=$(now)
  $BIN ingest --wait "$work/scans" >"$work/ingest.log" 2>&1 || { echo "bench-pipeline: ingest failed:" >&2; tail -5 "$work/ingest.log" >&2; exit 1; }
  ours=$(python3 -c "print($(now) - $start)")
  curl -sf "http://$CHARTSCAN_WORKER_METRICS_ADDR/metrics" >"$work/metrics-$r"
  batch=$(sql -d "$db" -c "SELECT id FROM batches ORDER BY created_at DESC LIMIT 1")
  filed=$(sql -d "$db" -c "SELECT count(*) FROM pages WHERE status NOT IN ('pending','failed')")
  # The searchable PDF/A of every ready patient document, from the stored words.
  start=$(now)
  $BIN export --format fhir --batch "$batch" --out "$work/export-$r" >/dev/null 2>"$work/export.log" ||
    { echo "bench-pipeline: export failed:" >&2; tail -5 "$work/export.log" >&2; exit 1; }
  pdf=$(python3 -c "print($(now) - $start)")
  echo "$r $plain $ours $filed $pdf" >>"$work/rounds"
done
stop_worker

# --- memory: a long PDF against a short one -------------------------------------------
: >"$work/memory"
if [ "$memory_pages" -gt 0 ]; then
  for size in 20 "$memory_pages"; do
    mkdir -p "$work/mem-$size"
    # The scans over and over until there are enough pages, then exactly that many.
    list=() total=0
    while [ "$total" -lt "$size" ]; do
      for f in "$work"/scans/*.pdf; do
        list+=("$f")
        total=$((total + $(pdfinfo "$f" | awk '/^Pages:/{print $2}')))
        [ "$total" -lt "$size" ] || break
      done
    done
    pdfunite "${list[@]}" "$work/mem-$size/all.pdf"
    pdfseparate -f 1 -l "$size" "$work/mem-$size/all.pdf" "$work/mem-$size/p-%04d.pdf"
    pdfunite "$work"/mem-"$size"/p-*.pdf "$work/mem-$size/long-$size.pdf"
    rm -f "$work"/mem-"$size"/p-*.pdf "$work/mem-$size/all.pdf"
    echo "bench-pipeline: memory: a $size-page PDF…" >&2
    fresh_stack
    peak=$work/peak-$size
    echo "0 0" >"$peak"
    (
      w=0 c=0
      while kill -0 "$worker_pid" 2>/dev/null; do
        wr=$(awk '/^VmRSS/{print $2}' /proc/"$worker_pid"/status 2>/dev/null || echo 0)
        cr=0
        for k in $(pgrep -P "$worker_pid" 2>/dev/null); do
          cr=$((cr + $(awk '/^VmRSS/{print $2}' /proc/"$k"/status 2>/dev/null || echo 0)))
        done
        [ "${wr:-0}" -le "$w" ] || w=$wr
        [ "$cr" -le "$c" ] || c=$cr
        echo "$w $c" >"$peak"
        sleep 0.2
      done
    ) &
    sampler=$!
    start=$(now)
    $BIN ingest --wait "$work/mem-$size/long-$size.pdf" >"$work/ingest.log" 2>&1 || { echo "bench-pipeline: ingest failed:" >&2; tail -5 "$work/ingest.log" >&2; exit 1; }
    secs=$(python3 -c "print($(now) - $start)")
    stop_worker
    wait "$sampler" 2>/dev/null || true
    echo "$size $secs $(cat "$peak")" >>"$work/memory"
  done
fi

# --- the tables ------------------------------------------------------------------------
python3 - "$pages" "$cores" "$work" <<'PY'
import glob, re, statistics, sys
pages, cores, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rounds = [l.split() for l in open(f"{work}/rounds") if l.strip()]
print(f"Pipeline rate: {pages} scanner-like pages (grey JPEG, CCITT G4, 1-bit Flate; 300/200/150 dpi; ~5% turned), {cores} cores\n")
print(f"{'round':>5}  {'plain tesseract pages/s':>24}  {'chartscan pages/s':>18}  {'ratio':>6}  {'pages filed':>11}")
ratios, prs, ors = [], [], []
for r, plain, ours, filed, _ in rounds:
    pr, orr = pages / float(plain), pages / float(ours)
    prs.append(pr); ors.append(orr); ratios.append(orr / pr)
    print(f"{r:>5}  {pr:>24.3f}  {orr:>18.3f}  {orr/pr:>6.2f}  {filed:>11}")
print(f"{'median':>5}  {statistics.median(prs):>24.3f}  {statistics.median(ors):>18.3f}  {statistics.median(ratios):>6.2f}")
print(f"\nchartscan end to end = {100*statistics.median(ratios):.0f}% of plain Tesseract's page rate (median of {len(rounds)} rounds)\n")

sums, counts = {}, {}
for f in glob.glob(f"{work}/metrics-*"):
    for m in re.finditer(r'chartscan_stage_seconds_(sum|count)\{stage="([a-z_]+)"\} ([0-9.e+-]+)', open(f).read()):
        d = sums if m[1] == "sum" else counts
        d[m[2]] = d.get(m[2], 0) + float(m[3])
tess = sums.get("tesseract", 0)
print(f"{'stage':<16}{'timed':>7}{'seconds each':>14}{'per page':>10}{'share of tesseract':>20}")
for st in sorted(sums, key=lambda s: -sums[s]):
    n = counts.get(st, 0)
    if n == 0:
        continue
    print(f"{st:<16}{int(n):>7}{sums[st]/n:>14.3f}{sums[st]/(pages*len(rounds)):>10.3f}{(100*sums[st]/tess if tess else 0):>19.1f}%")
print("(seconds each: the mean over the times the stage ran; per page: its total over all pages;\n"
      " queue_* are waits, not work; reader spans the child's decode…tesseract; orientation runs only\n"
      " when a first read looks wrong)")
pdf = sum(float(r[4]) for r in rounds)
if tess:
    print(f"\nSearchable PDF/A of the filed patient documents (export --format fhir, from the stored words):"
          f" {pdf:.1f} s over {len(rounds)} rounds = {100*pdf/tess:.1f}% of the OCR (tesseract) time of the pages")
mem = [l.split() for l in open(f"{work}/memory") if l.strip()]
if mem:
    print(f"\n{'PDF pages':>9}  {'seconds':>8}  {'worker peak RSS MB':>18}  {'readers peak RSS MB':>19}")
    for size, secs, w, c in mem:
        print(f"{size:>9}  {float(secs):>8.0f}  {int(w)/1024:>18.0f}  {int(c)/1024:>19.0f}")
PY
