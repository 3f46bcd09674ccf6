"""Helpers for the tus tests: headers, a staff Bearer token, the upload's row and scratch folder."""
import base64

from tests.conftest import PASSWORD
from videoflix.extensions import db
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.storage.keys import media_store
from videoflix.videos.uploads import chunks, tus

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = "application/offset+octet-stream"
FIELDS = {"filename": "clip.mp4", "title": "Resumed", "description": "Sent in chunks.", "category": "Drama"}


def metadata(fields=None):
    fields = FIELDS if fields is None else fields
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def bearer(client, email, password=PASSWORD):
    """Sign in through the API; the Authorization header of its access token (no cookie kept)."""
    response = client.post("/api/login/", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    token = client.get_cookie("access_token").value
    client.delete_cookie("access_token")
    client.delete_cookie("refresh_token")
    return {"Authorization": f"Bearer {token}"}


def upload_row(app, upload_id):
    with app.app_context():
        upload = db.session.get(TusUpload, upload_id)
        return None if upload is None else {c.name: getattr(upload, c.name) for c in TusUpload.__table__.columns}


def scratch(app, upload_id):
    with app.app_context():
        return chunks.tus_root() / upload_id


def id_of(location):
    return location.rstrip("/").rsplit("/", 1)[1]


def received(app, upload_id):
    """The bytes of the upload stored so far (its scratch file, or its parts in the bucket)."""
    with app.app_context(), tus.chunks().open(upload_id) as stream:
        return b"".join(iter(lambda: stream.read(65536), b""))


def kept(app, upload_id):
    """Whether anything of the upload's bytes is stored (its scratch folder, or a part)."""
    with app.app_context():
        store = media_store()
        return (chunks.tus_root() / upload_id).exists() if store.local else bool(store.list(f"tus/{upload_id}"))
