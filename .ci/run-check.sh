#!/usr/bin/env bash
# `make run` as the README promises it: a virtual environment from requirements.txt alone (no test
# tools that could hide a missing runtime dependency), migrations, the web server and the worker
# on the embedded default. Checks health, a demo login and that the worker runs; stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-run
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pgid=""
cleanup() {
  if [ -n "$pgid" ]; then
    kill -INT -- "-$pgid" 2>/dev/null || true  # Ctrl-C, as a developer stops it
    for _ in $(seq 20); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    wait "$pgid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export PORT=$port DATABASE_URL="sqlite:///$work/run.sqlite3" HUEY_FILE="$work/huey.sqlite3" MEDIA_ROOT="$work/media"
setsid make VENV="$VENV" run >"$work/run.log" 2>&1 &
pgid=$!
for _ in $(seq 300); do
  curl -fs -o /dev/null "http://127.0.0.1:$port/api/health/" && break
  kill -0 "$pgid" 2>/dev/null || { cat "$work/run.log"; echo "make run exited early" >&2; exit 1; }
  sleep 1
done
curl -fs "http://127.0.0.1:$port/api/health/" >/dev/null || { tail -40 "$work/run.log"; echo "make run never answered" >&2; exit 1; }
curl -fs -X POST "http://127.0.0.1:$port/api/login/" -H 'Content-Type: application/json' \
  -d '{"email": "test@example.com", "password": "testpassword"}' | grep -q '"Login successful"' \
  || { tail -40 "$work/run.log"; echo "demo login failed" >&2; exit 1; }
grep -q "Demo account: test@example.com" "$work/run.log" || { echo "demo accounts were not printed" >&2; exit 1; }
for _ in $(seq 30); do pgrep -g "$pgid" -f "flask --app wsgi worker" >/dev/null && break; sleep 1; done
pgrep -g "$pgid" -f "flask --app wsgi worker" >/dev/null || { tail -40 "$work/run.log"; echo "the worker is not running" >&2; exit 1; }
echo "make run: web server and worker up on 127.0.0.1:$port, demo login works"
