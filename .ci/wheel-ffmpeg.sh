#!/bin/sh
# Run the test suite with only the ffmpeg of the imageio-ffmpeg wheel, even on a host with a system
# ffmpeg: FFMPEG_BINARY is honoured by the app (config), the transcoder (ffrun.ffmpeg_exe) and the
# clip helper (tests/fixtures/clips.py, whose cache is keyed by the binary's version).
# Usage: .ci/wheel-ffmpeg.sh [pytest args...]
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
FFMPEG_BINARY=$("$PY" -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
export FFMPEG_BINARY
echo "wheel-ffmpeg: $("$FFMPEG_BINARY" -hide_banner -version | head -n 1)"
exec "$PY" -m pytest -q "$@"
