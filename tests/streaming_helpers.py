"""Streaming fixtures shared by the streaming, delivery and fast-path tests (conftest.py imports
the fixtures): real HLS folders, made once per session by ffmpeg (two renditions, 1 s segments)
and copied under MEDIA_ROOT/hls/<id>/<version>/ for each video row.
"""
import os
import shutil
import subprocess
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from videoflix.extensions import db
from videoflix.videos.media.ffmpeg import ffmpeg_exe
from videoflix.videos.models import READY, Video
from videoflix.videos.storage.keys import media_store

FFMPEG = ffmpeg_exe()  # the system's, else the imageio-ffmpeg wheel's
SIZES = {"480p": (160, 90), "720p": (320, 180)}


@pytest.fixture(scope="session")
def hls_template(tmp_path_factory):
    """A finished HLS folder (master, 480p and 720p playlists with 1 s segments, thumbnail)."""
    root = tmp_path_factory.mktemp("hls-template")
    for label, (w, h) in SIZES.items():
        (root / label).mkdir()
        subprocess.run(
            [FFMPEG, "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate=10:duration=3",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p",
             "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
             "-hls_segment_filename", str(root / label / "seg%03d.ts"), str(root / label / "index.m3u8")],
            check=True, timeout=60,
        )
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x90:rate=1", "-frames:v", "1",
         str(root / "thumbnail.jpg")],
        check=True, timeout=60,
    )
    # What the transcoder's hls.write_master writes next to the renditions (same figures as the
    # row's renditions below); the master route sends this file, it does not rebuild it.
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for r in rendition_dicts(SIZES):
        lines += [(f"#EXT-X-STREAM-INF:BANDWIDTH={r['bandwidth']},AVERAGE-BANDWIDTH={r['average_bandwidth']},"
                   f"RESOLUTION={r['width']}x{r['height']},CODECS=\"{r['codecs']}\",FRAME-RATE=10.000"),
                  f"{r['label']}/index.m3u8"]
    (root / "master.m3u8").write_text("\n".join(lines) + "\n")
    return root


def rendition_dicts(labels):
    return [
        {"label": label, "width": SIZES.get(label, (640, 360))[0], "height": SIZES.get(label, (640, 360))[1],
         "bandwidth": 200_000 * (i + 1), "average_bandwidth": 150_000 * (i + 1),
         "codecs": "avc1.42c00d", "segments": 3}
        for i, label in enumerate(labels)
    ]


@pytest.fixture
def make_video(app, hls_template):
    """make_video(title=..., status=READY, files=True, labels=("480p", "720p"), ...) -> id.

    With files, the template is copied to MEDIA_ROOT/hls/<id>/<version>/ and the row points at it.
    """

    def make(title="Big Buck", *, status=READY, files=True, labels=("480p", "720p"), created_at=None,
             category="Drama", description="A film.", error=None, thumbnail=True):
        with app.app_context():
            video = Video(title=title, description=description, category=category, status=status,
                          error=error, progress=100 if status == READY else 40, duration=3.0,
                          created_at=created_at or datetime.now(UTC))
            db.session.add(video)
            db.session.flush()
            if files:
                version = uuid.uuid4().hex[:12]
                hls_dir = f"{video.id}/{version}"
                copy_version(app, hls_template, hls_dir)
                video.hls_dir = hls_dir
                video.renditions = rendition_dicts(labels)
                video.thumbnail = f"{hls_dir}/thumbnail.jpg" if thumbnail else None
            db.session.commit()
            return video.id

    return make


def copy_version(app, template, hls_dir):
    """The template as the published version hls_dir, in the app's store (TEST_MEDIA_STORAGE);
    the local folder it would be in (only there with local storage)."""
    target = os.path.join(app.config["MEDIA_ROOT"], "hls", hls_dir)
    with app.app_context():
        store = media_store()
        if store.local:
            shutil.copytree(template, target)
        else:
            for path in sorted(template.rglob("*")):
                if path.is_file():
                    store.put_file(f"hls/{hls_dir}/{path.relative_to(template).as_posix()}", path)
    return target


@pytest.fixture
def count_queries(app):
    """with count_queries() as statements: ... -> the SQL statements run meanwhile."""

    @contextmanager
    def counting():
        statements = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return counting
