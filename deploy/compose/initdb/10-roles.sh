#!/bin/bash
# compose.yaml: PostgreSQL's first start makes chartscan's component roles, login and a
# password only; `chartscan migrate` grants each what it needs (storage/roles.go).
set -euo pipefail
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
  -v serve="$PG_SERVE_PASSWORD" -v worker="$PG_WORKER_PASSWORD" <<'SQL'
CREATE ROLE chartscan_serve LOGIN PASSWORD :'serve';
CREATE ROLE chartscan_worker LOGIN PASSWORD :'worker';
SQL
