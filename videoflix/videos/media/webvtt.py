"""WebVTT and SRT subtitle files: decode an upload (UTF-8, or UTF-16 with a byte order mark), parse
it (SRT is converted to WebVTT with webvtt-py), check its cues, and set its X-TIMESTAMP-MAP.

Encoding rule: anything else (Latin-1, Windows-1252...) is refused with a sentence saying so,
never guessed, since a wrong guess silently garbles every accented letter.

Pure Python + webvtt-py; no Flask, no app imports.
"""
import codecs
import io

import webvtt as webvtt_py
from webvtt.errors import MalformedFileError

from .errors import MediaError

MAX_BYTES = 1024 * 1024   # a two-hour film's subtitles are ~100 KB
END_SLACK = 5.0           # seconds a cue may end after the video (credits, rounding)


class InvalidSubtitles(MediaError):
    """A subtitle file that cannot be accepted; `too_large` when only its size is the matter."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message, transient=False)
        self.too_large = too_large


def decode(data, max_bytes=MAX_BYTES):
    """The text of an uploaded file; InvalidSubtitles unless it is UTF-8 or UTF-16 with a BOM."""
    if len(data) > max_bytes:
        raise InvalidSubtitles(f"The subtitle file is larger than {max_bytes // 1024} KB.", too_large=True)
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidSubtitles("The subtitle file is not UTF-8 text (Latin-1 or Windows-1252?): "
                                      "save it as UTF-8 and upload it again.") from None
    if "\x00" in text:
        raise InvalidSubtitles("The subtitle file is not a text file.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def to_webvtt(data, duration=None):
    """The WebVTT text of a .vtt or .srt upload (SRT converted), its cues checked against the
    video's `duration` when known. Raises InvalidSubtitles for anything it cannot vouch for."""
    text = decode(data)
    kind = "vtt" if text.lstrip().startswith("WEBVTT") else "srt"
    try:
        track = webvtt_py.from_buffer(io.StringIO(text), format=kind)
    except (MalformedFileError, ValueError, IndexError) as error:
        raise InvalidSubtitles(f"The file is neither valid WebVTT nor SRT ({error}).") from None
    if not track.captions:
        raise InvalidSubtitles("The subtitle file has no cues.")
    for number, cue in enumerate(track.captions, 1):
        start, end = cue.start_time.in_milliseconds() / 1000, cue.end_time.in_milliseconds() / 1000
        if start < 0 or end <= start:
            raise InvalidSubtitles(f"Cue {number} ends before it starts ({cue.start} --> {cue.end}).")
        if duration and (start >= duration or end > duration + END_SLACK):
            raise InvalidSubtitles(f"Cue {number} ({cue.start} --> {cue.end}) lies beyond the end "
                                          f"of the video ({duration:.1f} s).")
    return track.content


def with_timestamp_map(content, line):
    """The WebVTT text with `line` (an X-TIMESTAMP-MAP) as its only header line after WEBVTT."""
    head, _, rest = content.partition("\n")
    rest = "\n".join(ln for ln in rest.split("\n") if not ln.startswith("X-TIMESTAMP-MAP="))
    return f"{head}\n{line}\n{rest}"
