#!/usr/bin/env bash
# deploy/image.sh [TAG] — builds the container image (Dockerfile) with podman, with no image
# registry: what `FROM` needs is made here, once, and cached in $CACHE_DIR/image/ (the
# Makefile's cache, like the MinIO binary's):
#
#   1. the base: Debian bookworm from its packages, `debootstrap --variant=minbase`,
#      imported as localhost/debian-base:bookworm;
#   2. the Go toolchain: this host's GOROOT (go.mod wants Go 1.26; bookworm's golang is
#      1.19) and a module cache holding exactly go.mod's modules (copied from this host's
#      module cache, the module proxy for any missing), imported as
#      localhost/chartscan-go:<go version>-<go.sum hash> with the layout of the official
#      golang image (/usr/local/go, /go/pkg/mod), so the Dockerfile reads it in place of
#      golang:1.26-bookworm;
#   3. `podman build` of the Dockerfile, offline (GOPROXY=off), layers cached by podman:
#      a second build with no source change takes seconds.
#
# Prints the image's name on its last line. CHARTSCAN_IMAGE names it (localhost/chartscan:dev).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CHARTSCAN_ROOT"

IMAGE=${1:-${CHARTSCAN_IMAGE:-localhost/chartscan:dev}}
IMG_CACHE=$CACHE_DIR/image
BASE=localhost/debian-base:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# crun refuses this host's hybrid cgroups; runc runs.
podman=(podman --runtime runc)
mkdir -p "$IMG_CACHE"

have_image() { "${podman[@]}" image exists "$1"; }

# 1. The base image.
if ! have_image "$BASE"; then
  rootfs=$IMG_CACHE/debian-bookworm-minbase
  if [ ! -f "$rootfs/.complete" ]; then
    echo "image: debootstrap --variant=minbase bookworm (once, a few minutes) into $rootfs" >&2
    rm -rf "$rootfs" "$rootfs.partial"
    debootstrap --variant=minbase bookworm "$rootfs.partial" "$MIRROR" >"$IMG_CACHE/debootstrap.log" 2>&1 ||
      { tail -n 20 "$IMG_CACHE/debootstrap.log" >&2; exit 1; }
    # apt in the image: no caches kept, no recommends, as the slim images do.
    rm -rf "$rootfs.partial/var/cache/apt/archives/"*.deb "$rootfs.partial/var/lib/apt/lists/"*
    mv "$rootfs.partial" "$rootfs"
    touch "$rootfs/.complete"
  fi
  # debootstrap's sources name the release alone: the image gets its updates and security
  # fixes too, as Debian's own images do.
  security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$MIRROR" "$MIRROR" "$security" >"$rootfs/etc/apt/sources.list"
  echo "image: importing $BASE" >&2
  tar --exclude=./.complete -C "$rootfs" -c . | "${podman[@]}" import --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
fi

# 2. The Go toolchain and module cache.
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
sumhash=$(cat go.mod go.sum | sha256sum | cut -c1-12)
GOIMAGE=localhost/chartscan-go:$gover-$sumhash
if ! have_image "$GOIMAGE"; then
  modcache=$IMG_CACHE/gomod-$sumhash
  if [ ! -f "$modcache/.complete" ]; then
    echo "image: module cache for go.mod in $modcache" >&2
    # Earlier module caches (an older go.sum) go; their files are read-only, as Go makes them.
    for old in "$IMG_CACHE"/gomod-*; do
      [ -e "$old" ] && [ "$old" != "$modcache" ] && { chmod -R u+w "$old"; rm -rf "$old"; }
    done
    GOMODCACHE=$modcache/go/pkg/mod GOFLAGS=-mod=mod \
      GOPROXY="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" go mod download
    touch "$modcache/.complete"
  fi
  echo "image: importing $GOIMAGE (Go $gover from $goroot, go.mod's modules)" >&2
  groot=${goroot#/}
  tar -C / -c --exclude="$groot/test" --exclude="$groot/pkg/obj" \
      --transform="s,^$groot,usr/local/go," "$groot" \
      -C "$modcache" go/pkg/mod |
    "${podman[@]}" import - "$GOIMAGE" >/dev/null
  # Older Go images go (a new toolchain or go.sum made this one).
  "${podman[@]}" images --format '{{.Repository}}:{{.Tag}}' localhost/chartscan-go |
    while read -r old; do [ "$old" = "$GOIMAGE" ] || "${podman[@]}" rmi "$old" >/dev/null 2>&1 || true; done
fi

# 3. The image. --format docker keeps HEALTHCHECK (the OCI format has none). The build
# stage is tagged too (localhost/chartscan-build), so that its layers — the compilers,
# Go, the modules — outlive the prune below like the runtime's.
echo "image: podman build -t $IMAGE" >&2
: >"$IMG_CACHE/build.log"
for target in build ""; do
  tag=$IMAGE; [ -z "$target" ] || tag=localhost/chartscan-build:latest
  "${podman[@]}" build --network host --format docker --layers ${target:+--target "$target"} \
    --build-arg BASE="$BASE" --build-arg GOLANG="$GOIMAGE" --build-arg GOPROXY=off \
    -t "$tag" -f Dockerfile . >>"$IMG_CACHE/build.log" 2>&1 ||
    { tail -n 40 "$IMG_CACHE/build.log" >&2; echo "image: the build failed; its log: $IMG_CACHE/build.log" >&2; exit 1; }
done
# What earlier builds left untagged (replaced images, their build stages) goes after a
# day: the day's rebuilds keep their layers, the disk does not fill.
"${podman[@]}" image prune -f --filter until=24h >/dev/null 2>&1 || true
echo "$IMAGE"
