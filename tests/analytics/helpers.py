"""Helpers of the analytics tests: beacons as the player sends them, and the roll-up run as if
time had passed."""
import uuid
from datetime import timedelta

from videoflix.analytics import rollup
from videoflix.analytics.models import PlaybackSession
from videoflix.extensions import db
from videoflix.models_base import utcnow


def new_session():
    return str(uuid.uuid4())


def beacon(client, video_id, session, seq, event="progress", position=0.0, watched=0.0, **extra):
    """POST one beacon; the response."""
    body = {"session": session, "seq": seq, "event": event, "position": position, "watched": watched, **extra}
    return client.post(f"/api/video/{video_id}/playback/", json=body)


def watch(client, video_id, ranges, *, session=None, ttff_ms=None, step=10.0, end=False, **first):
    """Play the (start, stop) ranges in order as our player reports them: a start beacon, a
    progress beacon every `step` seconds of playback, a seek beacon when a range ends early, an end
    beacon (when `end`). Returns (session, beacons sent)."""
    session = session or new_session()
    seq = 0
    assert beacon(client, video_id, session, seq, "start", ranges[0][0], ttff_ms=ttff_ms, **first).status_code == 200
    for index, (start, stop) in enumerate(ranges):
        position = start
        while position < stop:
            nxt = min(position + step, stop)
            last = nxt == stop
            event = "progress"
            if last and index < len(ranges) - 1:
                event = "seek"
            elif last and end:
                event = "end"
            seq += 1
            response = beacon(client, video_id, session, seq, event, nxt, nxt - position)
            assert response.status_code == 200, response.get_json()
            position = nxt
    return session, seq + 1


def roll_up(app, later=timedelta(hours=1)):
    """Run the roll-up as if `later` had passed (every session closed by then)."""
    with app.app_context():
        return rollup.run(now=utcnow() + later)


def sessions(app):
    with app.app_context():
        return {s.id: s for s in db.session.execute(db.select(PlaybackSession)).scalars()}
