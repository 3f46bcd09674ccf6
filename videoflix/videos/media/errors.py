"""The one error type of the media library: a sentence for a human, and whether trying again may
help (`transient`: a full disk, a killed ffmpeg) or not (invalid input, a timeout that would recur).

InvalidMedia, its one subclass (probe.py), is input that may never be accepted.
"""


class MediaError(Exception):
    """A media step failed; `message` says why, `transient` whether a retry may pass."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.message = message
        self.transient = transient

    def __str__(self) -> str:
        return self.message
