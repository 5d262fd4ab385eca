#!/usr/bin/env bash
# Builds a container image of Sluice from the single executable (scripts/build-sea.mjs), offline:
# no base image is pulled. The root filesystem holds only the executable, the shared libraries
# `ldd` lists for it and for the native addon (glibc, libstdc++, libgcc_s, the dynamic loader),
# an ld.so.cache, /etc/passwd and /etc/group with the unprivileged user sluice (10001), /tmp
# (where the addon is unpacked at start), the openssl tool (a gateway makes its certificate with
# it) and the state directory /var/lib/sluice; it is imported with `docker import` (or
# `podman import`).
#
# Usage: scripts/build-image.sh [--sea FILE] [--tag NAME] [--engine docker|podman] [--tar-only FILE]
#   --sea FILE      the executable (default dist/sea/sluice; built first when missing)
#   --tag NAME      image name (default sluice:latest)
#   --engine CLI    the client that imports (default docker; DOCKER_HOST is honoured)
#   --tar-only FILE write the root filesystem tarball to FILE and import nothing
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
SEA="$ROOT_DIR/dist/sea/sluice"
TAG=sluice:latest
ENGINE=docker
TAR_ONLY=
while (($#)); do
  case "$1" in
    --sea) SEA=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --engine) ENGINE=$2; shift 2 ;;
    --tar-only) TAR_ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
T0=$(date +%s%N)
say() { echo "build-image: $* ($(( ($(date +%s%N) - T0) / 1000000 )) ms)"; }

if [ ! -x "$SEA" ]; then
  [ "$SEA" = "$ROOT_DIR/dist/sea/sluice" ] || { echo "build-image: $SEA is not an executable" >&2; exit 1; }
  node "$ROOT_DIR/scripts/build-sea.mjs" --out "$SEA"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FS="$WORK/rootfs"
mkdir -p "$FS/usr/local/bin" "$FS/etc/sluice" "$FS/var/lib/sluice" "$FS/tmp"
chmod 1777 "$FS/tmp"
cp "$SEA" "$FS/usr/local/bin/sluice"
chmod 755 "$FS/usr/local/bin/sluice"

# A gateway generates its certificate with the openssl tool (src/gateway/certificate.ts): the
# image carries the building machine's, with its configuration file.
OPENSSL=$(command -v openssl || true)
if [ -n "$OPENSSL" ]; then
  mkdir -p "$FS/usr/bin"
  cp -L "$OPENSSL" "$FS/usr/bin/openssl"
  CNF=$(openssl version -d | sed -E 's/^OPENSSLDIR: "(.*)"$/\1/')/openssl.cnf
  if [ -e "$CNF" ]; then mkdir -p "$FS$(dirname "$CNF")"; cp -L "$CNF" "$FS$CNF"; fi
else
  echo "build-image: no openssl here: a gateway in this image needs gateway.tls.cert and gateway.tls.key" >&2
fi

# The libraries these programs load, at the paths the loader looks in. The addon links the same
# ones as node (libstdc++, libc); it is unpacked from the executable, so it is checked when it
# is at hand.
libs() { ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; }
ADDON="$ROOT_DIR/native/build/Release/sluice_udp.node"
{ libs "$SEA"; [ -f "$ADDON" ] && libs "$ADDON"; [ -n "$OPENSSL" ] && libs "$OPENSSL"; } | sort -u | while read -r lib; do
  mkdir -p "$FS$(dirname "$lib")"
  cp -L "$lib" "$FS$lib"
done
printf '%s\n' /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu >"$FS/etc/ld.so.conf"
"$(command -v ldconfig || echo /sbin/ldconfig)" -r "$FS"
printf 'root:x:0:0:root:/root:/sbin/nologin\nsluice:x:10001:10001:sluice:/var/lib/sluice:/sbin/nologin\n' >"$FS/etc/passwd"
printf 'root:x:0:\nsluice:x:10001:\n' >"$FS/etc/group"
say "root filesystem assembled ($(du -sh "$FS" | cut -f1))"

# Everything root's, but the state directory the user's: two tar passes, no chown needed.
TAR="${TAR_ONLY:-$WORK/rootfs.tar}"
tar -C "$FS" --numeric-owner --owner=0 --group=0 --exclude=./var/lib/sluice -cf "$TAR" .
tar -C "$FS" --numeric-owner --owner=10001 --group=10001 --no-recursion -rf "$TAR" ./var/lib/sluice
say "wrote $TAR"
[ -n "$TAR_ONLY" ] && exit 0

"$ENGINE" import \
  --change 'ENTRYPOINT ["/usr/local/bin/sluice"]' \
  --change 'CMD ["run", "--config", "/etc/sluice/sluice.yaml"]' \
  --change 'USER 10001:10001' \
  --change 'WORKDIR /var/lib/sluice' \
  --change 'ENV TMPDIR=/tmp PATH=/usr/local/bin:/usr/bin' \
  --change "LABEL org.opencontainers.image.title=sluice org.opencontainers.image.version=$("$SEA" --version | cut -d' ' -f2)" \
  "$TAR" "$TAG" >/dev/null
say "imported $TAG"
