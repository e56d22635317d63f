#!/usr/bin/env bash
# deploy/bench-scale.sh — the capacity model, measured (issue 15, item 5).
#
# (a) The real pipeline: synthetic charts (`chartscan synth`, ~20 pages) ingested with
#     `ingest --wait` and read by 1 and 2 worker processes × slots (Tesseract in a child
#     process per slot): pages/s, and pages per core-hour from the CPU the workers and
#     their readers used (/proc), so other load on the machine does not count against it.
# (b) The coordination path at scale: the same charts copied into REPEAT distinct files
#     (a comment after %%EOF changes each copy's SHA-256), ingested first, then drained by
#     workers whose reader is the stand-in (CHARTSCAN_READER=standin:DELAY: no Tesseract,
#     each read waits DELAY and returns the same few words) with 16, 32 and 64 simulated
#     slots (16-slot processes) against the real Redis, PostgreSQL and MinIO. Reported:
#     the pages/s split, store, extract, fan-in and match sustain (the OCR ceiling is
#     slots/DELAY), the export of the batch, the seconds per page of each stage
#     (chartscan_stage_seconds of every worker), and the CPU each process used — workers,
#     postgres (every backend), redis-server, minio — from /proc, per page.
#     With PROFILE=1 the 64-slot run also takes a 25 s CPU profile of its first worker
#     (/debug/pprof, served only with the stand-in) and samples PostgreSQL's wait events.
#
# Each run has its own database (chartscan_bench_scale), bucket and Redis db (12); the
# local stack's data is untouched. The machine may be shared: the load average is printed.
# Usage: deploy/bench-scale.sh
# Environment: SLOTS ("16 32 64"), DELAY (1s), REPEAT (20 copies of the ~55-page set),
# REAL (1: run part a; 0 skips it), PROFILE (1), BENCH_SEED (7).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"
export OMP_THREAD_LIMIT=1
BIN=${BIN:-$CHARTSCAN_ROOT/bin/chartscan}
slots_list=${SLOTS:-16 32 64}
delay=${DELAY:-1s}
repeat=${REPEAT:-20}
real=${REAL:-1}
profile=${PROFILE:-1}
seed=${BENCH_SEED:-7}
per_proc=16
tck=$(getconf CLK_TCK)
cores=$(env -u OMP_THREAD_LIMIT -u OMP_NUM_THREADS nproc) # nproc counts OMP_THREAD_LIMIT
db=chartscan_bench_scale
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/12"
export MINIO_BUCKET=${db//_/-}
export DATABASE_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$db?sslmode=disable"
export CHARTSCAN_LOG_LEVEL=warn
work=$(mktemp -d /tmp/chartscan-bench-scale-XXXX)
workers=()
cleanup() {
  stop_workers
  rm -rf "$work"
}
trap cleanup EXIT

stop_workers() {
  local p
  for p in "${workers[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
  workers=()
}

psql_admin() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -qtAX "$@"; }
psql_bench() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$db" -qtAX "$@"; }

# fresh gives a run an empty database, bucket contents and Redis db.
fresh() {
  psql_admin -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
  redis-cli -p "$REDIS_PORT" -n 12 flushdb >/dev/null
  $BIN records import "$charts/empi.csv" >/dev/null 2>&1
}

# ticks PID… prints the CPU ticks (user + system) the live processes used, and their
# reaped children's (a postmaster's exited backends).
ticks() {
  local p s sum=0
  for p in "$@"; do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    sum=$((sum + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$sum"
}
pg_pids() { local m; m=$(head -n 1 "$RUN_DIR/data/postgres/postmaster.pid"); echo "$m" $(pgrep -P "$m" || true); }
redis_pids() { cat "$RUN_DIR/redis.pid"; }
minio_pids() { cat "$RUN_DIR/minio.pid"; }
worker_pids() { local p; for p in "${workers[@]}"; do echo "$p" $(pgrep -P "$p" || true); done; }
machine_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }

# start_workers PROCS SLOTS [READER] starts PROCS workers of SLOTS slots each, metrics on
# ports 9700+.
start_workers() {
  local i
  for ((i = 0; i < $1; i++)); do
    CHARTSCAN_CONCURRENCY=$2 CHARTSCAN_READER=${3:-tesseract} CHARTSCAN_WORKER_METRICS_ADDR=127.0.0.1:$((9700 + i)) \
      "$BIN" worker >>"$work/worker-$i.log" 2>&1 &
    workers+=($!)
  done
}

# stages PROCS sums chartscan_stage_seconds over the workers: "stage sum count" lines.
stages() {
  local i
  for ((i = 0; i < $1; i++)); do curl -fsS "http://127.0.0.1:$((9700 + i))/metrics" || true; done |
    awk -F'[{}" ]+' '/^chartscan_stage_seconds_(sum|count)\{/ {
        split($1, n, "_"); v = $NF; s = $3
        if (n[4] == "sum") sum[s] += v; else cnt[s] += v
      }
      END { for (s in sum) print s, sum[s], cnt[s] }'
}

# wait_done waits until every document of the run is done or failed.
wait_done() {
  local left
  while :; do
    left=$(psql_bench -c "SELECT count(*) FROM documents WHERE status NOT IN ('done','failed')")
    [ "$left" = 0 ] && return 0
    sleep 0.5
  done
}

now() { date +%s.%N; }

echo "chartscan bench-scale, $(date -u +%FT%TZ), $cores cores (shared with other work: the numbers are lower than an idle machine's): load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The charts: synth is slow (about 2 s a page here), so its output is kept between runs.
charts=$CACHE_DIR/bench-scale/charts-$seed
if [ ! -s "$charts/empi.csv" ]; then
  rm -rf "$charts" && mkdir -p "$(dirname "$charts")"
  $BIN synth --out "$charts" --seed "$seed" --documents 20 --min-patients 1 --max-patients 2 \
    --min-pages 1 --max-pages 2 >/dev/null
fi
set_pages=$(find "$charts" -name '*.pdf' | wc -l)

if [ "$real" = 1 ]; then
  # (a) ~20 pages: the first 8 files.
  mkdir -p "$work/real"
  find "$charts" -name '*.pdf' | sort | head -n 8 | xargs -I{} cp {} "$work/real/"
  printf '\n(a) The real pipeline (Tesseract), %s files; CPU from /proc (worker + its readers)\n\n' "$(ls "$work/real" | wc -l)"
  printf '%-18s %6s %8s %8s %10s %14s\n' "workers x slots" pages seconds pages/s "CPU s/page" "pages/core-h"
  for cfg in "1 1" "1 2" "2 1"; do
    set -- $cfg
    fresh
    start_workers "$1" "$2"
    sleep 1
    t0=$(now) c0=$(ticks $(worker_pids))
    $BIN ingest --wait "$work/real" >/dev/null 2>"$work/ingest-real.log"
    t1=$(now) c1=$(ticks $(worker_pids))
    pages=$(psql_bench -c "SELECT count(*) FROM pages")
    stop_workers
    awk -v w="$1 x $2" -v p="$pages" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v tck="$tck" 'BEGIN {
      s = t1 - t0; cpu = c / tck
      printf "%-18s %6d %8.1f %8.2f %10.2f %14.0f\n", w, p, s, p / s, cpu / p, 3600 * p / cpu }'
  done
fi

# (b) The stand-in reader at 16–64 slots.
mkdir -p "$work/many"
for ((i = 0; i < repeat; i++)); do
  mkdir -p "$work/many/c$i"
  for f in "$charts"/*.pdf; do
    { cat "$f"; printf '\n%% chartscan bench-scale copy %d\n' "$i"; } >"$work/many/c$i/$(basename "$f")"
  done
done
printf '\n(b) The coordination path: stand-in reader (%s a page, no Tesseract), %d files, 16-slot workers\n' \
  "$delay" "$((repeat * set_pages))"
results=$work/results
: >"$results"
for slots in $slots_list; do
  procs=$(((slots + per_proc - 1) / per_proc))
  fresh
  ti=$(now)
  batch=$($BIN ingest "$work/many" 2>"$work/ingest.log" | head -n 1)
  ingest_s=$(awk -v a="$ti" -v b="$(now)" 'BEGIN { print b - a }')
  x0=$(psql_bench -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'")
  r0=$(redis-cli -p "$REDIS_PORT" info stats | awk -F: '/^total_commands_processed/ { print $2 + 0 }')
  m0=$(machine_busy)
  b0=$(du -sb "$RUN_DIR/data/minio/$MINIO_BUCKET" | cut -f1)
  g0=$(ticks $(pg_pids)) e0=$(ticks $(redis_pids)) o0=$(ticks $(minio_pids))
  t0=$(now)
  start_workers "$procs" "$per_proc" "standin:$delay"
  if [ "$profile" = 1 ] && [ "$slots" = "$(echo $slots_list | awk '{ print $NF }')" ]; then
    (sleep 3 && curl -fsS -o "$work/cpu.pprof" "http://127.0.0.1:9700/debug/pprof/profile?seconds=25") &
    (for _ in $(seq 1 30); do
      psql_admin -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu'), left(regexp_replace(query, '\s+', ' ', 'g'), 70)
        FROM pg_stat_activity WHERE datname = '$db' AND state = 'active'"
      sleep 0.5
    done) >"$work/waits" &
  fi
  wait_done
  t1=$(now)
  w1=$(ticks $(worker_pids))
  g1=$(ticks $(pg_pids)) e1=$(ticks $(redis_pids)) o1=$(ticks $(minio_pids))
  m1=$(machine_busy)
  r1=$(redis-cli -p "$REDIS_PORT" info stats | awk -F: '/^total_commands_processed/ { print $2 + 0 }')
  x1=$(psql_bench -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'")
  stages "$procs" | sed "s/^/$slots /" >"$work/stages-$slots"
  pages=$(psql_bench -c "SELECT count(*) FROM pages")
  failed=$(psql_bench -c "SELECT count(*) FROM documents WHERE status = 'failed'")
  stop_workers
  te=$(now)
  $BIN export --format jsonl --batch "$batch" >/dev/null
  export_s=$(awk -v a="$te" -v b="$(now)" 'BEGIN { print b - a }')
  bytes=$(($(du -sb "$RUN_DIR/data/minio/$MINIO_BUCKET" | cut -f1) - b0))
  echo "$slots $procs $pages $failed $t0 $t1 $((w1)) $((g1 - g0)) $((e1 - e0)) $((o1 - o0)) $((m1 - m0)) $((r1 - r0)) $((x1 - x0)) $ingest_s $export_s $bytes" >>"$results"
done

printf '\n%-6s %5s %6s %6s %8s %8s %8s %8s %9s %9s\n' slots procs pages failed seconds pages/s "OCR ceil" "ingest/s" "export/s" "busy cores"
awk -v d="$delay" -v tck="$tck" 'function secs(x) { if (x ~ /ms$/) return x / 1000; return x + 0 }
  { s = $6 - $5; printf "%-6s %5s %6s %6s %8.1f %8.1f %8.1f %8.1f %9.0f %9.2f\n", $1, $2, $3, $4, s, $3 / s,
      (secs(d) > 0 ? $1 / secs(d) : 0), $3 / $14, $3 / $15, $11 / tck / s }' "$results"
printf '\nCPU of each process per page (ms), cores per 1,000 pages/hour, and store load per page\n'
printf '(all: the four together; idle ceiling: the pages/s they would sustain with all %d cores to themselves)\n\n' "$cores"
printf '%-6s %8s %9s %8s %8s %8s %13s %10s %10s %12s %12s\n' slots worker postgres redis minio all "idle ceiling" "cores/1k/h" "redis cmd" "pg commits" "MinIO bytes"
awk -v tck="$tck" -v cores="$cores" '{ p = $3; ms = 1000 / tck / p; all = ($7 + $8 + $9 + $10) * ms
    printf "%-6s %8.1f %9.1f %8.1f %8.1f %8.1f %13.1f %10.3f %10.1f %12.1f %12.0f\n", $1, $7 * ms, $8 * ms, $9 * ms, $10 * ms,
      all, cores * 1000 / all, all / 3600, $12 / p, $13 / p, $16 / p }' "$results"
printf '\nSeconds per page of each stage (sum over workers / count; split is per document)\n\n'
cat "$work"/stages-* | awk '{ key[$2] = 1; v[$1, $2] = ($4 > 0 ? $3 / $4 : 0); sl[$1] = 1 }
  END {
    n = split("queue_ocr fetch standin reader store queue_extract extract fanin match split", order, " ")
    printf "%-14s", "stage"; for (s in sl) hdr[++h] = s
    for (i = 1; i <= h; i++) for (j = i + 1; j <= h; j++) if (hdr[j] + 0 < hdr[i] + 0) { t = hdr[i]; hdr[i] = hdr[j]; hdr[j] = t }
    for (i = 1; i <= h; i++) printf " %10s", hdr[i] " slots"; printf "\n"
    for (k = 1; k <= n; k++) { st = order[k]; if (!(st in key)) continue
      printf "%-14s", st; for (i = 1; i <= h; i++) printf " %10.4f", v[hdr[i], st]; printf "\n" }
  }'
if [ -s "$work/cpu.pprof" ]; then
  printf '\nWorker CPU profile (25 s of the %s-slot run, first worker), top functions by cumulative time\n\n' \
    "$(echo $slots_list | awk '{ print $NF }')"
  go tool pprof -top -cum -nodecount=25 "$BIN" "$work/cpu.pprof" 2>/dev/null | sed -n '1,32p' || true
  mkdir -p "$CACHE_DIR/bench-scale" && cp "$work/cpu.pprof" "$CACHE_DIR/bench-scale/worker-cpu.pprof"
fi
if [ -s "$work/waits" ]; then
  printf '\nPostgreSQL active sessions by wait (sampled every 0.5 s during that run)\n\n'
  sort "$work/waits" | uniq -c | sort -rn | head -n 12
fi
