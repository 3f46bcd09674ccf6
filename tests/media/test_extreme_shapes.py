"""Videos of extreme shapes (issue 18, finding 6): any picture an upload may have (within
MAX_UPLOAD_PIXELS) gets storyboard sprites, a thumbnail and renditions within what JPEG and x264
accept, and an encoder that refuses its settings is a permanent failure, never retried.

The storyboard tile fits in 160x320 (sprites at most 1600x3200: JPEG stops at 65500 a side), the
thumbnail in 640x1280, a rendition in 4096x4096 (x264 stops at 16384)."""

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.properties import MANY
from videoflix.config import Config
from videoflix.videos.media import storyboard
from videoflix.videos.media.errors import MediaError
from videoflix.videos.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from videoflix.videos.media.parts import thumbnail_size as planned_thumbnail_size
from videoflix.videos.media.plan import plan_renditions
from videoflix.videos.media.probe import SourceInfo, probe
from videoflix.videos.media.transcode import transcode

JPEG_MAX_SIDE = 65500
X264_MAX_SIDE = 16384


def source(width, height, duration=10.0):
    return SourceInfo(path="x", width=width, height=height, coded_width=width, coded_height=height, rotation=0,
                      duration=duration, fps=25.0, has_audio=False, video_codec="h264", pix_fmt="yuv420p",
                      profile="High", level=40, video_bitrate=1_000_000, peak_bitrate=1_000_000,
                      max_keyframe_gap=2.0, keyframe_times=[0.0], container_format="mov")


def thumbnail_size(info):
    return planned_thumbnail_size(info)


SHAPES = st.integers(1, Config.MAX_UPLOAD_PIXELS).flatmap(
    lambda width: st.tuples(st.just(width), st.integers(1, max(1, Config.MAX_UPLOAD_PIXELS // width))))


@MANY
@given(SHAPES, st.floats(0.1, Config.MAX_UPLOAD_SECONDS))
def test_any_accepted_shape_gets_bounded_sprites_thumbnail_and_renditions(shape, duration):
    width, height = shape
    plan = storyboard.plan(duration, width, height)
    assert 2 <= plan.width <= storyboard.TILE_WIDTH and 2 <= plan.height <= storyboard.MAX_TILE_HEIGHT
    assert plan.width % 2 == 0 and plan.height % 2 == 0
    assert plan.columns * plan.width <= 1600 and plan.rows * plan.height <= 3200
    thumb = thumbnail_size(source(width, height, duration))
    assert 2 <= thumb[0] <= 640 and 2 <= thumb[1] <= 1280 and thumb[0] % 2 == 0 == thumb[1] % 2
    renditions = plan_renditions(source(width, height, duration))
    assert renditions and len({(r.width, r.height) for r in renditions}) == len(renditions)
    for r in renditions:
        assert 2 <= r.width <= 4096 and 2 <= r.height <= 4096 and r.width % 2 == 0 == r.height % 2


def test_usual_shapes_keep_their_sizes():
    assert (storyboard.plan(60, 1920, 1080).width, storyboard.plan(60, 1920, 1080).height) == (160, 90)
    assert (storyboard.plan(60, 720, 1280).width, storyboard.plan(60, 720, 1280).height) == (160, 284)
    assert thumbnail_size(source(1920, 1080)) == (640, 360) and thumbnail_size(source(720, 1280)) == (640, 1138)
    assert thumbnail_size(source(320, 180)) == (320, 180)  # never upscaled
    # a 64:9 panorama: 720p and 1080p would both be 4096x576, so 1080p is left out
    assert [(r.label, r.width, r.height) for r in plan_renditions(source(7680, 1080))] == [
        ("480p", 3414, 480), ("720p", 4096, 576)]


def picture_size(path):
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


@pytest.mark.slow
def test_a_16x4096_video_is_transcoded_with_its_storyboard(clip_tall, tmp_path):
    result = transcode(clip_tall, tmp_path / "out")
    assert result.storyboard == "storyboard.vtt"
    assert any("tile=10x2" in arg and "scale=2:320" in arg for arg in result.command)
    assert picture_size(tmp_path / "out" / "storyboard" / "000.jpg") == (10 * 2, 2 * 320)
    assert picture_size(tmp_path / "out" / "thumbnail.jpg") == (4, 1280)
    assert [(r.label, r.width, r.height) for r in result.renditions] == [("480p", 16, 4096)]
    assert picture_size(next((tmp_path / "out" / "480p").glob("*.ts"))) == (16, 4096)


@pytest.mark.slow
def test_a_video_wider_than_x264_allows_gets_renditions_it_can_encode(clip_wide, tmp_path):
    info = probe(clip_wide)
    assert (info.width, info.height) == (20000, 16)
    result = transcode(clip_wide, tmp_path / "out", info=info)
    assert [(r.label, r.width, r.height) for r in result.renditions] == [("480p", 4096, 4)]
    assert picture_size(next((tmp_path / "out" / "480p").glob("*.ts"))) == (4096, 4)
    assert picture_size(tmp_path / "out" / "thumbnail.jpg") == (640, 2)
    assert picture_size(tmp_path / "out" / "storyboard" / "000.jpg") == (3 * 160, 2)


@pytest.mark.parametrize("size, encoder, output", [
    (f"16x{JPEG_MAX_SIDE + 4}", "mjpeg", ["-f", "image2"]),       # the storyboard's old 160x40960 tiles, 2 rows
    (f"{X264_MAX_SIDE + 16}x16", "libx264", ["-f", "mpegts"]),   # a rendition as wide as its source
])
def test_an_encoder_that_refuses_its_settings_is_a_permanent_failure(tmp_path, size, encoder, output):
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-f", "lavfi",
               "-i", f"color=c=gray:s={size}:r=1:d=1", "-c:v", encoder, *output, str(tmp_path / "out")]
    with pytest.raises(MediaError) as failed:
        run_ffmpeg(command, duration=1, progress_cb=None, deadline=None)
    assert failed.value.transient is False, failed.value.message
