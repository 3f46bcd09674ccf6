#!/usr/bin/env bash
# `make smoke-compose`: the Compose deployment built and run for real, on a Docker engine of its own.
#
#   1. docker.io, debootstrap and docker-compose (Debian's, 1.29) when missing
#   2. a dockerd of its own: socket, data root and exec root below a temporary folder, no bridge
#   3. `make images`: the base images from Debian's packages, the app image, the nginx image
#      (base images are saved to $IMAGE_CACHE and loaded from there by the next run on this machine)
#   4. the stack (docker-compose.yml + .ci/compose.host.yml: the host's network, ports 204xx),
#      an SMTP sink (aiosmtpd) on the host; every service with a healthcheck reports healthy
#   5. .ci/compose_e2e.py through nginx: register, activate from the e-mail, tus upload, transcode,
#      `docker stop` of the worker mid-transcode, every segment decoded by ffmpeg, down + up
#   6. down -v, dockerd stopped by its PID, its folders removed (also on failure)
#
# Needs root and the dev requirements in .venv. Exit status 0 only if every step passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
PORT_BASE=${STACK_PORT_BASE:-204}   # every port the stack listens on is ${PORT_BASE}NN
export IMAGE_CACHE=${IMAGE_CACHE:-/var/cache/videoflix-images}
STARTED=$SECONDS

step() { printf '\n--> compose: %s (%ss)\n' "$*" "$((SECONDS - STARTED))"; }
fail() { printf '\n!!! compose: %s\n' "$*" >&2; exit 1; }

step "docker.io, debootstrap, docker-compose"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ -x /usr/bin/docker-compose ] || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's client (20.10) has BuildKit built in; a newer docker earlier on PATH may lack buildx.
export DOCKER=/usr/bin/docker
COMPOSE_BIN=/usr/bin/docker-compose
$DOCKER --version && $COMPOSE_BIN --version

WORK=$(mktemp -d "${COMPOSE_WORK_PREFIX:-/tmp/videoflix-compose}.XXXXXX")
export DOCKER_HOST="unix://$WORK/docker.sock"
DOCKERD_PID=""
SMTP_PID=""

cleanup() {
  local status=$?
  trap - EXIT
  if [ "$status" -ne 0 ] && [ -x "$WORK/compose" ]; then
    "$WORK/compose" ps >&2 || true
    "$WORK/compose" logs --no-color --tail=30 >&2 || true
  fi
  [ -x "$WORK/compose" ] && { "$WORK/compose" down -v --timeout 20 >/dev/null 2>&1 || true; }
  [ -z "$SMTP_PID" ] || kill "$SMTP_PID" 2>/dev/null || true
  if [ -n "$DOCKERD_PID" ]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
  fi
  # Whatever the engine left mounted below its folders (overlays, netns, shm).
  grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | while read -r mount; do umount -l "$mount" || true; done
  rm -rf "$WORK"
  printf -- '--> compose: took %ss in all\n' "$((SECONDS - STARTED))"
  exit "$status"
}
trap cleanup EXIT

step "dockerd of our own in $WORK"
dockerd --host "$DOCKER_HOST" --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/docker.pid" \
  --bridge none --iptables=false --ip6tables=false >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 100); do $DOCKER info >/dev/null 2>&1 && break; kill -0 "$DOCKERD_PID" || break; sleep 0.3; done
$DOCKER info >/dev/null 2>&1 || { tail -n 30 "$WORK/dockerd.log" >&2; fail "dockerd did not start"; }

step "make images (base images from Debian's packages, then the app and nginx images)"
# TLS to the package index may be intercepted (as here): the builds trust this machine's CA bundle
# (a build secret, never in an image). Base images come from the cache when their inputs did not change.
export EXTRA_CA_BUNDLE=${EXTRA_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$EXTRA_CA_BUNDLE" ] || unset EXTRA_CA_BUNDLE
bash deploy/images/build.sh all

step "images worth shipping: non-root app, no compiler or pip, no trace of the build's CA, app <= 600 MB"
user=$($DOCKER image inspect --format '{{.Config.User}}' videoflix:latest)
[ "$user" = "10001:10001" ] || fail "the app image runs as '$user'"
$DOCKER run --rm --network none --entrypoint sh videoflix:latest -c \
  '! command -v gcc && ! command -v cc && ! command -v pip && ! test -e /opt/venv/bin/pip && ffmpeg -hide_banner -version | head -n 1' \
  || fail "the app image holds a compiler or pip, or has no ffmpeg"
for image in videoflix:latest videoflix-nginx:latest videoflix-base/{python,node,nginx,postgres,redis,seaweedfs}:bookworm; do
  $DOCKER run --rm --network none --user 0 --entrypoint sh "$image" -c \
    'test ! -e /tmp/ca.pem && test ! -e /tmp/apt-ca.pem && test ! -e /etc/apt/apt.conf.d/99extra-ca && test ! -e /run/secrets/extra_ca' \
    || fail "$image keeps the build's CA bundle"
done
size=$($DOCKER image inspect --format '{{.Size}}' videoflix:latest)
[ "$size" -le 600000000 ] || fail "the app image is $size bytes (> 600 MB)"
echo "app image: $((size / 1000000)) MB, runs as $user; no compiler, no pip; no image keeps the CA"

step "the stack: host network, ports ${PORT_BASE}xx, an SMTP sink on ${PORT_BASE}90"
# Compose 1.29 cannot take a published port away in an override file (v2's `!reset` can), and
# Docker refuses one on the host's network: nginx's `ports:` is left out of this run's copy.
sed '/^  nginx:$/,/^  [a-z]/{/^    ports:$/,/^      - /d}' docker-compose.yml > "$WORK/docker-compose.yml"
cp .ci/compose.host.yml "$WORK/"
sed -e "s/^SECRET_KEY=.*/SECRET_KEY=$($PY -c 'import secrets; print(secrets.token_urlsafe(48))')/" \
    -e "s/^DB_PASSWORD=.*/DB_PASSWORD=ci-$($PY -c 'import secrets; print(secrets.token_hex(12))')/" \
    -e "s/^S3_SECRET_ACCESS_KEY=.*/S3_SECRET_ACCESS_KEY=$($PY -c 'import secrets; print(secrets.token_hex(20))')/" \
    .env.example > "$WORK/.env"
cat >> "$WORK/.env" <<EOF
COMPOSE_PROJECT_NAME=videoflix-ci
EMAIL_HOST=127.0.0.1
EMAIL_PORT=${PORT_BASE}90
EMAIL_USE_TLS=0
FRONTEND_URL=http://frontend.compose.test
LOG_JSON=0
WEB_CONCURRENCY=2
FFMPEG_THREADS=2
WORKER_SHUTDOWN_TIMEOUT=1
RECOVERY_INTERVAL=5
POSTGRES_IMAGE=videoflix-base/postgres:bookworm
REDIS_IMAGE=videoflix-base/redis:bookworm
SEAWEEDFS_IMAGE=videoflix-base/seaweedfs:bookworm
HTTP_PORT=${PORT_BASE}80
STACK_WEB_PORT=${PORT_BASE}81
STACK_WORKER_METRICS_PORT=${PORT_BASE}82
STACK_DB_PORT=${PORT_BASE}32
STACK_REDIS_PORT=${PORT_BASE}79
STACK_S3_PORT=${PORT_BASE}36
STACK_WEED_BASE=${PORT_BASE}1
EOF
cat > "$WORK/compose" <<EOF
#!/bin/sh
cd "$WORK" && DOCKER_HOST="$DOCKER_HOST" exec $COMPOSE_BIN --ansi never -f docker-compose.yml -f compose.host.yml "\$@"
EOF
chmod +x "$WORK/compose"
"$PY" -m aiosmtpd -n -l "127.0.0.1:${PORT_BASE}90" -c aiosmtpd.handlers.Mailbox "$WORK/maildir" >"$WORK/smtp.log" 2>&1 &
SMTP_PID=$!
test "$("$WORK/compose" config | grep -c '^    ports:')" = 0 || fail "a published port is left"
"$WORK/compose" up -d 2>&1

health_of() { $DOCKER inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1"; }
all_healthy() {
  local id ok=0
  for id in $("$WORK/compose" ps -q db redis objectstore web nginx); do
    [ "$(health_of "$id")" = healthy ] || ok=1
  done
  return $ok
}
for _ in $(seq 150); do all_healthy && break; sleep 1; done
for id in $("$WORK/compose" ps -q); do
  printf '    %-40s %-10s health: %s\n' "$($DOCKER inspect --format '{{.Name}}' "$id")" \
    "$($DOCKER inspect --format '{{.State.Status}}' "$id")" "$(health_of "$id")"
done
all_healthy || fail "not every healthcheck reports healthy"
step "db, redis, objectstore, web and nginx report healthy; migrate and storage-init exited 0"

step "end to end through nginx (.ci/compose_e2e.py)"
env_value() { grep -E "^$1=" "$WORK/.env" | tail -n 1 | cut -d= -f2-; }
"$PY" .ci/compose_e2e.py --base-url "http://127.0.0.1:${PORT_BASE}80" --compose "$WORK/compose" \
  --dsn "postgresql://$(env_value DB_USER):$(env_value DB_PASSWORD)@127.0.0.1:${PORT_BASE}32/$(env_value DB_NAME)" \
  --maildir "$WORK/maildir"
for _ in $(seq 150); do all_healthy && break; sleep 1; done
all_healthy || fail "after down + up, not every healthcheck reports healthy"
step "after down + up every healthcheck reports healthy again"

step "image sizes"
$DOCKER image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^(videoflix|videoflix-nginx|videoflix-base/)' | sort
printf '\ncompose: all passed\n'
