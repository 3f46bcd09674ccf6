#!/usr/bin/env bash
# Production smoke test without Docker: the containers' own commands, run natively.
#
#   migrate  flask --app wsgi db upgrade         (on a fresh PostgreSQL database, videoflix_smoke)
#   web      gunicorn --config gunicorn.conf.py   (VIDEOFLIX_ENV=production, Secure cookies)
#   worker   flask --app wsgi worker              (Huey on Redis, database $SMOKE_REDIS_DB)
#   nginx    deploy/nginx/compose.conf.template   (X-Accel-Redirect media), when nginx is installed
#   smtp     aiosmtpd, storing mail in a maildir the flow reads the activation link from
#
# then .ci/smoke.py runs the user flow. Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust)
# and Redis on 127.0.0.1:6379, ffmpeg, and the dev requirements in .venv. Every process started
# here is stopped on exit; the worker must stop cleanly on SIGTERM. Exit status: 0 only if all passed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
PGURL=${SMOKE_PG:-postgresql://postgres@127.0.0.1:5432}
SMOKE_DB=${SMOKE_DB_NAME:-videoflix_smoke}
REDIS_DB=${SMOKE_REDIS_DB:-14}
REDIS_BASE=${SMOKE_REDIS:-redis://127.0.0.1:6379}

step() { printf '\n--> smoke: %s\n' "$*"; }
fail() { printf '\n!!! smoke: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/videoflix-smoke.XXXXXX)
chmod 755 "$WORK"  # nginx's workers (nobody) read the media below it
declare -A PIDS=()

cleanup() {
  local status=$?
  trap - EXIT
  for name in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$name]}" 2>/dev/null || true
  done
  for name in "${!PIDS[@]}"; do
    # Bounded wait; whatever is still there then is killed.
    for _ in $(seq 100); do kill -0 "${PIDS[$name]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PIDS[$name]}" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for log in "$WORK"/*.log; do
      [ -f "$log" ] || continue
      printf '\n--- last lines of %s\n' "$(basename "$log")" >&2
      tail -n 25 "$log" >&2
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # wait_http URL SECONDS NAME: until URL answers 200
  local url=$1 seconds=$2 name=$3
  for _ in $(seq $((seconds * 5))); do
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  fail "$name did not answer 200 at $url within ${seconds}s"
}

alive() {  # alive NAME: fail when a started process has died
  kill -0 "${PIDS[$1]}" 2>/dev/null || fail "$1 exited early"
}

step "fresh database $SMOKE_DB and Redis database $REDIS_DB"
psql "$PGURL/postgres" -v ON_ERROR_STOP=1 -q \
  -c "DROP DATABASE IF EXISTS $SMOKE_DB WITH (FORCE)" -c "CREATE DATABASE $SMOKE_DB"
redis-cli -u "$REDIS_BASE/$REDIS_DB" flushdb >/dev/null

SMTP_PORT=$(free_port)
APP_PORT=$(free_port)
HTTP_PORT=$(free_port)
# Only what the production image sets, plus this run's addresses: nothing leaks in from the caller.
unset DATABASE_URL DB_NAME DB_USER DB_PASSWORD DB_HOST DB_PORT TEST_DATABASE_URL TEST_REDIS_URL \
  CORS_ORIGINS EXPOSE_ACTIVATION_TOKEN HUEY_FILE FLASK_DEBUG
export VIDEOFLIX_ENV=production DEBUG=0
SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')
export SECRET_KEY
export DATABASE_URL="$PGURL/$SMOKE_DB"
export REDIS_URL="$REDIS_BASE/$REDIS_DB" REDIS_PREFIX="smoke:"
export EMAIL_BACKEND=smtp EMAIL_HOST=127.0.0.1 EMAIL_PORT=$SMTP_PORT EMAIL_USE_TLS=0 EMAIL_USE_SSL=0 \
  EMAIL_HOST_USER= EMAIL_HOST_PASSWORD= DEFAULT_FROM_EMAIL="Videoflix Smoke <smoke@example.com>"
export FRONTEND_URL=http://frontend.smoke.test
export MEDIA_ROOT="$WORK/media"
export HOST=127.0.0.1 PORT=$APP_PORT WEB_CONCURRENCY=2 WEB_THREADS=4
export WORKERS=1 LOG_JSON=1 FLASK_APP=wsgi
mkdir -p "$MEDIA_ROOT"  # not the maildir: aiosmtpd creates it, with cur/ new/ tmp/

step "SMTP listener (aiosmtpd) on 127.0.0.1:$SMTP_PORT"
"$PY" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$WORK/maildir" \
  >"$WORK/smtp.log" 2>&1 &
PIDS[smtp]=$!

step "migrate: flask --app wsgi db upgrade"
"$PY" -m flask --app wsgi db upgrade >"$WORK/migrate.log" 2>&1 || fail "migration failed"
tables=$(psql "$PGURL/$SMOKE_DB" -Atc "select count(*) from information_schema.tables where table_schema = 'public'")
[ "$tables" -ge 3 ] || fail "migration created only $tables tables"
echo "    $tables tables"

BASE_URL="http://127.0.0.1:$APP_PORT"
NGINX_FLAG=()
if command -v nginx >/dev/null; then
  export PROXY_COUNT=1 MEDIA_ACCEL_REDIRECT=/protected-media/
  step "nginx on 127.0.0.1:$HTTP_PORT with deploy/nginx/compose.conf.template"
  mkdir -p "$WORK/nginx/logs" "$WORK/static/admin" "$WORK/static/app"
  # As the nginx image does: body-size.envsh computes NGINX_MAX_BODY_MB, envsubst renders.
  # S3_UPSTREAM: the bucket's location is unused here (local media), but the template names it.
  # NGINX_PORT: the image's 80, which the sed below turns into 127.0.0.1:$HTTP_PORT.
  export MAX_UPLOAD_MB=64 APP_UPSTREAM="127.0.0.1:$APP_PORT" S3_UPSTREAM="127.0.0.1:8333" NGINX_PORT=80
  . deploy/nginx/body-size.envsh
  [ "$NGINX_MAX_BODY_MB" = 80 ] || fail "body-size.envsh computed $NGINX_MAX_BODY_MB, not 64 + 16"
  envsubst '${NGINX_MAX_BODY_MB} ${APP_UPSTREAM} ${S3_UPSTREAM} ${NGINX_PORT}' <deploy/nginx/compose.conf.template \
    | sed -e "s#listen 80 default_server;#listen 127.0.0.1:$HTTP_PORT default_server;#" \
          -e "/listen \[::\]:80/d" \
          -e "s#/srv/media/#$MEDIA_ROOT/#" -e "s#/srv/static/#$WORK/static/#" \
          -e "s#/var/log/nginx/#$WORK/nginx/logs/#" \
          -e "s#/etc/nginx/videoflix/#$PWD/deploy/nginx/#" >"$WORK/nginx/site.conf"
  ! grep -n '\${' "$WORK/nginx/site.conf" || fail "the template uses a variable nobody sets"
  cat >"$WORK/nginx/nginx.conf" <<EOF
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.log warn;
events {}
http {
    include /etc/nginx/mime.types;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    include $WORK/nginx/site.conf;
}
EOF
  nginx -t -q -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" || fail "nginx rejected the rendered compose config"
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -g 'daemon off;' &
  PIDS[nginx]=$!
  BASE_URL="http://127.0.0.1:$HTTP_PORT"
  NGINX_FLAG=(--through-nginx)
else
  echo "    nginx is not installed: the flow talks to gunicorn directly"
fi

step "web: gunicorn --config gunicorn.conf.py wsgi:app on 127.0.0.1:$APP_PORT"
"$PY" -m gunicorn --config gunicorn.conf.py wsgi:app >"$WORK/web.log" 2>&1 &
PIDS[web]=$!

step "worker: flask --app wsgi worker"
"$PY" -m flask --app wsgi worker >"$WORK/worker.log" 2>&1 &
PIDS[worker]=$!

wait_http "http://127.0.0.1:$APP_PORT/api/health/" 60 "gunicorn"
[ -z "${PIDS[nginx]:-}" ] || wait_http "$BASE_URL/api/health/" 30 "nginx"
alive worker
alive smtp

step "flow: .ci/smoke.py against $BASE_URL"
"$PY" .ci/smoke.py --base-url "$BASE_URL" --maildir "$WORK/maildir" --frontend-url "$FRONTEND_URL" \
  --work "$WORK" --max-upload-mb "${MAX_UPLOAD_MB:-4096}" "${NGINX_FLAG[@]}" || fail "the smoke flow failed"

step "logs are JSON lines that carry request ids and task names"
"$PY" - "$WORK/web.log" "$WORK/worker.log" <<'EOF' || fail "log check failed"
import json, sys
web = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
worker = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
access = [r for r in web if r.get("name") == "videoflix.access"]
assert access and all(r["request_id"] != "-" for r in access), "request lines without ids"
assert any(r.get("task_id") for r in worker), "no worker line names its task"
print(f"    {len(access)} request lines, {sum(1 for r in worker if r.get('task_id'))} task lines")
EOF

step "no activation or reset token in any log"
# The app logs those routes by their URL rule and nginx by a redacted URI; a token is the
# path segment after the uid, 20+ URL-safe characters.
token_re='/api/(activate|password_confirm)/[^/ ]+/[A-Za-z0-9_.-]{20,}'
if grep -rEq "$token_re" "$WORK"/*.log "$WORK"/nginx/logs/ 2>/dev/null; then
  grep -rE "$token_re" "$WORK"/*.log "$WORK"/nginx/logs/ | head -3
  fail "a one-time token was written to a log"
fi
if [ -n "${PIDS[nginx]:-}" ]; then
  grep -q "/api/activate/[^/ ]*/REDACTED" "$WORK"/nginx/logs/*.log || fail "nginx did not log the (redacted) activation"
fi

step "worker stops cleanly on SIGTERM"
kill -TERM "${PIDS[worker]}"
for _ in $(seq 300); do kill -0 "${PIDS[worker]}" 2>/dev/null || break; sleep 0.1; done
if kill -0 "${PIDS[worker]}" 2>/dev/null; then fail "worker still running 30s after SIGTERM"; fi
worker_status=0
wait "${PIDS[worker]}" || worker_status=$?
unset 'PIDS[worker]'
[ "$worker_status" -eq 0 ] || fail "worker exited with $worker_status after SIGTERM"
grep -q "Shutting down gracefully" "$WORK/worker.log" || fail "worker did not shut down gracefully"

step "smoke passed"
