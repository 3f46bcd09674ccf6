#!/usr/bin/env bash
# Redis outage (issue 10 item 3): the app under `flask run` against a redis-server of its own on a
# free port, which the test stops and starts, then hangs (SIGSTOP) and resumes. Fails on any 500 or
# traceback, on a route that needs Redis not answering 503 + Retry-After, on a revoked token let
# through, or when the app does not recover without a restart. Prints each route's answer and time
# while Redis is down and after it is back.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "outage.sh: redis-server is not installed" >&2; exit 1; }
CI=true .venv/bin/python -m pytest -q -s tests/platform/test_redis_outage.py 2>&1 \
  | grep -Ev '" (200|201|400|401|429|503) -$|^Health check redis failed: CircuitOpen'
