"""The media layout is the one source of truth: a rung added to layout.LADDER is planned by the
transcoder and served by every path (the Flask routes, the WSGI fast path, X-Accel-Redirect), and
the file names every path uses are layout's.

The new rung is added the way a developer would add it: one line in layout.py. The check runs in a
fresh interpreter that loads that edited layout.py before anything else of the app, so every
module derives its labels and patterns from it as it would after such a commit.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from videoflix.videos.media import layout
from videoflix.videos.media.plan import plan_renditions
from videoflix.videos.media.probe import SourceInfo

ROOT = Path(__file__).resolve().parents[2]
NEW_RUNG = '    Rung("1440p", 1440, 9_000_000, 18_000_000, 160_000),\n'

CHECK = r'''
import json, sys, types
from pathlib import Path

root, media_root, new_rung = sys.argv[1], sys.argv[2], sys.argv[3]
path = Path(root, "videoflix/videos/media/layout.py")
source = path.read_text()
last = '    Rung("1080p",'
at = source.index("\n", source.index(last)) + 1
module = types.ModuleType("videoflix.videos.media.layout")
module.__file__ = str(path)
sys.modules[module.__name__] = module
exec(compile(source[:at] + new_rung + source[at:], str(path), "exec"), module.__dict__)

from werkzeug.test import Client

from videoflix import create_app
from videoflix.auth.sessions import issue
from videoflix.auth.users import create_user
from videoflix.extensions import db
from videoflix.videos.delivery.fastpath import SegmentFastPath
from videoflix.videos.media import layout
from videoflix.videos.media.probe import SourceInfo
from videoflix.videos.media.plan import plan_renditions
from videoflix.videos.models import READY, Video

info = SourceInfo(path="x", width=2560, height=1440, coded_width=2560, coded_height=1440, rotation=0,
                  duration=10.0, fps=30.0, has_audio=False, video_codec="mpeg4", pix_fmt="yuv420p",
                  profile=None, level=None, video_bitrate=8_000_000, peak_bitrate=8_000_000,
                  max_keyframe_gap=2.0)
planned = [r.label for r in plan_renditions(info)]

results = {"planned": planned, "labels": sorted(layout.LABELS)}
for accel in (None, "/protected-media/"):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "MEDIA_ROOT": media_root,
                      "MEDIA_ACCEL_REDIRECT": accel})
    with app.app_context():
        db.create_all()
        user = create_user(f"viewer{bool(accel)}@example.com", "correct-horse-battery", active=True)
        db.session.flush()
        token, _ = issue(user)
        video = Video(title="Tall", category="Drama", status=READY, duration=6.0,
                      hls_dir=f"1/v{bool(accel):d}", thumbnail=None,
                      renditions=[{"label": "1440p", "width": 2560, "height": 1440}])
        db.session.add(video)
        db.session.commit()
        folder = Path(media_root, "hls", video.hls_dir, "1440p")
        folder.mkdir(parents=True)
        (folder / layout.MEDIA_PLAYLIST).write_text(
            f"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\n{layout.segment_name(0)}\n#EXT-X-ENDLIST\n")
        (folder / layout.segment_name(0)).write_bytes(b"G" * 188)
        video_id, hls_dir = video.id, video.hls_dir
    fast = app.wsgi_app
    assert isinstance(fast, SegmentFastPath)
    reached_flask = []
    flask_alone = fast.wsgi_app

    def counted(environ, start_response):
        reached_flask.append(environ["PATH_INFO"])
        return flask_alone(environ, start_response)

    fast.wsgi_app = counted
    client = Client(fast, app.response_class, use_cookies=False)
    headers = {"Authorization": f"Bearer {token}"}
    playlist = client.get(f"/api/video/{video_id}/1440p/{layout.MEDIA_PLAYLIST}", headers=headers)
    segment = client.get(f"/api/video/{video_id}/1440p/{layout.segment_name(0)}", headers=headers)
    segment_again = client.get(f"/api/video/{video_id}/1440p/{layout.segment_name(0)}", headers=headers)
    results["accel" if accel else "app"] = {
        "playlist": [playlist.status_code, playlist.headers.get("X-Accel-Redirect"), playlist.get_data(as_text=True)],
        "segment": [segment.status_code, segment.headers.get("X-Accel-Redirect"), len(segment.get_data())],
        "segment_again": [segment_again.status_code, segment_again.headers.get("X-Accel-Redirect"),
                          len(segment_again.get_data())],
        "reached_flask": reached_flask,
        "hls_dir": hls_dir,
    }
print(json.dumps(results))
'''


def test_the_ladder_and_the_file_names_come_from_layout():
    assert [rung.label for rung in layout.LADDER] == ["480p", "720p", "1080p"]
    assert {"480p", "720p", "1080p"} == layout.LABELS
    assert [rung.short_side for rung in layout.LADDER] == [480, 720, 1080]
    assert layout.segment_name(0) == "seg000.ts" and layout.segment_name(1234) == "seg1234.ts"
    assert layout.SEGMENT_RE.fullmatch("seg000.ts") and layout.SEGMENT_RE.fullmatch("seg123456.ts")
    assert not layout.SEGMENT_RE.fullmatch("seg1234567.ts") and not layout.SEGMENT_RE.fullmatch("seg١٢٣.ts")
    assert layout.media_playlist("720p") == "720p/index.m3u8" and layout.sprite_name(7) == "007.jpg"


def test_playlist_seconds_sums_every_extinf_and_skips_a_malformed_one():
    text = "#EXTM3U\n#EXTINF:6.006,\nseg000.ts\n#EXTINF:4.5,title\nseg001.ts\n#EXTINF:oops,\nseg002.ts\n"
    assert layout.playlist_seconds(text) == pytest.approx(10.506)
    assert layout.playlist_seconds("#EXTM3U\n") == 0.0


def test_a_1080p_source_is_planned_on_the_ladder_as_it_stands():
    info = SourceInfo(path="x", width=2560, height=1440, coded_width=2560, coded_height=1440, rotation=0,
                      duration=10.0, fps=30.0, has_audio=False, video_codec="mpeg4", pix_fmt="yuv420p",
                      profile=None, level=None, video_bitrate=8_000_000, peak_bitrate=8_000_000,
                      max_keyframe_gap=2.0)
    assert [r.label for r in plan_renditions(info)] == ["480p", "720p", "1080p"]


def test_a_rung_added_to_the_ladder_is_planned_and_served_by_every_path(tmp_path):
    result = subprocess.run([sys.executable, "-c", CHECK, str(ROOT), str(tmp_path / "media"), NEW_RUNG],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["labels"] == ["1080p", "1440p", "480p", "720p"]
    assert seen["planned"] == ["480p", "720p", "1080p", "1440p"]
    app = seen["app"]
    assert app["playlist"][0] == 200 and "seg000.ts" in app["playlist"][2]
    assert app["segment"] == [200, None, 188]
    assert app["segment_again"] == [200, None, 188]
    # The playlist request verified the token in Flask; the segments were the fast path's alone.
    assert app["reached_flask"] == ["/api/video/1/1440p/index.m3u8"]
    accel = seen["accel"]
    assert accel["segment"][:2] == [200, f"/protected-media/hls/{accel['hls_dir']}/1440p/seg000.ts"]
    assert accel["segment_again"][:2] == [200, f"/protected-media/hls/{accel['hls_dir']}/1440p/seg000.ts"]
    assert accel["reached_flask"] == ["/api/video/1/1440p/index.m3u8"]
