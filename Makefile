# chartscan — `make run` starts the local stack and runs the main job; `make test` runs
# every test against real Redis, PostgreSQL, MinIO and Tesseract. Both install what is
# missing first (deploy/install.sh).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
BIN := bin/chartscan
# One thread per Tesseract: concurrency comes from worker slots.
export OMP_THREAD_LIMIT := 1

.PHONY: all deps up down build run test test-short test-faults test-k8s image vet vuln bench-pipeline bench-match bench-empi bench-review bench-scale clean

all: build

deps:
	deploy/install.sh

up:
	deploy/up.sh

down:
	deploy/down.sh

build: deps
	go build -o $(BIN) ./cmd/chartscan

run: up build
	deploy/run.sh

vet:
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# Known vulnerabilities (govulncheck, with a database built offline from the
# golang.org/x/vulndb module): a vulnerable module fails; the Go toolchain's own are
# reported (VULN_STDLIB=fail to fail on them too).
vuln:
	deploy/vuln.sh

# Integration tests fail (never skip) when a service is missing: `make test` starts them.
# Among them, TestContainerImageFilesAChart runs the image: `image` builds it first, so
# that a clean machine's first build (about 20 minutes) is not spent in go test's timeout.
test: up vet vuln test-k8s image
	. deploy/env.sh && CHARTSCAN_TEST_SERVICES=required go test -count=1 -timeout 75m ./...

# The Kubernetes manifests and compose.yaml, checked offline: deploy/k8s is a Go module of
# its own (kustomize, k8s.io/api and KEDA weigh on no other package), out of `./...`'s reach.
test-k8s: deps
	cd deploy/k8s && go test -count=1 ./...

# The container image (Dockerfile) with podman and no registry: localhost/chartscan:dev.
image: deps
	deploy/image.sh

# A batch read while Redis, MinIO and PostgreSQL are killed and restarted and workers are
# killed, and an upload MinIO dies under; on servers of its own, never the local stack's.
# Prints "pages lost = 0, duplicated = 0, failed = 0". CHARTSCAN_FAULT_PAGES and
# CHARTSCAN_FAULT_OUTAGE size it (deploy/test-faults.sh).
test-faults: deps
	deploy/test-faults.sh

# Unit tests only: no services needed.
test-short:
	go test -short ./...

# End-to-end page rate against plain Tesseract on the same pages (prints a table).
bench-pipeline: up build
	deploy/bench-pipeline.sh

# Matching accuracy by page kind on a synthetic, OCR'd batch (prints a table).
bench-match: up build
	deploy/bench-match.sh

# EMPI scale: 1,000,000 patients, import rate and per-page search + scoring latency.
bench-empi: up build
	deploy/bench-empi.sh

# Capacity: the real pipeline with 1 and 2 workers, then the coordination path (split,
# store, extract, fan-in, match, export) with a stand-in reader at 16, 32 and 64 slots
# against the real stores; pages/s, per-stage seconds, CPU per process (prints tables).
bench-scale: up build
	deploy/bench-scale.sh

# The review desk in chromium: 100 seeded review items decided by keyboard, p50/p95 from
# the key press to the next item fully shown (prints a table; ITEMS=, DWELL= size it).
bench-review: up deps
	deploy/bench-review.sh

clean:
	rm -rf bin

# OCR accuracy: character error rate of chartscan, plain tesseract and ocrmypdf on the
# corpus pages with ground truth (CORPUS=/path adds pages not committed; prints a table).
bench-ocr: deps
	deploy/bench-ocr.sh
