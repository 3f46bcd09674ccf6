#!/bin/sh
# Run the test suite with only the ffmpeg of the imageio-ffmpeg wheel, even on a host with a system
# ffmpeg. FFMPEG_BINARY is read in one place (videoflix/videos/media/ffmpeg.py: ffmpeg_exe), which
# every ffmpeg run of the app and of the tests goes through (tests/fixtures/clips.py keys its clip
# cache by the binary's version).
# Usage: .ci/wheel-ffmpeg.sh [pytest args...]
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
FFMPEG_BINARY=$("$PY" -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
export FFMPEG_BINARY
echo "wheel-ffmpeg: $("$FFMPEG_BINARY" -hide_banner -version | head -n 1)"
exec "$PY" -m pytest -q "$@"
