#!/usr/bin/env bash
# Images without a container registry: `make base-images` (build.sh base) and `make images`
# (build.sh all). See README "Images from Debian packages (air-gapped or mirror-only)".
#
#   base  debootstrap one minimal bookworm root file system (--variant=minbase; the tarball and the
#         .deb files are kept in $IMAGE_CACHE), `docker import` it as videoflix-base/debian:bookworm,
#         then build every target of deploy/images/Dockerfile from it (python, node, nginx,
#         postgres, redis, seaweedfs), tagged videoflix-base/<target>:bookworm.
#   all   base, then the app image ($VIDEOFLIX_IMAGE) and the nginx image ($VIDEOFLIX_NGINX_IMAGE)
#         from the Dockerfile, on those bases (PYTHON_IMAGE, NODE_IMAGE, NGINX_IMAGE).
#
# Settings (environment): DOCKER (client, default docker), DEBIAN_MIRROR (default
# http://deb.debian.org/debian), IMAGE_CACHE (default /var/cache/videoflix-images), EXTRA_CA_BUNDLE
# (a PEM file apt, pip and npm trust during the builds: a build secret, never in an image),
# PIP_INDEX_URL and NPM_REGISTRY (a mirror of PyPI / of the npm registry), BASE_PREFIX
# (default videoflix-base). Needs root (debootstrap) and a Docker engine with BuildKit.
set -euo pipefail
cd "$(dirname "$0")/../.."

DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${IMAGE_CACHE:-/var/cache/videoflix-images}
PREFIX=${BASE_PREFIX:-videoflix-base}
ROOT_IMAGE=$PREFIX/debian:bookworm
TARGETS=(python node nginx postgres redis seaweedfs)

say() { printf -- '--> images: %s\n' "$*"; }
die() { printf -- '!!! images: %s\n' "$*" >&2; exit 1; }

# BuildKit is needed (build secrets, RUN --mount): buildx when the client has it, else a client
# older than 23 with DOCKER_BUILDKIT=1 (Debian bookworm's docker.io).
buildkit() {
  if $DOCKER buildx version >/dev/null 2>&1; then
    $DOCKER buildx build --load "$@"
  else
    local major
    major=$($DOCKER version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
    [ -n "$major" ] && [ "$major" -lt 23 ] \
      || die "this docker client ($DOCKER) needs the buildx plugin for BuildKit; or set DOCKER to a client < 23"
    DOCKER_BUILDKIT=1 $DOCKER build "$@"
  fi
}

# The options every build shares: the host's network (no bridge is needed), the extra CA as a
# secret, the package index mirrors.
common_args() {
  args=(--network host --progress plain)
  if [ -n "${EXTRA_CA_BUNDLE:-}" ]; then
    [ -s "$EXTRA_CA_BUNDLE" ] || die "EXTRA_CA_BUNDLE=$EXTRA_CA_BUNDLE is not a readable file"
    args+=(--secret "id=extra_ca,src=$EXTRA_CA_BUNDLE")
  fi
  [ -z "${PIP_INDEX_URL:-}" ] || args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
  [ -z "${NPM_REGISTRY:-}" ] || args+=(--build-arg "NPM_REGISTRY=$NPM_REGISTRY")
}

# As Debian's own slim images: no documentation, manual pages or translations, now or from any
# package installed later; no recommended packages; no package lists or .deb files left.
ROOTFS_VERSION=2  # part of the cached tarball's name: change it when slim_root changes
slim_root() {
  local dir=$1
  cat > "$dir/etc/dpkg/dpkg.cfg.d/01-slim" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CONF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$dir/etc/apt/apt.conf.d/01-slim"
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
    "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/*
}

root_image() {
  if $DOCKER image inspect "$ROOT_IMAGE" >/dev/null 2>&1; then
    say "$ROOT_IMAGE is there"
    return
  fi
  local tarball=$CACHE/bookworm-minbase-$ROOTFS_VERSION.tar
  mkdir -p "$CACHE/debs"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    local dir
    dir=$(mktemp -d /tmp/videoflix-rootfs.XXXXXX)
    say "debootstrap --variant=minbase bookworm from $MIRROR"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" bookworm "$dir" "$MIRROR" > "$dir.log" 2>&1 \
      || { tail -n 20 "$dir.log" >&2; rm -rf "$dir" "$dir.log"; die "debootstrap failed"; }
    slim_root "$dir"
    rm -f "$dir.log"
    tar -C "$dir" --numeric-owner -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$dir"
  fi
  say "docker import $tarball as $ROOT_IMAGE"
  $DOCKER import --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' "$tarball" "$ROOT_IMAGE" >/dev/null
}

# The base images, saved with `docker save` once built: a later run on this machine loads them
# (seconds) instead of building them (minutes) while deploy/images/, this script's root settings and
# the week are the same (so Debian's security updates come in at least weekly). BASE_CACHE=0: build.
base_key() {
  { cat deploy/images/*; echo "$ROOTFS_VERSION $MIRROR $PREFIX"; date -u +%G-%V; } | sha256sum | cut -c1-16
}

base_images() {
  local saved
  saved=$CACHE/bases-$(base_key).tar
  if [ "${BASE_CACHE:-1}" != 0 ] && [ -s "$saved" ]; then
    say "docker load < $saved (base images built by an earlier run)"
    $DOCKER load -q -i "$saved" >/dev/null
    return
  fi
  root_image
  common_args
  for target in "${TARGETS[@]}"; do
    say "base image $PREFIX/$target:bookworm"
    buildkit "${args[@]}" --build-arg "ROOT_IMAGE=$ROOT_IMAGE" --target "$target" \
      -t "$PREFIX/$target:bookworm" -f deploy/images/Dockerfile deploy/images
  done
  if [ "${BASE_CACHE:-1}" != 0 ]; then
    say "docker save the base images to $saved"
    rm -f "$CACHE"/bases-*.tar
    local target tags=("$ROOT_IMAGE")
    for target in "${TARGETS[@]}"; do tags+=("$PREFIX/$target:bookworm"); done
    $DOCKER save -o "$saved.part" "${tags[@]}" && mv "$saved.part" "$saved"
  fi
}

app_images() {
  common_args
  # FFMPEG=wheel: the ffmpeg of the imageio-ffmpeg wheel instead of Debian's (~650 MB with its libraries).
  local bases=(--build-arg "PYTHON_IMAGE=$PREFIX/python:bookworm" --build-arg "NODE_IMAGE=$PREFIX/node:bookworm"
               --build-arg "NGINX_IMAGE=$PREFIX/nginx:bookworm" --build-arg "FFMPEG=${FFMPEG:-wheel}")
  say "app image ${VIDEOFLIX_IMAGE:-videoflix:latest}"
  buildkit "${args[@]}" "${bases[@]}" --target runtime -t "${VIDEOFLIX_IMAGE:-videoflix:latest}" .
  say "nginx image ${VIDEOFLIX_NGINX_IMAGE:-videoflix-nginx:latest}"
  buildkit "${args[@]}" "${bases[@]}" --target nginx -t "${VIDEOFLIX_NGINX_IMAGE:-videoflix-nginx:latest}" .
}

sizes() {
  $DOCKER image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
    | grep -E "^($PREFIX/|${VIDEOFLIX_IMAGE%%:*}:|${VIDEOFLIX_NGINX_IMAGE%%:*}:)" | sort || true
}

case "${1:-all}" in
  base) base_images ;;
  app) app_images ;;
  all) base_images; app_images ;;
  *) die "usage: $0 base|app|all" ;;
esac
VIDEOFLIX_IMAGE=${VIDEOFLIX_IMAGE:-videoflix:latest} VIDEOFLIX_NGINX_IMAGE=${VIDEOFLIX_NGINX_IMAGE:-videoflix-nginx:latest}
say "sizes:"
sizes
