"""The roll-up and the staff statistics: numbers from known sessions, computed by hand."""
from datetime import datetime, timedelta

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.catalogue_rows import add_videos
from tests.fixtures.playback import beacon, roll_up, sessions, watch
from videoflix.analytics import rollup
from videoflix.analytics.models import PlaybackSession, RollupClaim, VideoDay
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.models_base import utcnow


@pytest.fixture
def film(app):
    return add_videos(app, dict(title="Film", duration=100.0), dict(title="Short", duration=40.0))


@pytest.fixture
def viewers(make_user):
    """Three viewers and a staff account; ids by name."""
    return {name: make_user(f"{name}@example.com", staff=name == "staff")
            for name in ("ann", "bob", "cid", "staff")}


def today():
    return utcnow().date().isoformat()


def stats(client, video_id, **query):
    query = {"from": today(), "to": today(), **query}
    return client.get(f"/api/video/{video_id}/stats/", query_string=query)


def known_sessions(client, login, video_id):
    """Four sessions of a 100 s video (views from 10 s):
    ann A: 0-100 s, ended; time to first frame 400 ms; 2 stalls, 3 s stalled
    ann B: 0-50 s; 600 ms
    bob C: 0-20 s, then a seek to 80 s and 80-100 s; 800 ms
    cid D: 0-5 s (not a view); 1000 ms
    """
    login("ann@example.com", PASSWORD)
    a, _ = watch(client, video_id, [(0, 100)], ttff_ms=400, end=True, rendition="720p")
    beacon(client, video_id, a, 50, "progress", 100, 0, stalls=2, stalled=3.0)  # late: counted, position kept
    watch(client, video_id, [(0, 50)], ttff_ms=600, rendition="480p")
    login("bob@example.com", PASSWORD)
    watch(client, video_id, [(0, 20), (80, 100)], ttff_ms=800, rendition="720p")
    login("cid@example.com", PASSWORD)
    watch(client, video_id, [(0, 5)], ttff_ms=1000)


def test_watch_time_retention_and_quality_match_the_numbers_by_hand(app, client, login, film, viewers):
    known_sessions(client, login, film[0])
    assert roll_up(app).folded == 4
    login("staff@example.com", PASSWORD)
    body = stats(client, film[0]).get_json()
    totals = body["totals"]
    assert totals["sessions"] == 4 and totals["views"] == 3
    assert totals["watch_seconds"] == 195.0  # 100 + 50 + 40 + 5
    assert totals["average_percent_watched"] == 63.3  # (100 + 50 + 40) / 3
    third, two_thirds = round(1 / 3, 4), round(2 / 3, 4)
    # Points 0-20 % every view; 25-50 % A and B; 55-75 % only A; 80-100 % A and C.
    assert totals["retention"] == [1.0] * 5 + [two_thirds] * 6 + [third] * 5 + [two_thirds] * 5
    assert totals["median_ttff_ms"] == 700.0  # (600 + 800) / 2 of 400, 600, 800, 1000
    assert totals["rebuffering_ratio"] == round(3 / 198, 4)  # stalled / (watched + stalled)
    assert totals["stalls"] == 2
    assert totals["renditions"] == {"480p": 1, "720p": 2}
    assert totals["viewer_days"] == 2  # ann (twice) and bob; cid's 5 s are no view
    (day,) = body["days"]
    assert day["date"] == today() and day["unique_viewers"] == 2 and day["views"] == 3
    assert body == {**body, "video_id": film[0], "title": "Film", "duration": 100.0, "from": today(), "to": today()}


def test_days_without_playback_are_zero(app, client, login, film, viewers):
    known_sessions(client, login, film[0])
    roll_up(app)
    login("staff@example.com", PASSWORD)
    start = (utcnow() - timedelta(days=2)).date().isoformat()
    days = stats(client, film[0], **{"from": start}).get_json()["days"]
    assert [d["views"] for d in days] == [0, 0, 3]
    assert days[0]["retention"] == [None] * 21 and days[0]["median_ttff_ms"] is None


def test_a_short_video_counts_a_view_from_90_percent(app, client, login, film, viewers):
    login("ann@example.com", PASSWORD)
    watch(client, film[1], [(0, 36)])  # 36 of 40 s
    watch(client, film[1], [(0, 8)])  # under 10 s: no view
    roll_up(app)
    login("staff@example.com", PASSWORD)
    totals = stats(client, film[1]).get_json()["totals"]
    assert (totals["views"], totals["sessions"], totals["average_percent_watched"]) == (1, 2, 90.0)


def test_running_the_roll_up_again_counts_nothing_twice(app, client, login, film, viewers):
    known_sessions(client, login, film[0])
    assert roll_up(app).folded == 4
    assert roll_up(app).folded == 0
    with app.app_context():
        (day,) = db.session.execute(db.select(VideoDay)).scalars()
        assert (day.sessions, day.views, day.viewers, day.watched) == (4, 3, 2, 195.0)


def test_open_sessions_wait_until_they_close(app, client, login, film, viewers):
    login("ann@example.com", PASSWORD)
    watch(client, film[0], [(0, 30)])  # still playing
    watch(client, film[0], [(0, 30)], end=True)  # ended just now: late beacons may still come
    assert roll_up(app, later=timedelta(0)).folded == 0
    assert roll_up(app, later=rollup.ENDED_GRACE + timedelta(seconds=1)).folded == 1
    assert roll_up(app, later=rollup.SESSION_IDLE + timedelta(seconds=1)).folded == 1


def test_a_second_viewer_session_on_a_later_roll_up_is_not_a_new_unique_viewer(app, client, login, film, viewers):
    login("ann@example.com", PASSWORD)
    watch(client, film[0], [(0, 30)])
    roll_up(app)
    watch(client, film[0], [(0, 30)])
    roll_up(app)
    with app.app_context():
        (day,) = db.session.execute(db.select(VideoDay)).scalars()
        assert (day.views, day.viewers) == (2, 1)


def test_a_worker_holding_the_claim_keeps_others_out(app, client, login, film, viewers):
    login("ann@example.com", PASSWORD)
    watch(client, film[0], [(0, 30)])
    with app.app_context():
        db.session.add(RollupClaim(name="rollup", claimed_by="other:1:x", claimed_until=utcnow() + timedelta(hours=2)))
        db.session.commit()
    result = roll_up(app)
    assert result.claimed is False and result.folded == 0
    assert all(s.rolled_up_at is None for s in sessions(app).values())
    assert roll_up(app, later=timedelta(hours=3)).folded == 1  # the claim expired: taken over


def test_a_deleted_account_leaves_its_counts_but_no_sessions(app, client, login, film, viewers):
    known_sessions(client, login, film[0])
    roll_up(app)
    login("ann@example.com", PASSWORD)
    watch(client, film[0], [(0, 60)])  # still open when the account goes
    with app.app_context():
        db.session.delete(db.session.get(User, viewers["ann"]))
        db.session.commit()
    remaining = sessions(app)
    assert remaining and all(s.user_id != viewers["ann"] for s in remaining.values())
    login("staff@example.com", PASSWORD)
    totals = stats(client, film[0]).get_json()["totals"]
    # ann's three sessions (one folded as the account was deleted) still count, anonymously.
    assert (totals["sessions"], totals["views"], totals["watch_seconds"]) == (5, 4, 255.0)
    assert "ann" not in str(stats(client, film[0]).get_json())


def test_sessions_older_than_raw_days_are_deleted_counts_stay(app, client, login, film, viewers):
    app.config["ANALYTICS_RAW_DAYS"] = 2
    known_sessions(client, login, film[0])
    assert roll_up(app).purged == 0
    assert roll_up(app, later=timedelta(days=3)).purged == 4
    assert sessions(app) == {}
    login("staff@example.com", PASSWORD)
    assert stats(client, film[0]).get_json()["totals"]["views"] == 3


def test_deleting_a_video_deletes_its_sessions_and_counts(app, client, login, film, viewers):
    from videoflix.videos.models import Video

    known_sessions(client, login, film[0])
    roll_up(app)
    login("ann@example.com", PASSWORD)
    watch(client, film[0], [(0, 20)])
    with app.app_context():
        db.session.delete(db.session.get(Video, film[0]))
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count()).select_from(PlaybackSession)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(VideoDay)) == 0


def test_catalogue_ranks_by_watch_time_and_by_playback_quality(app, client, login, film, viewers):
    other = add_videos(app, dict(title="Stalling", duration=100.0))[0]
    login("ann@example.com", PASSWORD)
    watch(client, film[0], [(0, 100)], ttff_ms=300)
    session, sent = watch(client, other, [(0, 30)], ttff_ms=2500)
    beacon(client, other, session, sent, "progress", 30, 0, stalls=3, stalled=10.0)
    roll_up(app)
    login("staff@example.com", PASSWORD)
    body = client.get("/api/stats/videos/", query_string={"from": today()}).get_json()
    assert [v["title"] for v in body["top_watch_time"]] == ["Film", "Stalling"]
    assert [v["title"] for v in body["worst_quality"]] == ["Stalling", "Film"]
    worst = body["worst_quality"][0]
    assert worst == {**worst, "rebuffering_ratio": round(10 / 40, 4), "median_ttff_ms": 2500.0, "views": 1}
    top = client.get("/api/stats/videos/", query_string={"limit": 1}).get_json()["top_watch_time"]
    assert [v["title"] for v in top] == ["Film"]


def test_statistics_are_for_staff_only(client, login, film, viewers):
    assert stats(client, film[0]).status_code == 401
    assert client.get("/api/stats/videos/").status_code == 401
    login("ann@example.com", PASSWORD)
    response = stats(client, film[0])
    assert response.status_code == 403 and response.get_json() == {"detail": "Only staff may see statistics."}
    assert client.get("/api/stats/videos/").status_code == 403
    login("staff@example.com", PASSWORD)
    assert stats(client, film[0]).status_code == 200
    assert stats(client, 999999).status_code == 404


@pytest.mark.parametrize("query", [{"from": "yesterday"}, {"from": "2026-12-10", "to": "2026-12-01"},
                                   {"from": "2020-01-01", "to": "2026-01-01"}, {"to": "2026-13-01"}])
def test_bad_ranges_are_400_keyed_by_parameter(client, login, film, viewers, query):
    login("staff@example.com", PASSWORD)
    response = client.get(f"/api/video/{film[0]}/stats/", query_string=query)
    assert response.status_code == 400
    assert set(response.get_json()) <= {"from", "to"}


def test_the_periodic_task_and_the_command_fold_closed_sessions(app, client, login, runner, film, viewers):
    from videoflix.analytics.tasks import rollup_playback_sessions

    login("ann@example.com", PASSWORD)
    watch(client, film[0], [(0, 30)], end=True)
    with app.app_context():
        session = db.session.execute(db.select(PlaybackSession)).scalar_one()
        session.last_beacon_at = utcnow() - rollup.ENDED_GRACE * 2  # ended a while ago
        db.session.commit()
        assert rollup_playback_sessions.validate_datetime(datetime(2026, 12, 1, 10, 5))  # every 5 minutes
        assert not rollup_playback_sessions.validate_datetime(datetime(2026, 12, 1, 10, 6))
        rollup_playback_sessions()  # inline (HUEY_IMMEDIATE)
    assert all(s.rolled_up_at is not None for s in sessions(app).values())
    result = runner.invoke(args=["analytics", "rollup"])
    assert result.exit_code == 0 and result.output == "0 session(s) folded, 0 deleted.\n"


def test_the_back_office_analytics_pages_are_for_staff(app, client, login, film, viewers):
    login("ann@example.com", PASSWORD)
    assert client.get("/admin/analytics/").status_code == 403
    login("staff@example.com", PASSWORD)
    page = client.get("/admin/analytics/")
    assert page.status_code == 200 and b'id="analytics-data"' in page.data
    assert client.get(f"/admin/analytics/video/{film[0]}/").status_code == 200
    assert client.get("/admin/analytics/video/999999/").status_code == 404
