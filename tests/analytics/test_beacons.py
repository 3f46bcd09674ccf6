"""Playback beacons (POST /api/video/<id>/playback/): one request saves the watch position and
counts the beacon in its session once, whatever the order; bad input is a clear 4xx."""
import json
from datetime import timedelta

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.catalogue_rows import PENDING, add_videos
from tests.fixtures.playback import beacon, new_session, roll_up, sessions
from videoflix.analytics.models import PlaybackSession
from videoflix.extensions import db
from videoflix.videos.models import WatchProgress


@pytest.fixture
def films(app):
    return add_videos(app, dict(title="Film", duration=100.0), dict(title="Draft", status=PENDING))


def test_a_beacon_opens_the_session_and_saves_the_watch_position(app, client, auth, films):
    session = new_session()
    response = beacon(client, films[0], session, 0, "start", 0, ttff_ms=420, rendition="720p")
    assert response.status_code == 200
    body = response.get_json()
    assert body == {**body, "video_id": films[0], "position": 0, "duration": 100.0, "completed": False,
                    "session": session, "seq": 0, "counted": True}
    body = beacon(client, films[0], session, 1, "progress", 10.0, 10.0).get_json()
    assert body["position"] == 10.0 and body["counted"] is True
    # The position save is the same as PUT /progress/ (one request, not two).
    assert client.get(f"/api/video/{films[0]}/progress/").get_json()["position"] == 10.0
    row = sessions(app)[session]
    assert (row.user_id, row.video_id, row.last_seq, row.watched, row.ttff_ms, row.rendition, row.position) == (
        auth, films[0], 1, 10.0, 420, "720p", 10.0)
    assert row.coverage == 0b111  # 0 %, 5 %, 10 % of 100 s


def test_duplicated_and_reordered_beacons_count_once(app, client, auth, films):
    session = new_session()
    sent = {seq: (10.0 * seq, 10.0 if seq else 0.0) for seq in range(6)}  # seq -> (position, watched)
    answers = []
    for seq in (0, 2, 1, 1, 3, 5, 2, 4, 5, 0):
        position, watched = sent[seq]
        answers.append(beacon(client, films[0], session, seq, "progress", position, watched, stalls=1,
                              stalled=0.5).get_json()["counted"])
    assert answers == [True, True, True, False, True, True, False, True, False, False]
    row = sessions(app)[session]
    assert (row.watched, row.stalls, row.stalled, row.last_seq) == (50.0, 6, 3.0, 5)
    # The newest beacon's position stays, though seq 4 arrived after seq 5.
    assert row.position == 50.0
    with app.app_context():
        assert db.session.get(WatchProgress, (auth, films[0])).position == 50.0
    assert row.coverage == (1 << 11) - 1  # 0 % to 50 %


def test_a_beacon_far_behind_the_newest_is_not_counted_again(app, client, auth, films):
    session = new_session()
    assert beacon(client, films[0], session, 0, watched=1).get_json()["counted"] is True
    assert beacon(client, films[0], session, 100, watched=1).get_json()["counted"] is True
    # 100 numbers later seq 0 is outside the window: treated as already seen, never counted twice.
    assert beacon(client, films[0], session, 0, watched=1).get_json()["counted"] is False
    assert beacon(client, films[0], session, 99, watched=1).get_json()["counted"] is True
    assert sessions(app)[session].watched == 3.0


def test_sendbeacon_text_plain_body_is_accepted(app, client, auth, films):
    session = new_session()
    body = json.dumps({"session": session, "seq": 0, "event": "pause", "position": 12.5, "watched": 2.5})
    response = client.post(f"/api/video/{films[0]}/playback/", data=body, content_type="text/plain;charset=UTF-8")
    assert response.status_code == 200, response.get_json()
    assert sessions(app)[session].watched == 2.5


@pytest.mark.parametrize(("body", "field"), [
    ({"seq": 0, "event": "start", "position": 0}, "session"),
    ({"session": "not-a-uuid", "seq": 0, "event": "start", "position": 0}, "session"),
    ({"session": "S", "seq": -1, "event": "start", "position": 0}, "seq"),
    ({"session": "S", "seq": "1", "event": "start", "position": 0}, "seq"),
    ({"session": "S", "seq": 1.5, "event": "start", "position": 0}, "seq"),
    ({"session": "S", "seq": 0, "event": "rewind", "position": 0}, "event"),
    ({"session": "S", "seq": 0, "event": "start"}, "position"),
    ({"session": "S", "seq": 0, "event": "start", "position": -1}, "position"),
    ({"session": "S", "seq": 0, "event": "start", "position": 0, "watched": 100000}, "watched"),
    ({"session": "S", "seq": 0, "event": "start", "position": 0, "rendition": "<b>"}, "rendition"),
    ({"session": "S", "seq": 0, "event": "start", "position": 0, "ttff_ms": True}, "ttff_ms"),
])
def test_bad_beacons_are_400_keyed_by_field(app, client, auth, films, body, field):
    if body.get("session") == "S":
        body["session"] = new_session()
    response = client.post(f"/api/video/{films[0]}/playback/", json=body)
    assert response.status_code == 400
    assert field in response.get_json()
    assert sessions(app) == {}


def test_malformed_and_foreign_bodies(client, auth, films):
    url = f"/api/video/{films[0]}/playback/"
    assert client.post(url, data="{", content_type="text/plain").status_code == 400
    assert client.post(url, data="[1]", content_type="text/plain").get_json() == {"detail": "Expected a JSON object."}
    response = client.post(url, data="session=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "detail" in response.get_json()


def test_videos_that_cannot_be_watched_are_404(app, client, auth, films):
    assert beacon(client, films[1], new_session(), 0, "start").status_code == 404
    assert beacon(client, 999999, new_session(), 0, "start").status_code == 404
    assert sessions(app) == {}


def test_beacons_need_credentials(client, films):
    response = beacon(client, films[0], new_session(), 0, "start")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Authentication credentials were not provided."}


def test_another_viewers_or_videos_session_is_409(app, client, make_user, login, films):
    add = add_videos(app, dict(title="Other"))
    make_user("a@example.com")
    make_user("b@example.com")
    login("a@example.com", PASSWORD)
    session = new_session()
    assert beacon(client, films[0], session, 0, "start").status_code == 200
    response = beacon(client, add[0], session, 1, watched=5)
    assert response.status_code == 409 and "another video" in response.get_json()["detail"]
    login("b@example.com", PASSWORD)
    assert beacon(client, films[0], session, 1, watched=5).status_code == 409
    assert sessions(app)[session].watched == 0


def test_a_rolled_up_session_takes_no_more_beacons(app, client, auth, films):
    session = new_session()
    beacon(client, films[0], session, 0, "start")
    beacon(client, films[0], session, 1, "end", 20, 20)
    assert roll_up(app).folded == 1
    response = beacon(client, films[0], session, 2, "progress", 30, 10)
    assert response.status_code == 409
    assert response.get_json() == {"detail": "This playback session is closed; start a new one."}
    assert sessions(app)[session].watched == 20


def test_beacons_are_rate_limited_per_session(app, app_config, client, auth, films):
    app.config["ANALYTICS_BEACONS_PER_MINUTE"] = 3
    first, second = new_session(), new_session()
    codes = [beacon(client, films[0], first, seq, watched=1).status_code for seq in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = beacon(client, films[0], first, 4, watched=1)
    assert refused.get_json() == {"detail": "Too many beacons for this playback session; slow down."}
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert beacon(client, films[0], second, 0, "start").status_code == 200  # another session is not held up
    assert sessions(app)[first].watched == 3
    with app.app_context():  # a minute later the session may send again
        row = db.session.get(PlaybackSession, first)
        row.window_start -= timedelta(seconds=61)
        db.session.commit()
    assert beacon(client, films[0], first, 5, watched=1).get_json()["counted"] is True
    assert sessions(app)[first].watched == 4


@pytest.mark.parametrize(("start", "end", "bits"), [
    (0, 100, (1 << 21) - 1),
    (50, 100, sum(1 << k for k in range(10, 21))),
    (50, 500, sum(1 << k for k in range(10, 21))),  # past the end: clipped
    (21, 24, 0),  # between two points (20 % and 25 %)
    (0, 4.4, 1),  # 5 % (5 s) not reached: beyond the 0.5 s tolerance
    (0, 4.6, 0b11),  # within it
])
def test_coverage_has_the_points_the_watched_range_passed(app, client, auth, films, start, end, bits):
    session = new_session()
    assert beacon(client, films[0], session, 0, "progress", end, end - start).status_code == 200
    assert sessions(app)[session].coverage == bits


def test_a_video_without_a_duration_has_no_coverage(app, client, auth):
    video = add_videos(app, dict(title="Unknown", duration=None))[0]
    session = new_session()
    assert beacon(client, video, session, 0, "progress", 30, 30).status_code == 200
    assert (sessions(app)[session].coverage, sessions(app)[session].watched) == (0, 30)
