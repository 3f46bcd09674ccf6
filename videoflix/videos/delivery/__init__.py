"""Sending media to viewers: which videos are playable (`index`), which stored file a request
names (`files`), how it is sent (`send`: app, X-Accel-Redirect, presigned URLs), and the WSGI
fast path that answers segment requests before Flask (`fastpath`).

It reads the models and the storage package; nothing of the jobs, uploads or catalogue. `make
lint` checks that.
"""
