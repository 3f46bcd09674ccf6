"""The videos' HTTP and command-line surface: blueprints (`videos`: details, playlists, segments,
thumbnails, subtitles, storyboards; `catalogue`: the list, categories, watch progress; `uploads`:
tus), their marshmallow schemas, and the CLI commands.

Thin: load the request (a schema), call a service or a job, dump the answer. Every rule lives in
the packages below; nothing below imports this one. `make lint` checks that.
"""
