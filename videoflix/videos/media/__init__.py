"""The media library: probing a source, running ffmpeg, planning and writing the HLS ladder,
storyboards and WebVTT.

It works on local files and argument lists only: no Flask, no database, no other module of the
app (a library you could pip install). The jobs and the upload service call it; it calls nothing
of theirs. `make lint` checks that.
"""
