"""The upload's text fields (title, description, category, file name) follow one rule on every way
in (tus metadata, the back office's form and edit page, flask add-video): NUL and the other control
characters are refused with a field error, never stored, never a 500 (PostgreSQL refuses NUL; a
lone surrogate is not UTF-8) (issue 18, finding 5). A description keeps its line breaks and tabs."""
import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fixtures.properties import FEW, MANY
from tests.fixtures.tus_uploads import FIELDS, STREAM, TUS, bearer, metadata
from tests.fixtures.videos import add_clip, csrf, files_below, media, row, sign_in_staff
from videoflix.extensions import db
from videoflix.videos.models import Video
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.uploads.chunks import tus_root
from videoflix.videos.uploads.service import UploadRefused, load_fields

pytestmark = pytest.mark.media_store

RULES = {"title": "The title may not contain control characters.",
         "description": "The description may not contain control characters other than line breaks and tabs.",
         "category": "The category may not contain control characters.",
         "filename": "The file name may not contain control characters."}
CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b", "\ud800"]


def rows(app, model):
    with app.app_context():
        return db.session.execute(db.select(model)).scalars().all()


def scratch_folders(app):
    with app.app_context():
        root = tus_root()
        return list(root.iterdir()) if root.exists() else []


@pytest.fixture
def app_config(app_config):
    app_config["TUS_MAX_UNFINISHED"] = 0  # the properties create an upload per example
    return app_config


@pytest.fixture
def staff(client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


# ------------------------------------------------------------------------------------ tus

@pytest.mark.parametrize("field", ["title", "description", "category", "filename"])
@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x9b"])
def test_a_control_character_in_tus_metadata_refuses_the_creation(client, app, staff, field, control):
    fields = {**FIELDS, field: f"Inside{control}it"}
    response = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "8",
                                                     "Upload-Metadata": metadata(fields)})
    assert response.status_code == 400
    assert response.get_json() == {field: [RULES[field]]}
    assert "Location" not in response.headers
    assert rows(app, TusUpload) == [] and scratch_folders(app) == []


def test_creation_with_upload_and_a_nul_file_name_leaves_no_upload(client, app, staff):
    """Before: 500 without a Location, and an upload nobody could resume or delete."""
    fields = {**FIELDS, "filename": "clip\x00.mp4"}
    response = client.post("/api/uploads/", data=b"abcd", content_type=STREAM, headers={
        **TUS, **staff, "Upload-Length": "4", "Upload-Metadata": metadata(fields)})
    assert response.status_code == 400 and response.get_json() == {"filename": [RULES["filename"]]}
    assert rows(app, TusUpload) == [] and scratch_folders(app) == []


def test_a_description_keeps_its_line_breaks_and_tabs(client, app, staff):
    fields = {**FIELDS, "description": "First line\r\nSecond\tline\n\nThird"}
    response = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "8",
                                                     "Upload-Metadata": metadata(fields)})
    assert response.status_code == 201, response.get_json()
    [upload] = rows(app, TusUpload)
    assert upload.upload_metadata["description"] == "First line\r\nSecond\tline\n\nThird"


@pytest.mark.parametrize("field", ["title", "category", "filename"])
@pytest.mark.parametrize("separator", ["\n", "\t", "\u2028", "\u2029"])
def test_one_line_fields_refuse_line_breaks_and_tabs_inside(client, app, staff, field, separator):
    fields = {**FIELDS, field: f"Two{separator}lines"}
    response = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "8",
                                                     "Upload-Metadata": metadata(fields)})
    assert response.status_code == 400 and response.get_json() == {field: [RULES[field]]}


# ------------------------------------------------------------------------------------ back office

def admin_upload(client, **fields):
    data = {"csrf_token": csrf(client, "/admin/videos/new/"), "title": "Uploaded", "description": "Via the admin",
            "category": "Drama", "file": (io.BytesIO(b"not probed: the fields are refused first"), "a.mp4")}
    for name, value in fields.items():
        if name == "filename":
            data["file"] = (io.BytesIO(b"not probed: the fields are refused first"), value)
        else:
            data[name] = value
    return client.post("/admin/videos/new/", data=data, content_type="multipart/form-data")


@pytest.mark.parametrize("field", ["title", "description", "category"])
def test_the_admin_form_refuses_a_nul_with_the_field_error(app, client, make_user, field):
    sign_in_staff(make_user, client)
    response = admin_upload(client, **{field: "Bad\x00value"})
    assert response.status_code == 200  # the form again, with the field's error
    assert RULES[field].encode() in response.data
    assert rows(app, Video) == [] and files_below(media(app, "uploads")) == []


def test_the_admin_form_refuses_a_control_character_in_the_file_name(app, client, make_user):
    sign_in_staff(make_user, client)
    response = admin_upload(client, filename="clip\x1b.mp4")
    assert response.status_code == 400
    assert f"The upload was refused: {RULES['filename']}".encode() in response.data
    assert rows(app, Video) == [] and files_below(media(app, "uploads")) == []


def test_the_admin_edit_page_refuses_a_nul_in_the_title(app, client, make_user, clip_360p):
    sign_in_staff(make_user, client)
    video_id = add_clip(app, clip_360p)
    before = row(app, video_id)
    path = f"/admin/videos/edit/?id={video_id}"
    response = client.post(path, data={"csrf_token": csrf(client, path), "title": "New\x00title",
                                       "description": "", "category": "Drama"})
    assert response.status_code == 200 and RULES["title"].encode() in response.data
    assert row(app, video_id)["title"] == before["title"]


# ------------------------------------------------------------------------------------ CLI

@pytest.mark.parametrize(("option", "value", "field"), [
    ("--title", "Red\x1b[31m title", "title"), ("--category", "Dra\x07ma", "category"),
    ("--description", "Bad\x00description", "description"),
    ("--title", "Not UTF-8 \udcff", "title"),  # an argv byte that is not UTF-8 (surrogateescape)
])
def test_add_video_refuses_a_control_character(app, runner, tmp_path, option, value, field):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not probed: the fields are refused first")
    args = {"--title": "Title", "--category": "Drama", "--description": "", option: value}
    result = runner.invoke(args=["add-video", str(clip), *[x for pair in args.items() for x in pair]])
    assert result.exit_code == 1
    assert result.output == f"Error: {clip}: {RULES[field]}\n"
    assert rows(app, Video) == [] and files_below(media(app, "uploads")) == []


def test_add_video_refuses_a_file_name_with_a_control_character(app, runner, tmp_path):
    clip = tmp_path / "clip\x1b.mp4"
    clip.write_bytes(b"not probed: the fields are refused first")
    result = runner.invoke(args=["add-video", str(clip), "--title", "Title", "--category", "Drama"])
    assert result.exit_code == 1 and result.output == f"Error: {clip}: {RULES['filename']}\n"
    assert rows(app, Video) == []


# ------------------------------------------------------------------------------------ properties

def _allowed(field, value):
    """The rule restated: what a stored field may contain."""
    allowed_controls = "\t\n\r" if field == "description" else ""
    for char in value:
        code = ord(char)
        if (code < 0x20 or 0x7F <= code <= 0x9F) and char not in allowed_controls:
            return False
        if 0xD800 <= code <= 0xDFFF or (field != "description" and char in "\u2028\u2029"):
            return False
    return True


def _long_enough(field, value):
    limits = {"title": (1, 200), "category": (1, 80), "description": (0, 5000), "filename": (0, None)}
    low, high = limits[field]
    return len(value) >= low and (high is None or len(value) <= high)


FIELD_TEXT = st.one_of(st.text(), st.text(alphabet=st.sampled_from(["a", " ", "\t", "\n", *CONTROLS, "\u2028"])))


@MANY
@given(field=st.sampled_from(["title", "description", "category", "filename"]), value=FIELD_TEXT)
@example(field="title", value="\x00")
def test_the_rule_keeps_clean_text_and_refuses_the_rest_by_field(field, value):
    data = {**FIELDS, field: value}
    try:
        loaded = load_fields(data)
    except UploadRefused as error:
        assert set(error.errors) == {field}
        assert all(isinstance(m, str) and m for m in error.errors[field])
        assert not (_allowed(field, value.strip()) and _long_enough(field, value.strip()))
    else:
        assert loaded[field] == value.strip() and _allowed(field, value.strip())


@FEW
@given(title=FIELD_TEXT, filename=FIELD_TEXT)
def test_any_tus_metadata_text_is_a_field_error_or_an_upload(client, app, staff, title, filename):
    """On PostgreSQL a NUL that got through would be a 500 here."""
    header = metadata({**FIELDS, "title": title, "filename": filename}) if "\ud800" not in title + filename else None
    if header is None:
        return  # a lone surrogate cannot be encoded as UTF-8, so no client can send it in metadata
    response = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "8", "Upload-Metadata": header})
    body = response.get_json(silent=True)
    if response.status_code == 201:
        with app.app_context():
            upload = db.session.get(TusUpload, response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
            assert upload.upload_metadata["title"] == title.strip()
    else:
        assert response.status_code == 400 and set(body) <= {"title", "filename"} and body, body
