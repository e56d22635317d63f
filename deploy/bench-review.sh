#!/usr/bin/env bash
# deploy/bench-review.sh — the review desk benchmark (issue 13, item 5): ITEMS (default
# 100) review items seeded in a slice of the local stack of their own, each decided with
# the key 1 in headless chromium once the next item is preloaded; prints p50/p95 from the
# key press to the next item fully shown (its image decoded and painted), timed in the
# page itself (no external timing tool). DWELL (default 600ms) is the time on each item.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
CHARTSCAN_BENCH_REVIEW="${ITEMS:-100}" CHARTSCAN_BENCH_DWELL="${DWELL:-600ms}" CHARTSCAN_BENCH_OUT="$out" \
  go test ./cmd/chartscan -run '^TestReviewDeskBench$' -count=1 -timeout 30m >&2
cat "$out"
