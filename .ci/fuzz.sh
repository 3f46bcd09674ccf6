#!/usr/bin/env bash
# Fuzz the API with schemathesis against the OpenAPI document it serves: no 5xx, and every
# response (status, content type, body) must match the document. Runs gunicorn on a scratch
# SQLite database with a seeded, logged-in staff member so protected routes are reached too, the
# tus routes included (an unfinished upload with the document's example id; tus bodies are sent
# as bytes: .ci/schemathesis_hooks.py). FUZZ_PORT: the port to serve on (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
work=$(mktemp -d)
worker='' server=''
cleanup() {
  for pid in $worker $server; do kill "$pid" 2>/dev/null || true; done
  for pid in $worker $server; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
port=${FUZZ_PORT:-$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export VIDEOFLIX_ENV=development DEBUG=1 EMAIL_BACKEND=console \
  DATABASE_URL="sqlite:///$work/fuzz.sqlite3" HUEY_FILE="$work/huey.sqlite3" MEDIA_ROOT="$work/media" \
  LOGIN_FAILURES_PER_ACCOUNT_CLIENT="10000/minute" LOGIN_FAILURES_PER_CLIENT="10000/minute" \
  LOGIN_ATTEMPTS_PER_ACCOUNT="10000/minute" REGISTER_LIMIT="10000/minute" \
  REGISTER_LIMIT_PER_DOMAIN="10000/minute" PASSWORD_RESET_LIMIT="10000/minute" TUS_MAX_UNFINISHED=0 \
  SCHEMATHESIS_HOOKS=.ci/schemathesis_hooks.py
unset REDIS_URL
$PY -m flask --app wsgi db upgrade >/dev/null
$PY -m flask --app wsgi create-user fuzz@example.com --password 'Fuzzing-Is-Fun-2026' --staff >/dev/null
# One ready video, so the streaming routes are reached with ids that exist (id 1).
ffmpeg -v error -f lavfi -i testsrc2=size=640x360:rate=24:duration=3 -f lavfi -i sine=duration=3 \
  -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$work/clip.mp4"
$PY -m flask --app wsgi worker --workers 1 >"$work/worker.log" 2>&1 &
worker=$!
$PY -m flask --app wsgi add-video "$work/clip.mp4" --title "Fuzz clip" --category Test --wait >/dev/null
kill -TERM "$worker"; wait "$worker" || true
worker=''
token=$($PY - <<'PY'
from wsgi import app
with app.app_context():
    from videoflix.auth.users import find_user
    from videoflix.auth.sessions import issue
    from videoflix.extensions import db
    from videoflix.openapi import PARAM_EXAMPLES, TERMINATED_UPLOAD_EXAMPLE
    from videoflix.videos.models.tus_upload import TusUpload
    from videoflix.videos.uploads import tus

    user = find_user("fuzz@example.com")
    access, _ = issue(user)
    # Unfinished uploads the examples phase reaches: one for HEAD and PATCH, one for DELETE.
    for upload_id in (PARAM_EXAMPLES["upload_id"], TERMINATED_UPLOAD_EXAMPLE):
        tus.chunks().create(upload_id)
        db.session.add(TusUpload(id=upload_id, owner_id=user.id, length=1 << 20, expires_at=tus.expires_from(),
                                 upload_metadata={"title": "Fuzzed", "category": "Test", "filename": "f.mp4"}))
    db.session.commit()
    print(access)
PY
)
.venv/bin/gunicorn --bind "127.0.0.1:$port" --workers 2 --threads 4 --log-level warning wsgi:app &
server=$!
up=0
for _ in $(seq 100); do
  if curl -sf "http://127.0.0.1:$port/api/openapi.json" >/dev/null; then up=1; break; fi
  kill -0 "$server" 2>/dev/null || break  # gunicorn died: no point in waiting
  sleep 0.2
done
if [ "$up" != 1 ]; then
  echo "fuzz: gunicorn never answered http://127.0.0.1:$port/api/openapi.json (see its output above)" >&2
  exit 1
fi

.venv/bin/schemathesis run "http://127.0.0.1:$port/api/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --header "Authorization: Bearer $token" \
  --max-examples "${FUZZ_EXAMPLES:-60}" --seed 20261125 --request-timeout 20 \
  --phases examples,coverage,fuzzing --generation-database none
