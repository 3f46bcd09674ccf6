"""HLS delivery: HTTP caching, ranges, path safety, the query-free hot path, X-Accel-Redirect."""
import os

import pytest
from sqlalchemy import update

from tests.fixtures.object_store import local_files_only
from tests.fixtures.streaming import copy_version
from tests.fixtures.videos import media, row
from videoflix.extensions import db
from videoflix.videos.models import PROCESSING, Video

pytestmark = pytest.mark.media_store

SECRET = b"ORIGINAL-UPLOAD-BYTES-never-served"
IMMUTABLE = "private, max-age=31536000, immutable"


@pytest.fixture
def video(auth, make_video):
    return make_video()


def segment_url(video_id, name="seg001.ts", label="480p"):
    return f"/api/video/{video_id}/{label}/{name}"


# --- HTTP caching and ranges ----------------------------------------------------------------------

def version_of(app, video_id):
    return row(app, video_id)["hls_dir"].rsplit("/", 1)[1]


def test_segment_of_the_current_version_is_private_immutable_with_validators(client, video, app):
    url = f"{segment_url(video)}?v={version_of(app, video)}"
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert {"Cookie", "Authorization"} <= set(response.vary)
    assert response.headers["Accept-Ranges"] == "bytes"
    # Date is the server's (gunicorn always sends one): none from the app, and no Expires.
    assert "Date" not in response.headers and "Expires" not in response.headers
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert etag.startswith('"') and "W/" not in etag

    cached = client.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.data == b""
    assert cached.headers["Cache-Control"] == IMMUTABLE
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    other = client.get(segment_url(video, "seg002.ts"), headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag


@local_files_only
@pytest.mark.parametrize("query", ["", "?v=", "?v=oldversion", "?x=1"])
def test_segment_without_the_current_version_revalidates(client, video, app, query):
    """A URL a re-transcode may reuse for other bytes is never immutable: the browser asks again."""
    hls_dir = row(app, video)["hls_dir"]
    response = client.get(segment_url(video) + query)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-cache"
    with open(media(app, "hls", hls_dir, "480p", "seg001.ts"), "rb") as f:
        assert response.data == f.read()
    etag = response.headers["ETag"]
    again = client.get(segment_url(video) + query, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["Cache-Control"] == "private, no-cache"


def test_credentials_vary_is_sent_once(client, video, app):
    response = client.get(segment_url(video), headers={"Origin": "http://localhost:5500"})
    values = [v.strip() for line in response.headers.getlist("Vary") for v in line.split(",")]
    assert values.count("Cookie") == 1 and values.count("Authorization") == 1, values
    assert "Origin" in values


@pytest.mark.parametrize("path", ["{id}/480p/index.m3u8", "{id}/master.m3u8"])
def test_playlists_revalidate(client, video, path):
    url = "/api/video/" + path.format(id=video)
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert {"Cookie", "Authorization"} <= set(response.vary)
    again = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


@local_files_only
def test_range_requests(client, video, app):
    hls_dir = row(app, video)["hls_dir"]
    with open(media(app, "hls", hls_dir, "480p", "seg001.ts"), "rb") as f:
        data = f.read()
    size = len(data)
    part = client.get(segment_url(video), headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-299/{size}"
    assert part.data == data[100:300]
    tail = client.get(segment_url(video), headers={"Range": "bytes=-188"})
    assert tail.status_code == 206 and tail.data == data[-188:]
    assert tail.headers["Content-Range"] == f"bytes {size - 188}-{size - 1}/{size}"
    beyond = client.get(segment_url(video), headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"
    assert beyond.is_json


# --- nothing but the rendition's files ------------------------------------------------------------

@pytest.fixture
def planted(app, video):
    """Secret files where a traversal would land: uploads/, work/, and the hls version folder."""
    hls_dir = row(app, video)["hls_dir"]
    media_root = app.config["MEDIA_ROOT"]
    paths = [
        os.path.join(media_root, "uploads", "source.mp4"),
        os.path.join(media_root, "uploads", "seg000.ts"),
        os.path.join(media_root, "work", hls_dir, "480p", "seg000.ts"),
        os.path.join(media_root, "work", "index.m3u8"),
        os.path.join(media_root, "hls", hls_dir, "480p", "seg.ts"),
    ]
    for path in paths:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(SECRET)
    return hls_dir


TRAVERSALS = [
    "{id}/480p/../../../../uploads/source.mp4",
    "{id}/480p/..%2f..%2f..%2f..%2fuploads%2fsource.mp4/",
    "{id}/480p/..%2F..%2F..%2F..%2Fuploads%2Fseg000.ts",
    "{id}/480p/%2e%2e/",
    "{id}/480p/%2e%2e%2f%2e%2e%2f%2e%2e%2fuploads%2fseg000.ts",
    "{id}/%2e%2e%2f%2e%2e%2f%2e%2e%2fuploads/seg000.ts/",
    "{id}/..%2f..%2f..%2fwork%2f{hls}%2f480p/seg000.ts",
    "{id}/480p/..\\..\\..\\..\\uploads\\seg000.ts",
    "{id}/480p/%5c..%5c..%5cuploads%5cseg000.ts",
    "{id}/480p/%2fetc%2fpasswd",
    "{id}/480p//etc/passwd",
    "{id}/480p/seg.ts",
    "{id}/480p/seg000.ts%00.m3u8",
    "{id}/480p/%2Ftmp%2Fseg000.ts",
    "{id}/..%2f..%2fuploads/index.m3u8",
    "{id}/480p/../../../work/index.m3u8",
    "..%2fuploads/480p/seg000.ts",
    "{id}/480p/seg000.ts/..%2f..%2f..%2f..%2fuploads%2fsource.mp4",
    "{id}/thumbnail.jpg/..%2f..%2f..%2fuploads%2fsource.mp4",
    "{id}/master.m3u8/../../../uploads/source.mp4",
    "../../uploads/source.mp4",
    "%2e%2e/%2e%2e/work/index.m3u8",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_never_reaches_uploads_or_work(client, planted, video, path):
    response = client.get("/api/video/" + path.format(id=video, hls=planted.replace("/", "%2f")))
    assert SECRET not in response.data
    assert response.status_code == 404, response.data
    assert response.is_json and set(response.get_json()) == {"detail"}


@local_files_only
def test_symlinks_inside_the_media_folder_are_not_followed(client, planted, video, app):
    media_root = app.config["MEDIA_ROOT"]
    label_dir = media(app, "hls", planted, "480p")
    os.symlink(os.path.join(media_root, "uploads", "source.mp4"), os.path.join(label_dir, "seg777.ts"))
    os.symlink("/etc/passwd", os.path.join(label_dir, "seg778.ts"))
    # A whole rendition folder pointing at work/ (720p is listed in the row's renditions).
    rendition = str(media(app, "hls", planted, "720p"))
    os.rename(rendition, rendition + ".real")
    os.symlink(os.path.join(media_root, "work", planted, "480p"), rendition)
    for url in (segment_url(video, "seg777.ts"), segment_url(video, "seg778.ts") + "/",
                segment_url(video, "seg000.ts", "720p"), f"/api/video/{video}/720p/index.m3u8"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert SECRET not in response.data and b"root:" not in response.data
    assert client.get(segment_url(video, "seg000.ts")).status_code == 200  # the real one still works


@local_files_only
def test_symlinked_thumbnail_is_refused(client, planted, video, app):
    thumb = media(app, "hls", planted, "thumbnail.jpg")
    os.remove(thumb)
    os.symlink(os.path.join(app.config["MEDIA_ROOT"], "uploads", "source.mp4"), thumb)
    response = client.get(f"/api/video/{video}/thumbnail.jpg")
    assert response.status_code == 404 and SECRET not in response.data


# --- the hot path ---------------------------------------------------------------------------------

def test_segment_requests_issue_no_sql_but_the_revocation_lookup(client, video, app, count_queries):
    assert client.get(segment_url(video, "seg000.ts")).status_code == 200  # warms the media index
    current = f"?v={version_of(app, video)}"  # as published playlists name them, or without
    with count_queries() as statements:
        for i in range(10):
            response = client.get(segment_url(video, f"seg00{i % 3}.ts") + (current if i % 2 else ""))
            assert response.status_code == 200
    assert not [s for s in statements if "revoked_token" not in s], statements
    assert len(statements) == (0 if app.config["REDIS_URL"] else 10)


def test_a_commit_in_this_process_takes_effect_at_the_next_segment(client, video, app):
    served = client.get(segment_url(video))
    assert served.status_code == 200 and served.data
    with app.app_context():
        db.session.get(Video, video).status = PROCESSING
        db.session.commit()
    gone = client.get(segment_url(video))  # the cached entry was dropped by the commit, not the TTL
    assert gone.status_code == 404 and gone.get_json() == {"detail": "Not found."}


@local_files_only
def test_a_new_version_from_another_process_is_found_when_the_old_files_go(client, video, app, hls_template):
    import shutil


    old = row(app, video)["hls_dir"]
    assert client.get(segment_url(video)).status_code == 200
    new = f"{video}/newversion"
    copy_version(app, hls_template, new)
    with app.app_context():
        # A Core UPDATE fires no ORM events: like a commit made by the transcoding worker.
        db.session.execute(update(Video).where(Video.id == video).values(hls_dir=new))
        db.session.commit()
    shutil.rmtree(media(app, "hls", old))
    response = client.get(segment_url(video))
    assert response.status_code == 200
    with open(media(app, "hls", new, "480p", "seg001.ts"), "rb") as f:
        assert response.data == f.read()


@local_files_only
def test_a_segment_of_a_version_published_by_another_process_is_that_versions(client, video, app, hls_template):
    """A playlist from another process names ?v=<new>; this process's cached entry is older."""

    old = row(app, video)["hls_dir"]
    assert client.get(segment_url(video)).status_code == 200  # caches the old version
    new = f"{video}/newversion"
    copy_version(app, hls_template, new)
    with open(media(app, "hls", new, "480p", "seg001.ts"), "ab") as f:
        f.write(b"\x47" + bytes(187))  # the new version's bytes differ
    with app.app_context():
        db.session.execute(update(Video).where(Video.id == video).values(hls_dir=new))  # no ORM events
        db.session.commit()
    response = client.get(segment_url(video) + "?v=newversion")
    assert response.status_code == 200 and response.headers["Cache-Control"] == IMMUTABLE
    with open(media(app, "hls", new, "480p", "seg001.ts"), "rb") as f:
        assert response.data == f.read()
    # An old playlist's URL (the old files are not deleted yet) gets the current bytes, revalidated.
    stale = client.get(segment_url(video) + f"?v={old.split('/')[1]}")
    assert stale.headers["Cache-Control"] == "private, no-cache" and stale.data == response.data


# --- production: nginx sends the bytes ------------------------------------------------------------

@pytest.fixture
def accel_config(app_config):
    app_config["MEDIA_ACCEL_REDIRECT"] = "/protected-media/"
    return app_config


@pytest.mark.parametrize("path, kind, cache", [
    ("480p/seg001.ts?v={version}", "video/MP2T", IMMUTABLE),
    ("720p/seg000.ts/?v={version}", "video/MP2T", IMMUTABLE),
    ("720p/seg000.ts?v=stale", "video/MP2T", "private, no-cache"),
    ("480p/seg002.ts", "video/MP2T", "private, no-cache"),
    ("720p/index.m3u8", "application/vnd.apple.mpegurl", "private, no-cache"),
    ("master.m3u8", "application/vnd.apple.mpegurl", "private, no-cache"),
])
@local_files_only
def test_accel_redirect_headers(accel_config, client, video, app, path, kind, cache):
    """nginx keeps the app's Cache-Control on an X-Accel-Redirect: the app decides it."""
    hls_dir = row(app, video)["hls_dir"]
    response = client.get(f"/api/video/{video}/" + path.format(version=version_of(app, video)))
    assert response.status_code == 200
    assert response.data == b""
    file = path.split("?")[0].rstrip("/")
    assert response.headers["X-Accel-Redirect"] == f"/protected-media/hls/{hls_dir}/{file}"
    assert response.headers["Content-Type"] == kind
    assert response.headers["Cache-Control"] == cache
    assert {"Cookie", "Authorization"} <= set(response.vary)


@local_files_only
def test_accel_redirect_thumbnail_and_refusals(accel_config, client, planted, video, app):
    response = client.get(f"/api/video/{video}/thumbnail.jpg?v={planted.split('/')[1]}")
    assert response.headers["X-Accel-Redirect"] == f"/protected-media/hls/{planted}/thumbnail.jpg"
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.headers["Cache-Control"] == IMMUTABLE
    os.symlink(os.path.join(app.config["MEDIA_ROOT"], "uploads", "source.mp4"),
               media(app, "hls", planted, "480p", "seg555.ts"))
    for path in TRAVERSALS[:8] + ["{id}/480p/seg555.ts", "{id}/1080p/seg000.ts"]:
        refused = client.get("/api/video/" + path.format(id=video, hls=planted))
        assert refused.status_code == 404 and "X-Accel-Redirect" not in refused.headers
    anonymous = app.test_client().get(segment_url(video))
    assert anonymous.status_code == 401 and "X-Accel-Redirect" not in anonymous.headers
