"""The tus headers we parse (Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum) are
untrusted text: whatever a client sends gets a 4xx with a JSON body or is taken, never a 500
(issue 18, finding 4), request by request and as properties (hypothesis) of the parsers and the
routes."""
import base64
import hashlib
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fixtures.properties import FEW, MANY
from tests.fixtures.tus_uploads import STREAM, TUS, bearer, id_of, metadata, received, upload_row
from videoflix.extensions import db
from videoflix.videos.models.tus_upload import TusUpload
from videoflix.videos.uploads.headers import TusError, parse_checksum, parse_length, parse_metadata

pytestmark = pytest.mark.media_store

# Characters str.isdigit() or int() take that are not ASCII digits: superscripts, other scripts'
# digits, fullwidth digits.
NOT_ASCII_DIGITS = ["²", "1²", "³", "٣", "१२", "１２", "𝟗"]


@pytest.fixture
def app_config(app_config):
    app_config["TUS_MAX_UNFINISHED"] = 0  # the properties create an upload per example
    return app_config


@pytest.fixture
def staff(client, make_user):
    make_user("staff@example.com", staff=True)
    return bearer(client, "staff@example.com")


def uploads(app):
    with app.app_context():
        return db.session.execute(db.select(TusUpload.id)).scalars().all()


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_an_upload_length_of_other_digits_is_400(client, app, staff, value):
    response = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": value,
                                                     "Upload-Metadata": metadata()})
    assert response.status_code == 400
    assert response.get_json() == {"detail": "A non-negative integer is required."}
    assert uploads(app) == []


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_an_upload_offset_of_other_digits_is_400_and_nothing_is_written(client, app, staff, value):
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "8",
                                                     "Upload-Metadata": metadata()}).headers["Location"]
    response = client.patch(location, data=b"abcd", headers={**TUS, **staff, "Upload-Offset": value,
                                                             "Content-Type": STREAM})
    assert response.status_code == 400
    assert response.get_json() == {"detail": "A non-negative integer is required."}
    assert received(app, id_of(location)) == b""


@pytest.mark.parametrize("value", ["é", "dGl0bGU=é", "ü" * 8, "\u00ff\u00fe"])
def test_non_ascii_in_a_metadata_value_is_400(client, app, staff, value):
    response = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "8",
                                                     "Upload-Metadata": f"title {value}"})
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Upload-Metadata: the value of 'title' is not base64-encoded UTF-8."}
    assert uploads(app) == []


@pytest.mark.parametrize("value", ["sha1 é", "sha1 " + "ä" * 28, "sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=é"])
def test_non_ascii_in_the_checksum_is_400_and_nothing_is_written(client, app, staff, value):
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "8",
                                                     "Upload-Metadata": metadata()}).headers["Location"]
    response = client.patch(location, data=b"abcd", headers={**TUS, **staff, "Upload-Offset": "0",
                                                             "Content-Type": STREAM, "Upload-Checksum": value})
    assert response.status_code == 400
    assert response.get_json() == {"detail": "Upload-Checksum: the sha1 digest is not valid base64."}
    assert received(app, id_of(location)) == b""
    assert upload_row(app, id_of(location))["locked_by"] is None


# ------------------------------------------------------------------------------------ properties

@MANY
@given(st.one_of(st.none(), st.text()))
@example("²")
@example("٣")
def test_parse_length_takes_ascii_digits_only(value):
    try:
        length = parse_length(value)
    except TusError as error:
        assert error.status == 400 and error.detail == "A non-negative integer is required."
        assert value is None or not (value.isascii() and value.isdigit()) or len(value) > 19
    else:
        assert value.isascii() and value.isdigit() and length == int(value) and 0 <= length < 10 ** 19


@MANY
@given(st.text(alphabet=string.digits, min_size=1, max_size=19))
def test_parse_length_reads_every_ascii_number(value):
    assert parse_length(value) == int(value)


@MANY
@given(st.one_of(st.none(), st.text()))
@example("title é")
def test_parse_metadata_gives_text_values_or_a_400(header):
    try:
        parsed = parse_metadata(header)
    except TusError as error:
        assert error.status == 400 and error.detail.startswith("Upload-Metadata")
    else:
        assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in parsed.items())


@MANY
@given(st.dictionaries(st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1),
                       st.text(), max_size=6))
def test_parse_metadata_reads_back_what_a_client_encodes(values):
    header = ",".join(f"{k} {base64.b64encode(v.encode('utf-8', 'surrogatepass')).decode()}"
                      for k, v in values.items())
    surrogate = any(0xD800 <= ord(c) <= 0xDFFF for v in values.values() for c in v)
    try:
        parsed = parse_metadata(header)
    except TusError as error:  # a lone surrogate is not UTF-8: refused, never a 500
        assert surrogate and error.status == 400
    else:
        assert parsed == values and not surrogate


@MANY
@given(st.one_of(st.none(), st.text(), st.binary().map(lambda b: "sha1 " + base64.b64encode(b).decode())))
@example("sha1 é")
def test_parse_checksum_gives_a_sha1_digest_or_a_400(header):
    try:
        digest = parse_checksum(header)
    except TusError as error:
        assert error.status == 400 and error.detail.startswith(("Upload-Checksum", "Unsupported checksum"))
    else:
        assert digest is None if header is None else len(digest) == hashlib.sha1().digest_size


# Header values as a client can send them: any text without line breaks (HTTP has no way to carry
# those), or arbitrary bytes read as Latin-1 (what a WSGI server hands the app).
HEADER_TEXT = st.one_of(st.text().filter(lambda t: "\n" not in t and "\r" not in t),
                        st.binary(max_size=40).map(lambda b: b.decode("latin-1").replace("\n", "").replace("\r", "")))


def _is_json_4xx_or_success(response):
    if response.status_code < 400:
        return response.status_code in (200, 201, 204)
    return 400 <= response.status_code < 500 and isinstance(response.get_json(silent=True), dict)


@FEW
@given(length=HEADER_TEXT, meta=HEADER_TEXT)
def test_any_creation_headers_are_a_json_4xx_or_a_created_upload(client, app, staff, length, meta):
    response = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": length,
                                                     "Upload-Metadata": meta})
    assert _is_json_4xx_or_success(response), (response.status_code, response.data)
    if response.status_code == 201:
        assert upload_row(app, id_of(response.headers["Location"]))["length"] == int(length)


@FEW
@given(offset=HEADER_TEXT, checksum=st.one_of(st.none(), HEADER_TEXT))
def test_any_patch_headers_are_a_json_4xx_or_a_write(client, app, staff, offset, checksum):
    location = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": "4",
                                                     "Upload-Metadata": metadata()}).headers["Location"]
    extra = {} if checksum is None else {"Upload-Checksum": checksum}
    response = client.patch(location, data=b"ab", headers={**TUS, **staff, "Upload-Offset": offset,
                                                           "Content-Type": STREAM, **extra})
    assert _is_json_4xx_or_success(response), (response.status_code, response.data)
    assert received(app, id_of(location)) == (b"ab" if response.status_code == 204 else b"")
    assert upload_row(app, id_of(location))["locked_by"] is None
