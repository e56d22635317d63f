#!/usr/bin/env bash
# deploy/up.sh — starts the local stack on loopback: Redis, PostgreSQL and MinIO, with data
# under .run/data/ and logs and pid files under .run/. Idempotent: what already runs is reused.
set -euo pipefail
. "$(dirname "$0")/env.sh"
"$(dirname "$0")/install.sh"

mkdir -p "$DATA_DIR"
chmod 755 "$RUN_DIR" "$DATA_DIR"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # name port log
  for _ in $(seq 1 150); do port_open "$2" && return 0; sleep 0.2; done
  echo "up: $1 did not start on port $2; its log, $3, ends with:" >&2
  tail -n 20 "$3" >&2 || true
  exit 1
}

# Redis
if port_open "$REDIS_PORT"; then
  echo "up: redis already on 127.0.0.1:$REDIS_PORT"
else
  mkdir -p "$DATA_DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA_DIR/redis" \
    --appendonly yes --daemonize yes --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log"
  wait_port redis "$REDIS_PORT" "$RUN_DIR/redis.log"
  echo "up: redis on 127.0.0.1:$REDIS_PORT"
fi

# PostgreSQL: refuses to run as root, so the cluster belongs to the postgres user that
# Debian's package creates.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_DATA=$DATA_DIR/postgres
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if port_open "$PG_PORT"; then
  echo "up: postgres already on 127.0.0.1:$PG_PORT"
else
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DATA"
    pwfile=$(mktemp); echo "$PG_PASSWORD" > "$pwfile"; chmod 644 "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=scram-sha-256 --pwfile="$pwfile" \
      --encoding=UTF8 --locale=C.UTF-8 >"$RUN_DIR/initdb.log" 2>&1 || { cat "$RUN_DIR/initdb.log" >&2; rm -f "$pwfile"; exit 1; }
    rm -f "$pwfile"
  fi
  touch "$RUN_DIR/postgres.log"; [ "$(id -u)" -ne 0 ] || chown postgres: "$RUN_DIR/postgres.log"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$RUN_DIR/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories='' -c max_connections=200 -c fsync=on -c shared_buffers=1GB -c max_wal_size=4GB -c maintenance_work_mem=256MB" >/dev/null
  wait_port postgres "$PG_PORT" "$RUN_DIR/postgres.log"
  echo "up: postgres on 127.0.0.1:$PG_PORT"
fi
export PGPASSWORD=$PG_PASSWORD
psql_su() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_su -c "select 1 from pg_roles where rolname='$PG_USER'")" != 1 ]; then
  psql_su -c "create role $PG_USER login password '$PG_PASSWORD' createdb"
fi
if [ "$(psql_su -c "select 1 from pg_database where datname='$PG_DB'")" != 1 ]; then
  psql_su -c "create database $PG_DB owner $PG_USER"
fi
# The component roles: login and a password, nothing else; `chartscan migrate`, run by
# $PG_USER, grants each what it needs in every database it migrates (storage/roles.go).
for role in "$PG_SERVE_USER:$PG_SERVE_PASSWORD" "$PG_WORKER_USER:$PG_WORKER_PASSWORD" "$PG_CLI_USER:$PG_CLI_PASSWORD"; do
  if [ "$(psql_su -c "select 1 from pg_roles where rolname='${role%%:*}'")" != 1 ]; then
    psql_su -c "create role ${role%%:*} login password '${role#*:}'"
  fi
done

# MinIO: a separate server process (AGPL; never linked into chartscan).
if port_open "$MINIO_PORT"; then
  echo "up: minio already on 127.0.0.1:$MINIO_PORT"
else
  mkdir -p "$DATA_DIR/minio"
  MINIO_ROOT_USER=$MINIO_ROOT_USER MINIO_ROOT_PASSWORD=$MINIO_ROOT_PASSWORD MINIO_BROWSER=off \
  MINIO_KMS_SECRET_KEY=$MINIO_KMS_SECRET_KEY \
    setsid nohup "$MINIO_BIN" server "$DATA_DIR/minio" --quiet \
      --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" \
      >"$RUN_DIR/minio.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/minio.pid"
  wait_port minio "$MINIO_PORT" "$RUN_DIR/minio.log"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/ready" >/dev/null 2>&1 && break; sleep 0.2
  done
  echo "up: minio on 127.0.0.1:$MINIO_PORT"
fi
