"""Stored media are durable before a row names them ("nothing is ever lost or half-written"): the
local store fsyncs a stored upload and its directory entry before the row commits, and every file
of a published version before the row switches to it (and the previous version is removed)."""
import os

import pytest

from tests.fixtures.object_store import local_files_only
from tests.fixtures.videos import add_clip, files_below, fsyncs_before, media, row
from videoflix.extensions import db
from videoflix.videos.jobs import state
from videoflix.videos.uploads.service import accept

pytestmark = pytest.mark.media_store


@local_files_only
def test_the_stored_file_and_its_folder_are_fsynced_before_the_row_commits(app, clip_360p, monkeypatch):
    synced = fsyncs_before(monkeypatch, db.session, "commit")
    with app.app_context(), open(clip_360p, "rb") as stream:
        video = accept(stream, filename="a.mp4", title="T", category="Drama")
        stored = os.path.realpath(os.path.join(app.config["MEDIA_ROOT"], "uploads", video.source_file))
    assert stored in synced() and os.path.dirname(stored) in synced()
    with open(stored, "rb") as kept:
        assert kept.read() == clip_360p.read_bytes()


@local_files_only
def test_every_file_of_a_published_version_is_fsynced_before_the_row_names_it(app, clip_360p, monkeypatch):
    synced_before_switch = fsyncs_before(monkeypatch, state, "succeed")
    video_id = add_clip(app, clip_360p)  # transcoded inline
    video = row(app, video_id)
    assert video["status"] == "ready"
    published = files_below(media(app, "hls", video["hls_dir"]))
    assert {"master.m3u8", "thumbnail.jpg", "480p/index.m3u8", "480p/seg000.ts"} <= set(published)

    synced = synced_before_switch()
    version = os.path.realpath(media(app, "hls", video["hls_dir"]))
    # Each part's files and the version's playlists are synced where they are stored (file and
    # folder entry), before the row switches to the version.
    synced_files = {os.path.relpath(p, version) for p in synced if p.startswith(version + os.sep)}
    assert set(published) <= synced_files, set(published) - synced_files
    assert version in synced and os.path.join(version, "480p") in synced  # the folder entries
