#!/usr/bin/env bash
# Soak of `make run` with Redis (issue 10 item 2): the development server (a thread per connection)
# on a scratch SQLite database, media folder and Redis database of its own, one ready video and a
# signed-in user; then
#   150 segment requests, each on a new connection (a new server thread each),
#   64 concurrent streamers for 15 s on segment URLs (wrk),
#   32 clients on GET /api/video/ for 5 s (wrk),
# and fails unless every answer is a 200. Prints "N requests, 0 errors" per phase and in total.
#
# Usage: .ci/soak.sh   (REDIS_URL defaults to redis://127.0.0.1:6379/14; its keys get a fresh
# prefix and are deleted at the end; SOAK_SECONDS / LIST_SECONDS shorten the runs.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/14}
SOAK_SECONDS=${SOAK_SECONDS:-15}
LIST_SECONDS=${LIST_SECONDS:-5}
command -v wrk >/dev/null || { echo "soak: wrk is required (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prefix="vfsoak:$(python3 -c 'import secrets; print(secrets.token_hex(4))'):"
pgid=""
cleanup() {
  if [ -n "$pgid" ]; then
    kill -INT -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    wait "$pgid" 2>/dev/null || true
  fi
  "$PY" - "$REDIS_URL" "$prefix" <<'EOF' || true
import sys, redis
client = redis.Redis.from_url(sys.argv[1])
keys = list(client.scan_iter(sys.argv[2] + "*"))
if keys:
    client.delete(*keys)
EOF
  rm -rf "$work"
}
trap cleanup EXIT

export VIDEOFLIX_ENV=development PORT=$port REDIS_URL REDIS_PREFIX=$prefix LOG_LEVEL=WARNING \
  DATABASE_URL="sqlite:///$work/soak.sqlite3" HUEY_FILE="$work/huey.sqlite3" MEDIA_ROOT="$work/media"
"$PY" -m flask --app wsgi db upgrade >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log"; exit 1; }

# One user and one ready video (a real HLS folder made by ffmpeg); prints "<access token> <segment path>".
read -r token segment < <("$PY" - <<'EOF'
import os, secrets, subprocess, uuid
from pathlib import Path

from videoflix import create_app
from videoflix.auth import sessions
from videoflix.auth.users import create_user
from videoflix.extensions import db
from videoflix.videos.media.ffmpeg import ffmpeg_exe
from videoflix.videos.models import READY, Video

app = create_app()
version = uuid.uuid4().hex[:12]
with app.app_context():
    video = Video(title="Soak", description="A soak test film.", category="Drama", status=READY, progress=100,
                  duration=4.0)
    db.session.add(video)
    db.session.flush()
    hls = Path(os.environ["MEDIA_ROOT"]) / "hls" / str(video.id) / version
    (hls / "480p").mkdir(parents=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=10:duration=4",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", "-f", "hls",
                    "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_filename",
                    str(hls / "480p" / "seg%03d.ts"), str(hls / "480p" / "index.m3u8")], check=True, timeout=120)
    video.hls_dir = f"{video.id}/{version}"
    video.renditions = [{"label": "480p", "width": 320, "height": 180, "bandwidth": 300_000,
                         "average_bandwidth": 200_000, "codecs": "avc1.42c00d", "segments": 2}]
    user = create_user("soak@example.com", secrets.token_urlsafe(16), active=True)
    db.session.flush()
    access, _ = sessions.issue(user)
    db.session.commit()
    print(access, f"/api/video/{video.id}/480p/seg000.ts?v={version}")
EOF
)
[ -n "$segment" ] || { echo "soak: seeding failed" >&2; exit 1; }

setsid "$PY" -m flask --app wsgi dev --no-worker --port "$port" >"$work/run.log" 2>&1 &
pgid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 120); do
  curl -fs -o /dev/null "$base/api/health/" && break
  kill -0 "$pgid" 2>/dev/null || { cat "$work/run.log"; echo "soak: the server exited early" >&2; exit 1; }
  sleep 0.5
done
curl -fs -o /dev/null "$base/api/health/" || { tail -40 "$work/run.log"; echo "soak: the server never answered" >&2; exit 1; }

total=0
errors=0
report() {  # phase name, requests, errors
  echo "soak: $1: $2 requests, $3 errors"
  total=$((total + $2))
  errors=$((errors + $3))
}

# Phase 1: a new connection (and so a new server thread) per request.
read -r n bad < <("$PY" - "$port" "$segment" "$token" <<'EOF'
import http.client, sys
port, path, token = sys.argv[1:]
bad = 0
for _ in range(150):
    connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    connection.request("GET", path, headers={"Cookie": f"access_token={token}"})
    response = connection.getresponse()
    response.read()
    bad += response.status != 200
    connection.close()
print(150, bad)
EOF
)
report "150 segment requests, one connection each" "$n" "$bad"

wrk_run() {  # name, connections, seconds, path, header
  local out requests non2xx sockets
  out=$(wrk -t2 -c"$2" -d"$3"s --timeout 10s -H "$5" "$base$4")
  requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' <<<"$out")
  non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9][0-9]*\).*/\1/p' <<<"$out")
  sockets=$(sed -n 's/^ *Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1+\2+\3+\4/p' <<<"$out")
  report "$1" "${requests:-0}" "$(( ${non2xx:-0} + ${sockets:-0} ))"
  [ -n "$requests" ] || { echo "$out"; echo "soak: wrk gave no figures" >&2; exit 1; }
}
wrk_run "64 streamers for ${SOAK_SECONDS} s" 64 "$SOAK_SECONDS" "$segment" "Cookie: access_token=$token"
wrk_run "32 clients on GET /api/video/ for ${LIST_SECONDS} s" 32 "$LIST_SECONDS" /api/video/ "Authorization: Bearer $token"

echo "soak: total $total requests, $errors errors"
if [ "$errors" -ne 0 ]; then
  grep -m 5 -i "error" "$work/run.log" >&2 || true
  exit 1
fi
