"""The header formats of tus 1.0.0 (Upload-Length, Upload-Metadata, Upload-Checksum) and the
error every refusal of the protocol raises (videoflix.videos.api.uploads answers it as JSON)."""
import base64
import hashlib
import re

DIGITS = re.compile("[0-9]{1,19}")  # ASCII only: str.isdigit() and int() take "²", "٣", "１" too


class TusError(Exception):
    """A request the protocol refuses: `status` and a sentence (the routes answer them as JSON)."""

    status = 400

    def __init__(self, detail, status=None, payload=None):
        super().__init__(detail)
        self.detail, self.payload = detail, payload
        if status is not None:
            self.status = status


class UploadLocked(TusError):
    status = 423


class OffsetMismatch(TusError):
    status = 409


class TooLarge(TusError):
    status = 413


class ChecksumMismatch(TusError):
    status = 460


class Gone(TusError):
    status = 410


def parse_length(value):
    """Upload-Length / Upload-Offset: a non-negative integer (TusError 400 otherwise)."""
    if value is None or not DIGITS.fullmatch(value):
        raise TusError("A non-negative integer is required.")
    return int(value)


def parse_metadata(header):
    """Upload-Metadata: comma-separated `key base64value` (value optional) -> {key: text}.

    Raises TusError(400) for a malformed pair, a value that is not base64 UTF-8, or a duplicate key.
    """
    metadata = {}
    for pair in filter(None, (p.strip() for p in (header or "").split(","))):
        key, _, value = pair.partition(" ")
        if not key or " " in value.strip() or key in metadata:
            raise TusError("Upload-Metadata must be comma-separated pairs of a key and a base64 value.")
        try:
            metadata[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 (UnicodeDecodeError)
            raise TusError(f"Upload-Metadata: the value of {key!r} is not base64-encoded UTF-8.") from None
    return metadata


def parse_checksum(header):
    """Upload-Checksum `sha1 <base64 digest>` -> the digest bytes, or None without the header."""
    if header is None:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm.lower() != "sha1":
        raise TusError("Unsupported checksum algorithm (Tus-Checksum-Algorithm: sha1).")
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except ValueError:  # not base64 (binascii.Error), or not ASCII
        digest = b""
    if len(digest) != hashlib.sha1().digest_size:
        raise TusError("Upload-Checksum: the sha1 digest is not valid base64.")
    return digest


def encode_metadata(values):
    """Upload-Metadata for {key: text}: `key base64value` pairs, comma-separated."""
    return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in values.items())
