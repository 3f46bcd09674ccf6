"""How a video file comes in: the upload service every way in calls (`service`: fields, limits,
probe, a neutral stored name, the row), and resumable uploads over tus 1.0.0 (`tus`: the protocol's
rules; `chunks`: where unfinished bytes wait; `headers`: the header formats and refusals).

It may use the media library (the probe), the models, the storage package and the task queue (a
finished upload queues its transcode); never the HTTP layer. `make lint` checks that.
"""
