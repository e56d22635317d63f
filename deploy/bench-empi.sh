#!/usr/bin/env bash
# deploy/bench-empi.sh — the EMPI scale benchmark (issue 3): a synthetic EMPI of
# PATIENTS (default 1,000,000) imported with COPY into a database of its own, then
# candidate search + scoring timed per page on perturbed look-ups.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"
db=chartscan_bench_empi
PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -qtA \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
DATABASE_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$db?sslmode=disable" \
  bin/chartscan bench-empi --patients "${1:-1000000}" 2> >(grep -v 'msg="empi import"' >&2)
