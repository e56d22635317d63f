#!/usr/bin/env bash
# deploy/install.sh — installs what the local stack and the tests need, only what is missing.
# Debian packages with apt-get; the MinIO server built once with `go install` into a cache
# directory outside .run/data so deleting the data never rebuilds it.
set -euo pipefail
. "$(dirname "$0")/env.sh"

pkgs=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd libtesseract-dev libleptonica-dev libzxing-dev
      redis-server postgresql postgresql-contrib poppler-utils ghostscript imagemagick libtiff-tools ocrmypdf
      chromium  # chromium: the browser tests of the web UI (chromedp drives it headless)
      podman runc debootstrap)  # the container image's build and test (deploy/image.sh; crun refuses hybrid cgroups)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package starts a cluster and a redis on their default ports; ours run on
  # our own ports under .run/, so the system services are left alone.
fi

if [ ! -x "$MINIO_BIN" ]; then
  echo "install: building the MinIO server $MINIO_VERSION (once, about 4 minutes) into $(dirname "$MINIO_BIN")"
  mkdir -p "$(dirname "$MINIO_BIN")"
  GOBIN="$(dirname "$MINIO_BIN")" go install "github.com/minio/minio@$MINIO_VERSION"
fi

# --- HL7 peer (issue 12) ------------------------------------------------------------------
# The ADT listener's test sends its messages with a real HL7 client, @medplum/hl7's MLLP
# client, pinned by testdata/hl7peer/package-lock.json; `npm ci` installs exactly that
# (again only when the lockfile changed). Node.js from Debian when there is none.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install: apt-get install nodejs npm"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
hl7peer="$CHARTSCAN_ROOT/testdata/hl7peer"
if [ ! -f "$hl7peer/node_modules/.package-lock.json" ] || [ "$hl7peer/package-lock.json" -nt "$hl7peer/node_modules/.package-lock.json" ]; then
  echo "install: npm ci in testdata/hl7peer (the ADT test's HL7 client)"
  (cd "$hl7peer" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# --- end HL7 peer -------------------------------------------------------------------------

# --- axe-core (issue 13) ------------------------------------------------------------------
# The browser tests check the pages with axe-core, pinned by testdata/axe/package-lock.json.
axe="$CHARTSCAN_ROOT/testdata/axe"
if [ ! -f "$axe/node_modules/.package-lock.json" ] || [ "$axe/package-lock.json" -nt "$axe/node_modules/.package-lock.json" ]; then
  echo "install: npm ci in testdata/axe (the browser tests' accessibility check)"
  (cd "$axe" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
