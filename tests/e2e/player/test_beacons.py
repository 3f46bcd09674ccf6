"""Our player's playback beacons, in Chromium against a real API server (the player's fixtures,
conftest.py):
start with the time to first frame, progress while playing, a stall while the network holds the
next segment back, and the end; counted in the session row, and by the roll-up."""
import json
import re

import pytest

from videoflix.analytics import rollup
from videoflix.analytics.models import PlaybackSession, VideoDay
from videoflix.extensions import db
from videoflix.models_base import utcnow
from videoflix.videos.models import Video

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_the_player_reports_start_progress_a_stall_and_the_end(app, logged_in, player_origin, api_base, ready_video):
    page, video_id = logged_in.page, ready_video["id"]
    beacons = []
    page.on("request", lambda r: beacons.append(json.loads(r.post_data))
            if r.url.endswith(f"/api/video/{video_id}/playback/") and r.method == "POST" else None)
    # A progress beacon every second (the player's ?beacon=), so an 8 s clip sends several.
    page.goto(f"{player_origin}/?api={api_base}&beacon=1")
    page.wait_for_selector("#catalogue-view[data-loaded]")
    # The network holds every rendition's second segment back until the player has stalled on it.
    held = []

    def hold(route):
        held.append(route)

    page.route(re.compile(r"/seg00[1-9]\.ts"), hold)
    page.evaluate("""() => { const v = document.getElementById('video');
        v.addEventListener('waiting', () => { if (v.currentTime > 0) v.dataset.stalled = '1'; }); }""")
    page.click(f'#videos .video-card[data-video-id="{video_id}"]')
    page.wait_for_selector("#video[data-stalled]", state="attached", timeout=30_000)
    page.wait_for_timeout(1500)  # a stall of 1.5 s at least
    assert held, logged_in.diagnostics()
    page.unroute(re.compile(r"/seg00[1-9]\.ts"), hold)  # the held requests go on
    with page.expect_response(lambda r: r.url.endswith("/playback/") and json.loads(r.request.post_data)["event"]
                              == "end", timeout=30_000) as end:
        pass
    assert end.value.status == 200, logged_in.diagnostics()

    events = [b["event"] for b in beacons]
    assert events[0] == "start" and events[-1] == "end" and "progress" in events, events
    assert len({b["session"] for b in beacons}) == 1
    assert [b["seq"] for b in beacons] == list(range(len(beacons)))
    assert beacons[0]["ttff_ms"] > 0
    assert sum(b["stalls"] for b in beacons) >= 1 and sum(b["stalled"] for b in beacons) >= 1.0, beacons

    with app.app_context():
        session = db.session.execute(db.select(PlaybackSession)).scalar_one()
        duration = db.session.get_one(Video, video_id).duration
        assert session.ended and session.ttff_ms == beacons[0]["ttff_ms"]
        assert session.stalls >= 1 and session.stalled >= 1.0
        assert duration - 1.5 <= session.watched <= duration + 0.5, (session.watched, duration)
        assert session.coverage == (1 << 21) - 1  # every 5 % of the clip was played
        assert session.rendition in ready_video["labels"]
        assert rollup.run(now=utcnow() + rollup.ENDED_GRACE * 2).folded == 1
        day = db.session.execute(db.select(VideoDay)).scalar_one()
        assert (day.sessions, day.views, day.viewers, day.stalls) == (1, 1, 1, session.stalls)
