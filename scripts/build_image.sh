#!/usr/bin/env bash
# Builds the psrec container image from this checkout with deploy/Dockerfile.
#
#   scripts/build_image.sh [--tag=localhost/psrec:dev] [--base=IMAGE] [--engine=podman|docker]
#                          [--binary=build/psrec]
#
# --binary=PATH puts that psrec binary (built on Debian 12, e.g. by scripts/build.sh) in the image
# instead of compiling psrec in the image's build stage: minutes instead of a quarter of an hour, for CI
# and for trying a change. The binary is stripped into a context of its own.
#
# Engine: podman (installed from apt when missing), or docker where `docker info` reaches an engine and
# podman is absent. Podman reads deploy/podman/containers.conf (runc, default ulimits) through
# CONTAINERS_CONF unless that is already set.
#
# Base: --base=IMAGE is pulled if it is not present. Without --base, docker.io/library/debian:bookworm
# is used if present or pullable; where no registry answers, a Debian 12 minbase is made with
# debootstrap from the mirror apt is configured with and imported as localhost/debian-minbase:bookworm
# (reused by later builds). The image's name is printed on the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=localhost/psrec:dev
base=
engine=
binary=
for arg in "$@"; do
  case "$arg" in
    --tag=*) tag=${arg#--tag=} ;;
    --base=*) base=${arg#--base=} ;;
    --engine=*) engine=${arg#--engine=} ;;
    --binary=*) binary=${arg#--binary=} ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_image: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
log() { echo "build_image: $*" >&2; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
fi
apt_install() {
  log "installing $* from apt"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then
    engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
  else
    engine=podman
  fi
fi
case "$engine" in
  podman)
    # netavark makes the e2e run's internal network (aardvark-dns is podman's DNS for other
    # networks; the e2e serves its own names), catatonit is the pause process of the e2e's cluster
    # DNS container; uidmap and fuse-overlayfs are what rootless podman needs.
    if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v catatonit >/dev/null; then
      apt_install podman runc netavark aardvark-dns catatonit uidmap fuse-overlayfs slirp4netns
    fi
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf} ;;
  docker)
    docker info >/dev/null 2>&1 || { log "docker cannot reach an engine (docker info failed)"; exit 1; } ;;
  *) log "--engine must be podman or docker, not $engine"; exit 2 ;;
esac

have_image() { "$engine" image inspect "$1" >/dev/null 2>&1; }

# The first Debian bookworm mirror among apt's enabled sources (deb822 .sources files first, then
# one-line lists), so that debootstrap fetches from where apt does on this machine.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        uri = ""; suites = ""; enabled = 1
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { uri = $i; sub(/^URIs:[ \t]*/, "", uri); sub(/[ \t].*/, "", uri) }
          if ($i ~ /^Suites:/) suites = " " $i " "
          if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
        }
        if (enabled && uri != "" && suites ~ / bookworm /) { print uri; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) break
                       if ($(i + 1) == "bookworm") { print $i; exit } }' "$f"
  done
}

# The enabled Debian stanzas of apt's deb822 sources (bookworm, -updates, -security), for the base's
# own apt, so that the image's packages come from where this machine's do.
apt_sources_for_base() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n"; ORS = "\n\n" }
      / bookworm/ && !/Enabled:[ \t]*no/ && /debian-archive-keyring/ { print }' "$f"
  done
}

make_debootstrap_base() {
  local name=localhost/debian-minbase:bookworm
  if have_image "$name"; then
    log "reusing $name"
    base=$name
    return
  fi
  [ "$engine" = podman ] || { log "no registry answered and debootstrap bases are made with podman only"; exit 1; }
  command -v debootstrap >/dev/null || apt_install debootstrap
  local mirror
  mirror=$(apt_mirror | head -n1)
  [ -n "$mirror" ] || { log "found no bookworm mirror in /etc/apt/sources.list*"; exit 1; }
  rootfs=$(mktemp -d /var/tmp/psrec-rootfs.XXXXXX)
  local start=$SECONDS
  log "making a Debian 12 base with debootstrap --variant=minbase bookworm from $mirror"
  if ! $sudo debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log" >&2
    log "debootstrap from $mirror failed (log above, whole in $rootfs.log)"
    exit 1
  fi
  local sources
  sources=$(apt_sources_for_base)
  if [ -n "$sources" ]; then
    $sudo rm -f "$rootfs/etc/apt/sources.list"
    printf '%s\n' "$sources" | $sudo tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null
  fi
  $sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  $sudo tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$name" >/dev/null
  log "made $name in $((SECONDS - start))s"
  base=$name
}

rootfs=
context=
cleanup() {
  if [ -n "$rootfs" ]; then
    $sudo rm -rf "$rootfs" "$rootfs.log"
  fi
  if [ -n "$context" ]; then
    rm -rf "$context"
  fi
}
trap cleanup EXIT

if [ -n "$base" ]; then
  have_image "$base" || "$engine" pull "$base" >&2 || { log "cannot pull --base=$base"; exit 1; }
else
  base=docker.io/library/debian:bookworm
  if ! have_image "$base"; then
    # A closed network answers at once ("no such host"); the timeout is for one that never answers.
    if ! timeout 60 "$engine" pull "$base" >/dev/null 2>&1; then
      log "cannot pull $base; making the base without a registry"
      make_debootstrap_base
    fi
  fi
fi

start=$SECONDS
if [ -n "$binary" ]; then
  [ -x "$binary" ] || { log "--binary=$binary is not an executable file"; exit 2; }
  context=$(mktemp -d "${TMPDIR:-/tmp}/psrec-image.XXXXXX")
  install -s -m 0755 "$binary" "$context/psrec"
  install -m 0755 scripts/fetch_data.sh "$context/fetch_data.sh"
  log "building $tag from deploy/Dockerfile on $base with $engine, with the prebuilt $binary"
  "$engine" build --build-arg "BASE=$base" --build-arg PSREC_FROM=prebuilt -f deploy/Dockerfile \
    -t "$tag" "$context" >&2
else
  log "building $tag from deploy/Dockerfile on $base with $engine"
  "$engine" build --build-arg "BASE=$base" -f deploy/Dockerfile -t "$tag" . >&2
fi
size=$("$engine" image inspect --format '{{.Size}}' "$tag")
log "built $tag in $((SECONDS - start))s, $((size / 1000000)) MB"
echo "$tag"
