"""Seek previews with real ffmpeg: the storyboard made inside the transcode's single ffmpeg run
(sprite size, cue times and tile contents match the video), its routes, the detail's
storyboard_url, and `flask transcode --storyboards` for versions made before it existed."""
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import av
import pytest
import webvtt

from tests.fixtures.clips import _H264, _make
from tests.fixtures.subtitles import stored_files
from tests.fixtures.videos import add_clip, files_below, row
from videoflix.extensions import db
from videoflix.videos.media import storyboard
from videoflix.videos.media.chunks import plan_chunks
from videoflix.videos.media.commands import build_command
from videoflix.videos.media.plan import plan_renditions
from videoflix.videos.media.probe import probe
from videoflix.videos.media.transcode import transcode
from videoflix.videos.models import Video
from videoflix.videos.storage.keys import media_store, read_hls

pytestmark = pytest.mark.media_store

SECONDS = 12


@pytest.fixture(scope="session")
def clip_ramp(clips_dir) -> Path:
    """320x180 H.264, 12 s @10 fps, no audio, getting brighter by 18 luma levels a second: a
    frame's brightness says when it was taken."""
    return _make(clips_dir, "ramp.mp4", [
        "-f", "lavfi", "-i", f"color=c=black:s=320x180:r=10:d={SECONDS}",
        "-vf", "geq=lum='16+T*18':cb=128:cr=128", *_H264, "-g", "10"])


def jpeg(path):
    """(width, height, luma plane bytes, bytes per row) of a JPEG."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        plane = frame.planes[0]
        return frame.width, frame.height, bytes(plane), plane.line_size


def mean_luma(image, x, y, w, h):
    _, _, data, stride = image
    return sum(sum(data[row * stride + x: row * stride + x + w]) for row in range(y, y + h)) / (w * h)


def cues(text):
    """[(start s, end s, sprite, (x, y, w, h))] of a storyboard WebVTT."""
    out = []
    for cue in webvtt.from_string(text).captions:
        url, _, fragment = cue.text.partition("#xywh=")
        out.append((cue.start_time.in_milliseconds() / 1000, cue.end_time.in_milliseconds() / 1000, url,
                    tuple(int(v) for v in fragment.split(","))))
    return out


def test_the_transcode_writes_sprites_whose_cues_match_the_video(clip_ramp, tmp_path):
    result = transcode(clip_ramp, tmp_path / "out")
    assert result.storyboard == "storyboard.vtt"
    # one ffmpeg run: the sprites are an output of the command the (one) part ran
    assert any(arg.endswith("storyboard/%03d.jpg") for arg in result.command)
    assert any("tile=10x2" in arg for arg in result.command)

    found = cues((tmp_path / "out" / "storyboard.vtt").read_text())
    assert [(start, end) for start, end, _, _ in found] == [(float(i), float(i + 1)) for i in range(SECONDS)]
    assert {url for _, _, url, _ in found} == {"storyboard/000.jpg"}
    assert files_below(tmp_path / "out" / "storyboard") == ["000.jpg"]

    sprite = jpeg(tmp_path / "out" / "storyboard" / "000.jpg")
    assert sprite[:2] == (10 * 160, 2 * 90)  # 10 columns, 2 rows of 160x90 tiles
    assert [xywh for _, _, _, xywh in found] == [((i % 10) * 160, (i // 10) * 90, 160, 90) for i in range(SECONDS)]
    # tile i shows the frame at i s: 18 limited-range levels a second, 20.96 in the JPEG's full range
    lumas = [mean_luma(sprite, *xywh) for _, _, _, xywh in found]
    for second, luma in enumerate(lumas):
        assert luma == pytest.approx(second * 18 * 255 / 219, abs=6), (second, lumas)


def test_a_long_video_gets_a_frame_every_few_seconds_in_several_sprites():
    plan = storyboard.plan(2 * 3600 + 4, 1920, 1080)
    assert (plan.interval, plan.frames, plan.width, plan.height, plan.columns, plan.rows) == (
        10, 720, 160, 90, 10, 10)
    found = storyboard.cues(plan, 7204.0)
    assert len(found) == 720 and found[-1][:2] == (7190, 7204.0)
    assert found[100][2] == "storyboard/001.jpg#xywh=0,0,160,90"
    assert storyboard.plan(2, 720, 1280).height == 284  # portrait tiles keep the aspect ratio


def test_without_a_storyboard_the_command_is_the_plain_ladder(clip_ramp, tmp_path):
    info = probe(clip_ramp)
    renditions = plan_renditions(info)
    cplan = plan_chunks(info, renditions, None, storyboard=False)
    command = build_command(info, cplan, cplan.chunks[0], str(tmp_path), renditions)
    assert not any("tile=" in arg or arg.endswith(".jpg") for arg in command)
    result = transcode(clip_ramp, tmp_path / "out", info=info, storyboard=False)
    assert result.storyboard is None and not (tmp_path / "out" / "storyboard.vtt").exists()


def test_the_storyboard_routes_and_the_detail(app, client, auth, clip_720p, tmp_path):
    video_id = add_clip(app, clip_720p)
    detail = client.get(f"/api/video/{video_id}/")
    assert detail.status_code == 200
    url = detail.json["storyboard_url"]
    assert url == f"http://localhost/api/video/{video_id}/storyboard.vtt"
    index = client.get(url)
    assert index.status_code == 200 and index.mimetype == "text/vtt"
    found = cues(index.get_data(as_text=True))
    assert found[0][0] == 0 and found[-1][1] == pytest.approx(3.0, abs=0.05)
    sprite_url = urljoin(url, found[0][2])
    assert urlsplit(sprite_url).path == f"/api/video/{video_id}/storyboard/000.jpg"
    sprite = client.get(sprite_url)
    assert sprite.status_code == 200 and sprite.mimetype == "image/jpeg"
    assert jpeg_bytes(tmp_path, sprite.data)[:2] == (3 * 160, 90)

    for name in ("001.jpg", "x.jpg", "..%2Fthumbnail.jpg"):
        assert client.get(f"/api/video/{video_id}/storyboard/{name}").status_code == 404
    anonymous = app.test_client()
    for path in (url, sprite_url):
        response = anonymous.get(path)
        assert response.status_code == 401 and response.json == {
            "detail": "Authentication credentials were not provided."}


def jpeg_bytes(folder, data):
    path = Path(folder) / "fetched.jpg"
    path.write_bytes(data)
    return jpeg(path)


def test_the_detail_names_the_storyboard_the_row_records_and_no_other(app, client, auth, make_video):
    """The detail reads the row, never the store: a version made before storyboards has none, even
    where a file of that name lies in its folder, and one whose row records it gets its URL."""
    without, with_one = make_video(), make_video()
    with app.app_context():
        for video_id in (without, with_one):
            hls_dir = db.session.get(Video, video_id).hls_dir
            media_store().put_file(f"hls/{hls_dir}/storyboard.vtt", __file__)
        recorded = db.session.get(Video, with_one)
        recorded.storyboard = f"{recorded.hls_dir}/storyboard.vtt"
        db.session.commit()
    assert client.get(f"/api/video/{without}/").json["storyboard_url"] is None
    assert client.get(f"/api/video/{with_one}/").json["storyboard_url"] == (
        f"http://localhost/api/video/{with_one}/storyboard.vtt")


def stored_bytes(app, hls_dir, names):
    with app.app_context():
        return {name: read_hls(f"{hls_dir}/{name}") for name in names}


def test_existing_videos_gain_a_storyboard_from_their_top_rendition(app, runner, client, auth, make_video,
                                                                   tmp_path):
    video_id = make_video()
    assert client.get(f"/api/video/{video_id}/storyboard.vtt").status_code == 404
    hls_dir = row(app, video_id)["hls_dir"]
    segments = stored_bytes(app, hls_dir, [name for name in stored_files(app, hls_dir) if name.endswith(".ts")])
    assert len(segments) == 6

    result = runner.invoke(args=["transcode", "--storyboards"])
    assert result.exit_code == 0, result.output
    assert f"Video {video_id}: storyboard added." in result.output
    url = client.get(f"/api/video/{video_id}/").json["storyboard_url"]
    found = cues(client.get(url).get_data(as_text=True))
    assert [(start, end) for start, end, _, _ in found] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    sprite = client.get(urljoin(url, found[0][2]))
    assert sprite.status_code == 200
    assert jpeg_bytes(tmp_path, sprite.data)[:2] == (3 * 160, 90)  # from the 320x180 top rendition
    assert {"storyboard.vtt", "storyboard/000.jpg"} <= set(stored_files(app, hls_dir))
    # no re-encode: the renditions are untouched, and nothing is left behind (nor in scratch space)
    assert stored_bytes(app, hls_dir, segments) == segments
    assert not [name for name in stored_files(app, hls_dir) if name.startswith(".")]
    assert files_below(app.config.get("MEDIA_SCRATCH") or tmp_path / "none") == []

    again = runner.invoke(args=["transcode", "--storyboards"])
    assert again.exit_code == 0 and "No video needs a storyboard." in again.output
