# deploy/env.sh — the one place that names the local stack's ports, credentials and paths.
# Sourced by every deploy script and by the Makefile; the chartscan binary's defaults
# (cmd/chartscan/config.go) match these values, so the CLI works with no configuration.
# shellcheck shell=bash
CHARTSCAN_ROOT=${CHARTSCAN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RUN_DIR=${RUN_DIR:-$CHARTSCAN_ROOT/.run}
DATA_DIR=$RUN_DIR/data
CACHE_DIR=${CHARTSCAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chartscan}

REDIS_PORT=${REDIS_PORT:-6390}
PG_PORT=${PG_PORT:-5440}
PG_USER=chartscan
PG_PASSWORD=chartscan
PG_DB=chartscan
# One role per component, with only the grants it needs (storage/roles.go): what a
# production deploy gives serve, the OCR workers and the CLI, each its own URL
# (CHARTSCAN_SERVE_DATABASE_URL, CHARTSCAN_WORKER_DATABASE_URL, CHARTSCAN_CLI_DATABASE_URL).
# PG_USER above owns the schema and migrates it. Unset, every component uses
# DATABASE_URL, as a developer's machine does. These passwords are the local stack's only.
PG_SERVE_USER=chartscan_serve
PG_SERVE_PASSWORD=chartscan-serve-local
PG_WORKER_USER=chartscan_worker
PG_WORKER_PASSWORD=chartscan-worker-local
PG_CLI_USER=chartscan_cli
PG_CLI_PASSWORD=chartscan-cli-local
MINIO_PORT=${MINIO_PORT:-9010}
MINIO_CONSOLE_PORT=${MINIO_CONSOLE_PORT:-9011}
MINIO_ROOT_USER=chartscan
MINIO_ROOT_PASSWORD=chartscan-local-secret
# MinIO's built-in KMS with one static key, so the bucket is encrypted at rest
# (MINIO_SSE=s3). The local stack's only: anywhere else use KES or your KMS.
MINIO_KMS_SECRET_KEY=chartscan-local:Y2hhcnRzY2FuLWxvY2FsLWttcy1rZXktMzItYnl0ZXM=

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN=$CACHE_DIR/minio-$MINIO_VERSION/minio

export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}
export DATABASE_URL=${DATABASE_URL:-postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable}
export MINIO_ENDPOINT=${MINIO_ENDPOINT:-127.0.0.1:$MINIO_PORT}
export MINIO_ACCESS_KEY=${MINIO_ACCESS_KEY:-$MINIO_ROOT_USER}
export MINIO_SECRET_KEY=${MINIO_SECRET_KEY:-$MINIO_ROOT_PASSWORD}
# The component roles' URLs on the local stack, for a run that uses them (not exported:
# tests give each process its own database through DATABASE_URL).
PG_SERVE_URL=postgres://$PG_SERVE_USER:$PG_SERVE_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable
PG_WORKER_URL=postgres://$PG_WORKER_USER:$PG_WORKER_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable
PG_CLI_URL=postgres://$PG_CLI_USER:$PG_CLI_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable
# Delivery to the EHR (issue 14): what the documents say of the facility. The OID is
# HL7's example root (2.16.840.1.113883.19.5), visibly not a real facility's. `make run`
# starts a local FHIR server and MLLP receiver (testdata/hl7peer) and points the
# worker at them with CHARTSCAN_FHIR_URL and CHARTSCAN_HL7_ADDR.
export CHARTSCAN_MRN_SYSTEM_URI=${CHARTSCAN_MRN_SYSTEM_URI:-urn:oid:2.16.840.1.113883.19.5}
export CHARTSCAN_FACILITY=${CHARTSCAN_FACILITY:-EXAMPLEHOSP}
FHIR_PEER_PORT=${FHIR_PEER_PORT:-8095}
MLLP_PEER_PORT=${MLLP_PEER_PORT:-2576}
