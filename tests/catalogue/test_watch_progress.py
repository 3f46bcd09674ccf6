"""Watch progress and continue watching (API.md, "Continue watching"), on SQLite and PostgreSQL."""
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.catalogue_rows import PENDING, add_videos
from tests.fixtures.properties import FEW
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.videos.models import Video, WatchProgress


@pytest.fixture
def films(app):
    """Three ready videos of 100 s (the third without a known duration) and a pending one."""
    return add_videos(
        app,
        dict(title="First", age=1), dict(title="Second", age=2), dict(title="Third", duration=None, age=3),
        dict(title="Draft", status=PENDING, age=0),
    )


def stored(app):
    with app.app_context():
        return {(p.user_id, p.video_id): (p.position, p.completed)
                for p in db.session.execute(db.select(WatchProgress)).scalars()}


def put(client, video_id, position):
    return client.put(f"/api/video/{video_id}/progress/", json={"position": position})


def test_put_saves_one_row_per_user_and_video(app, client, auth, films):
    response = put(client, films[0], 42.5)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"video_id", "position", "duration", "completed", "updated_at"}
    assert body["video_id"] == films[0] and body["position"] == 42.5 and body["duration"] == 100.0
    assert body["completed"] is False
    assert datetime.fromisoformat(body["updated_at"]).utcoffset().total_seconds() == 0
    second = put(client, films[0], 50).get_json()
    assert second["position"] == 50 and second["updated_at"] >= body["updated_at"]
    assert stored(app) == {(auth, films[0]): (50.0, False)}
    assert client.get(f"/api/video/{films[0]}/progress/").get_json() == second


def test_position_is_clamped_and_completed_from_95_percent(app, client, auth, films):
    assert put(client, films[0], 94.9).get_json()["completed"] is False
    body = put(client, films[0], 95).get_json()
    assert body["completed"] is True and body["position"] == 95
    past = put(client, films[0], 5000).get_json()
    assert past["position"] == 100.0 and past["completed"] is True
    unknown = put(client, films[2], 5000).get_json()  # no duration: stored as given, never completed
    assert unknown == {**unknown, "position": 5000, "duration": None, "completed": False}
    assert stored(app) == {(auth, films[0]): (100.0, True), (auth, films[2]): (5000.0, False)}


def test_get_without_progress_is_position_zero(client, auth, films):
    assert client.get(f"/api/video/{films[1]}/progress/").get_json() == {
        "video_id": films[1], "position": 0, "duration": 100.0, "completed": False, "updated_at": None,
    }


@pytest.mark.parametrize(("body", "message"), [
    ({}, "This field is required."),
    ({"position": None}, "This field may not be null."),
    ({"position": -1}, "Must be greater than or equal to 0."),
    ({"position": "12"}, "Not a valid number."),
    ({"position": True}, "Not a valid number."),
    ({"position": [1]}, "Not a valid number."),
])
def test_bad_positions_are_400_keyed_by_position(app, client, auth, films, body, message):
    response = client.put(f"/api/video/{films[0]}/progress/", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"position": [message]}
    assert stored(app) == {}


def test_infinite_and_nan_positions_are_refused(app, client, auth, films):
    for literal in ("Infinity", "NaN", "1e400"):
        response = client.put(f"/api/video/{films[0]}/progress/", data=f'{{"position": {literal}}}',
                              content_type="application/json")
        assert response.status_code == 400
        assert list(response.get_json()) == ["position"]
    assert stored(app) == {}


@pytest.mark.parametrize("method", ["put", "get", "delete"])
def test_videos_the_user_cannot_watch_are_404(app, client, auth, films, method):
    for video_id in (films[3], 999_999):
        response = getattr(client, method)(f"/api/video/{video_id}/progress/", json={"position": 1})
        assert response.status_code == 404
        assert response.get_json() == {"detail": "Video not found."}
    assert stored(app) == {}


def test_progress_needs_authentication(client, films):
    response = put(client, films[0], 1)
    assert response.status_code == 401
    assert response.get_json() == {"detail": "Authentication credentials were not provided."}


def test_continue_watching_lists_started_unfinished_ready_videos(app, client, auth, films, make_user, login):
    put(client, films[1], 10)
    put(client, films[0], 20)
    put(client, films[2], 0)  # not started
    response = client.get("/api/continue-watching/")
    assert response.status_code == 200
    items = response.get_json()
    assert [(i["id"], i["position"], i["duration"]) for i in items] == [(films[0], 20, 100.0), (films[1], 10, 100.0)]
    assert set(items[0]) == {"id", "created_at", "title", "description", "thumbnail_url", "category",
                             "position", "duration", "progress_updated_at"}
    listed = {i["id"]: i for i in client.get("/api/video/").get_json()}
    assert {k: items[0][k] for k in listed[films[0]]} == listed[films[0]]
    put(client, films[1], 30)  # most recently watched first
    assert [i["id"] for i in client.get("/api/continue-watching/").get_json()] == [films[1], films[0]]
    put(client, films[0], 99)  # completed: leaves the row
    assert [i["id"] for i in client.get("/api/continue-watching/").get_json()] == [films[1]]
    response = client.delete(f"/api/video/{films[1]}/progress/")
    assert response.status_code == 200
    assert response.get_json() == {"detail": "Progress removed."}
    assert client.get("/api/continue-watching/").get_json() == []
    assert client.delete(f"/api/video/{films[1]}/progress/").status_code == 200  # nothing left: still fine
    # Another user's progress is theirs alone.
    make_user("other@example.com")
    login("other@example.com")
    assert client.get("/api/continue-watching/").get_json() == []
    assert client.get(f"/api/video/{films[0]}/progress/").get_json()["position"] == 0


def test_a_video_that_stops_being_ready_leaves_continue_watching(app, client, auth, films):
    put(client, films[0], 20)
    with app.app_context():
        db.session.get(Video, films[0]).status = PENDING
        db.session.commit()
    assert client.get("/api/continue-watching/").get_json() == []


def test_deleting_a_video_or_a_user_deletes_their_progress(app, client, auth, films, make_user, login):
    put(client, films[0], 20)
    put(client, films[1], 20)
    other = make_user("other@example.com")
    login("other@example.com")
    put(client, films[0], 30)
    put(client, films[1], 30)
    with app.app_context():
        db.session.delete(db.session.get(Video, films[0]))
        db.session.commit()
    assert stored(app) == {(auth, films[1]): (20.0, False), (other, films[1]): (30.0, False)}
    with app.app_context():
        db.session.delete(db.session.get(User, other))
        db.session.commit()
    assert stored(app) == {(auth, films[1]): (20.0, False)}


def test_database_cascade_deletes_rows_when_rows_go_without_the_orm(app, client, auth, films):
    """PostgreSQL's ON DELETE CASCADE (SQLite does not enforce foreign keys; the ORM hook does)."""
    put(client, films[0], 20)
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("foreign keys are enforced on PostgreSQL only")
        db.session.execute(db.delete(Video).where(Video.id == films[0]))
        db.session.execute(db.delete(User).where(User.id == auth))
        db.session.commit()
    assert stored(app) == {}


def test_a_token_of_a_deleted_account_cannot_save_progress(app, client, auth, films):
    with app.app_context():
        db.session.delete(db.session.get(User, auth))
        db.session.commit()
    response = put(client, films[0], 20)
    assert response.status_code == 401
    assert stored(app) == {}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8)
BODIES = (st.builds(lambda value: {"position": value}, JSON)
          | st.dictionaries(st.sampled_from(["position", "Position", "video_id", ""]), JSON, max_size=3) | JSON)


@FEW
@given(body=BODIES | st.binary(max_size=40))
def test_any_progress_body_is_saved_or_refused_with_json_never_a_500(app, client, auth, films, body):
    """Property: whatever the body (any JSON value, any bytes), a save answers 200 with a position
    within the video's duration that is what is stored, or a 4xx with a JSON body; never a 500."""
    if isinstance(body, bytes):
        answer = client.put(f"/api/video/{films[0]}/progress/", data=body, content_type="application/json")
    else:
        answer = client.put(f"/api/video/{films[0]}/progress/", json=body)
    assert answer.status_code in (200, 400, 413, 415), (body, answer.status_code, answer.data[:200])
    payload = answer.get_json()
    assert isinstance(payload, dict), answer.data[:200]
    if answer.status_code == 200:
        assert 0 <= payload["position"] <= 100.0
        assert stored(app)[(auth, films[0])][0] == payload["position"]
    else:
        assert payload.get("detail") or payload.get("position") or payload.get("errors"), payload
