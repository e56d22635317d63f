#!/usr/bin/env bash
# deploy/vuln.sh — govulncheck over every package, offline: the vulnerability database is
# built from the golang.org/x/vulndb module (its OSV files, fetched through the Go module
# proxy like any module) with that module's own indexdb, and read with -db file://, so
# vuln.go.dev need not be reachable. deploy/vulnreport fails on a vulnerable module of
# the build and warns about the Go toolchain's standard library (VULN_STDLIB=fail makes
# that fail too). VULNDB_VERSION pins the database (default: the newest).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"

GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=${VULNDB_VERSION:-latest}
bin=$CACHE_DIR/bin
mkdir -p "$bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

govulncheck=$bin/govulncheck-$GOVULNCHECK_VERSION
if [ ! -x "$govulncheck" ]; then
  echo "vuln: installing govulncheck $GOVULNCHECK_VERSION"
  GOBIN=$tmp go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
  mv "$tmp/govulncheck" "$govulncheck"
fi

# The module, outside this one so go.mod is left alone. Without the proxy, the newest
# database built before is used, and said so.
if info=$(cd "$tmp" && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" 2>"$tmp/err"); then
  field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"$info" | head -n 1; }
  version=$(field Version); src=$(field Dir); infofile=$(field Info)
  [ -n "$version" ] && [ -d "$src/data/osv" ] || { echo "vuln: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv: $info" >&2; exit 1; }
  db=$CACHE_DIR/vulndb-$version
else
  db=$(ls -d "$CACHE_DIR"/vulndb-v* 2>/dev/null | grep -v "\.tmp$" | sort | tail -n 1)
  [ -n "$db" ] || { echo "vuln: cannot fetch golang.org/x/vulndb and no database was built before:" >&2; cat "$tmp/err" >&2; exit 1; }
  echo "vuln: cannot fetch golang.org/x/vulndb@$VULNDB_VERSION; using the database built before, $(basename "$db")" >&2
fi
if [ ! -s "$db/index/db.json" ]; then
  indexdb=$bin/indexdb-$version
  if [ ! -x "$indexdb" ]; then
    echo "vuln: building the database indexer of golang.org/x/vulndb@$version"
    GOBIN=$tmp GOFLAGS=-mod=mod go install "golang.org/x/vulndb/cmd/indexdb@$version"
    mv "$tmp/indexdb" "$indexdb"
  fi
  rm -rf "$db.tmp"
  "$indexdb" -vulns "$src/data/osv" -out "$db.tmp"
  # indexdb leaves the date at zero; the module's commit time is when the data is from.
  when=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$infofile")
  [ -z "$when" ] || printf '{"modified":"%s"}' "$when" > "$db.tmp/index/db.json"
  rm -rf "$db" && mv "$db.tmp" "$db"
fi

"$govulncheck" -db "file://$db" -format json ./... > "$tmp/findings.json"
go run ./deploy/vulnreport -stdlib "${VULN_STDLIB:-warn}" < "$tmp/findings.json"
