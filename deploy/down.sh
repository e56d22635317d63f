#!/usr/bin/env bash
# deploy/down.sh — stops the local stack started by up.sh; data under .run/data/ stays.
set -uo pipefail
. "$(dirname "$0")/env.sh"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
# A worker hands its tasks back within 30 s of SIGTERM (its supervisor waits for it).
stop_pid() { # name pidfile
  [ -f "$2" ] || return 0
  pid=$(cat "$2")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"; for _ in $(seq 1 250); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    echo "down: $1 stopped"
  fi
  rm -f "$2"
}
for f in "$RUN_DIR"/chartscan-*.pid; do [ -e "$f" ] && stop_pid "$(basename "$f" .pid)" "$f"; done
stop_pid minio "$RUN_DIR/minio.pid"
stop_pid redis "$RUN_DIR/redis.pid"
if [ -f "$DATA_DIR/postgres/postmaster.pid" ]; then
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DATA_DIR/postgres" -m fast -w stop >/dev/null
  else "$PG_BIN/pg_ctl" -D "$DATA_DIR/postgres" -m fast -w stop >/dev/null; fi && echo "down: postgres stopped"
fi
exit 0
