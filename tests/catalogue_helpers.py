"""Rows for the catalogue and progress tests: ready (or not) videos inserted directly, no transcode."""
from datetime import UTC, datetime, timedelta

from videoflix.extensions import db
from videoflix.videos.models import PENDING, READY, Video

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def add_videos(app, *specs):
    """add_videos(app, dict(title=..., description=..., category=..., status=..., duration=...,
    age=minutes before T0)...) -> ids in the given order. Thumbnails are set on even ids."""
    ids = []
    with app.app_context():
        for n, spec in enumerate(specs):
            spec = dict(spec)
            age = spec.pop("age", n)
            video = Video(
                title=spec.pop("title", f"Video {n}"), description=spec.pop("description", ""),
                category=spec.pop("category", "Drama"), status=spec.pop("status", READY),
                duration=spec.pop("duration", 100.0), created_at=T0 - timedelta(minutes=age), **spec,
            )
            db.session.add(video)
            db.session.flush()
            if video.id % 2 == 0:
                video.thumbnail = f"{video.id}/abc{video.id}/thumbnail.jpg"
            ids.append(video.id)
        db.session.commit()
    return ids


__all__ = ["PENDING", "READY", "add_videos"]
