#!/usr/bin/env bash
# deploy/test-faults.sh — the fault tests (issue 10, item 4): a batch read while Redis,
# MinIO and PostgreSQL are each killed and restarted and workers are killed with SIGKILL,
# and an upload cut off by MinIO dying. They start servers of their own on free ports with
# their data under a temporary directory, so the local stack (make up) and anything else
# using it are never disturbed. Prints "pages lost = 0, duplicated = 0, failed = 0".
#
#   CHARTSCAN_FAULT_PAGES=200   pages in the batch (two patients of two pages per PDF)
#   CHARTSCAN_FAULT_OUTAGE=60s  how long each store stays down (issue 10 item 4: 60 s)
#   CHARTSCAN_FAULT_LOGS=DIR    also write every process's log there
set -euo pipefail
. "$(dirname "$0")/env.sh"
"$(dirname "$0")/install.sh"
cd "$CHARTSCAN_ROOT"

CHARTSCAN_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
CHARTSCAN_MINIO_BIN=$MINIO_BIN
command -v redis-server >/dev/null || { echo "test-faults: redis-server is not installed" >&2; exit 1; }
[ -x "$CHARTSCAN_MINIO_BIN" ] || { echo "test-faults: no MinIO server at $CHARTSCAN_MINIO_BIN (deploy/install.sh builds it)" >&2; exit 1; }
export CHARTSCAN_FAULT_TEST=1 CHARTSCAN_PG_BIN CHARTSCAN_MINIO_BIN OMP_THREAD_LIMIT=1
exec go test -count=1 -v -timeout 60m -run '^TestFaults' ./cmd/chartscan/
