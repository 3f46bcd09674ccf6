"""The floor of path (c) in bench/serve.py: a WSGI app that checks nothing and hands every request
to nginx with the benchmark segment's X-Accel-Redirect. Run in the same gunicorn and behind the
same nginx configuration as the real app, it shows what (c) would reach if authenticating and
locating the file cost nothing. Not part of Videoflix."""

HEADERS = [
    ("Content-Type", "video/MP2T"),
    ("Content-Length", "0"),
    ("X-Accel-Redirect", "/protected-media/hls/1/bench/480p/seg000.ts"),
    ("Cache-Control", "private, max-age=31536000, immutable"),
]


def app(environ, start_response):
    start_response("200 OK", list(HEADERS))
    return [b""]
