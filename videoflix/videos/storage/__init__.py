"""Where media bytes live: the stores (a folder below MEDIA_ROOT, or an S3-compatible bucket)
behind one interface of small verbs (`backends`: the Protocol, the errors; `local`, `s3`: the two
stores), the key layout and the store MEDIA_STORAGE names (`keys`), and
the files of one published version (`versions`).

It knows keys and bytes, never rows: it imports nothing else of the app (no model, no job), so the
models, jobs, uploads and delivery all build on it. `make lint` checks that.
"""
