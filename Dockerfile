# chartscan's container image: the one binary, for every command (worker, serve, migrate,
# intake, watch, …; CMD is worker), on Debian with Tesseract, Leptonica, zxing-cpp, poppler
# and libtiff's tools. Runs as a user of its own (10001) with a read-only root filesystem:
# it writes only to /tmp (mount a tmpfs or an emptyDir there).
#
#   docker build -t chartscan .                       (with a registry)
#   deploy/image.sh                                   (without one: see the README, "Container image")
#
# BASE is the Debian both stages start from; GOLANG is where the Go toolchain comes from
# (only /usr/local/go and /go are copied out of it, so a bare import of a GOROOT and a
# module cache does as well as the official image). Build and runtime share BASE, so the
# binary runs against the very libraries it was linked with.
ARG BASE=debian:bookworm-slim
ARG GOLANG=golang:1.26-bookworm

FROM ${GOLANG} AS go

# --- build: cgo (gosseract, the Leptonica/OSD and zxing-cpp shims) --------------------
FROM ${BASE} AS build
ARG GOPROXY=https://proxy.golang.org,direct
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates gcc g++ libc6-dev pkg-config \
      libtesseract-dev libleptonica-dev libzxing-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=go /usr/local/go /usr/local/go
COPY --from=go /go /go
ENV PATH=/usr/local/go/bin:/go/bin:$PATH GOPATH=/go GOMODCACHE=/go/pkg/mod \
    GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS=-buildvcs=false
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party/ third_party/
RUN GOPROXY=$GOPROXY go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -o /out/chartscan ./cmd/chartscan \
 && /out/chartscan config >/dev/null

# --- runtime ---------------------------------------------------------------------------
FROM ${BASE}
# The base's packages brought up to date (security fixes), then what chartscan needs.
# What the binary links (libtesseract5, liblept5, libzxing2), Tesseract's English and
# orientation data, and what the worker runs as processes: pdftoppm (poppler-utils) and
# tiffsplit (libtiff-tools). ca-certificates: the stores are reached over TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libtesseract5 liblept5 libzxing2 \
      tesseract-ocr-eng tesseract-ocr-osd poppler-utils libtiff-tools \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --system --gid 10001 chartscan \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin chartscan
COPY --from=build /out/chartscan /usr/local/bin/chartscan
# One thread per Tesseract (concurrency comes from worker slots); everything written goes
# to /tmp; in a container the addresses must be reachable from outside it (Kubernetes
# probes, Prometheus): serve on 8080, a worker's metrics on 9464.
ENV OMP_THREAD_LIMIT=1 HOME=/tmp TMPDIR=/tmp XDG_CACHE_HOME=/tmp/.cache \
    CHARTSCAN_HTTP_ADDR=0.0.0.0:8080 CHARTSCAN_WORKER_METRICS_ADDR=0.0.0.0:9464 \
    CHARTSCAN_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9464
# serve: /api/v1/health; a worker: its metrics endpoint; other commands: running is healthy.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/chartscan", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/chartscan"]
CMD ["worker"]
