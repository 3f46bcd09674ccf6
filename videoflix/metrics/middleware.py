"""Request counts and latency by route, measured around the whole WSGI stack."""
import time

from flask import request

from videoflix.metrics.instruments import FAILURES, REQUEST_SECONDS, REQUESTS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"
SEGMENT_ENDPOINT = "videos.media_segment"
ROUTE_KEY = "videoflix.route"


def remember_route():
    """Flask's first before_request function: the request's URL rule, for the middleware (Flask
    clears its request from the environ when the request ends)."""
    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED


class RequestMetrics:
    """WSGI middleware: counts each request by route template (Flask's URL rule, never the path
    itself, so ids do not multiply the series), method and status, and times it until the app
    returns its body (not while the body streams: segments keep gunicorn's sendfile).

    A request the segment fast path answered never met Flask (no hook named its route): it is the
    segment route's.
    """

    def __init__(self, app, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app
        self._segment_rule = None

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status = []

        def capture(status_line, headers, exc_info=None):
            status.append(status_line[:3])
            return start_response(status_line, headers, exc_info)

        environ[ROUTE_KEY] = None  # Flask's first hook names the route; the fast path leaves it
        try:
            return self.wsgi_app(environ, capture)
        finally:
            self._observe(environ, status[-1] if status else "500", time.perf_counter() - started)

    def _observe(self, environ, status, seconds):
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in METHODS else "OTHER"
        route = self._route(environ)
        REQUESTS.labels(route, method, status).inc()
        REQUEST_SECONDS.labels(route, method).observe(seconds)
        if status.startswith("5"):
            FAILURES.labels("http_5xx").inc()

    def _route(self, environ):
        route = environ.get(ROUTE_KEY)
        return route if route is not None else self.segment_rule()  # None: Flask never saw it

    def segment_rule(self):
        if self._segment_rule is None:
            rules = [r.rule for r in self.app.url_map.iter_rules() if r.endpoint == SEGMENT_ENDPOINT]
            self._segment_rule = rules[0] if rules else UNMATCHED
        return self._segment_rule
