#!/usr/bin/env bash
# Idempotent: the base image deploy/Containerfile builds on, made locally because this
# machine reaches no container registry. `debootstrap --variant=minbase` of Debian 12
# (bookworm) from Debian's archive — the packages debian:12-slim is made of (Priority:
# required, plus apt) — packed as a tar in .cache/container/ (git-ignored; made once, ~1-3
# min), then imported into the container storage given as $1 (vfs) under the name
# localhost/debian:12-slim. Prints the image name on the last line.
#
#   tools/container_base.sh STORAGE_ROOT RUN_ROOT
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STORAGE="${1:?container storage root}"
RUNROOT="${2:?container run root}"
CACHE="$ROOT/.cache/container"
TAR="$CACHE/debian12-minbase.tar"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
IMAGE=localhost/debian:12-slim
mkdir -p "$CACHE"
if [ ! -f "$TAR" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is missing (tools/setup --for-tests)" >&2; exit 1; }
  rootfs="$CACHE/rootfs.$$"
  rm -rf "$rootfs"
  trap 'rm -rf "$rootfs" "$TAR.$$.partial"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >&2
  # What debian:12-slim also leaves out: the package lists and caches.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$rootfs" -cf "$TAR.$$.partial" .
  mv "$TAR.$$.partial" "$TAR"
  rm -rf "$rootfs"
  trap - EXIT
fi
P=(podman --root "$STORAGE" --runroot "$RUNROOT" --storage-driver vfs)
if ! "${P[@]}" image exists "$IMAGE"; then
  "${P[@]}" import --change 'CMD ["bash"]' "$TAR" "$IMAGE" >&2
fi
echo "$IMAGE"
