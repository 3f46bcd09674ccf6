"""Two staff members add a track to the same video at once: the second waits for the first (the
video's row is locked while its tracks change), so the master names both. Real threads, each with
its own database connection (SQLite as a file here; PostgreSQL with TEST_DATABASE_URL)."""
import threading

import pytest

from tests.fixtures.subtitles import SRT, VTT, master, stored
from videoflix.extensions import db
from videoflix.videos.jobs import subtitle_tracks
from videoflix.videos.models import Video
from videoflix.videos.storage.versions import VersionFiles

pytestmark = pytest.mark.media_store


@pytest.fixture
def app_config(app_config, tmp_path):
    if app_config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):  # one connection per thread
        app_config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'tracks.sqlite3'}"
    return app_config


def test_two_tracks_added_at_once_are_both_named_by_the_master(app, client, auth, make_video, monkeypatch):
    video_id = make_video()
    first_publishing, go_on, masters = threading.Event(), threading.Event(), []
    real_write = VersionFiles.write

    def write(self, name, text):
        if name == "master.m3u8":
            if not first_publishing.is_set():  # the first add stops here, its row not committed yet
                first_publishing.set()
                assert go_on.wait(20)
            masters.append(text)
        return real_write(self, name, text)

    monkeypatch.setattr(VersionFiles, "write", write)
    errors = []

    def add(language, label, data):
        try:
            with app.app_context():
                subtitle_tracks.add(db.session.get(Video, video_id), data.encode(), language=language, label=label)
        except Exception as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    first = threading.Thread(target=add, args=("de", "Deutsch", SRT))
    first.start()
    assert first_publishing.wait(20)
    second = threading.Thread(target=add, args=("fr", "Français", VTT))
    second.start()
    second.join(1.5)
    assert masters == []  # the second add waits for the first one's transaction
    go_on.set()
    first.join(30)
    second.join(30)

    assert errors == [] and not first.is_alive() and not second.is_alive()
    assert sorted(stored(app, video_id)) == [("de", "Deutsch"), ("fr", "Français")]
    assert [(m.language, m.name) for m in master(client, video_id).media] == [("de", "Deutsch"), ("fr", "Français")]
    assert len(masters) == 2 and "LANGUAGE=\"fr\"" not in masters[0] and "LANGUAGE=\"de\"" in masters[1]
