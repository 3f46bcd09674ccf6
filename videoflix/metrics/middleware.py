"""Request counts and latency by route, measured at the app's WSGI entry point."""
import time

from flask import Flask, request

from videoflix.logs import ROUTE_KEY
from videoflix.metrics.instruments import FAILURES, REQUEST_SECONDS, REQUESTS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"
SEGMENT_ENDPOINT = "videos.media_segment"
SEGMENT_RULE_KEY = "videoflix_segment_rule"


def remember_route():
    """Flask's first before_request function: the request's URL rule, for the measurement (Flask
    clears its request from the environ when the request ends)."""
    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED


class MeasuredFlask(Flask):
    """Flask whose WSGI entry point (what gunicorn and test clients call) counts each request by
    route template (Flask's URL rule, never the path itself, so ids do not multiply the series),
    method and status, and times it until the app returns its body (not while the body streams:
    segments keep gunicorn's sendfile). Every layer of `wsgi_app` is inside, the segment fast path
    included; a request a fast path answered never met Flask: the beacon's names its route itself,
    a segment's is the segment route's."""

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status = []

        def capture(status_line, headers, exc_info=None):
            status.append(status_line[:3])
            return start_response(status_line, headers, exc_info)

        environ[ROUTE_KEY] = None  # Flask's first hook names the route (or the beacon fast path)
        try:
            return super().__call__(environ, capture)
        finally:
            self._observe(environ, status[-1] if status else "500", time.perf_counter() - started)

    def _observe(self, environ, status, seconds):
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in METHODS else "OTHER"
        route = environ.get(ROUTE_KEY) or self._segment_rule()
        REQUESTS.labels(route, method, status).inc()
        REQUEST_SECONDS.labels(route, method).observe(seconds)
        if status.startswith("5"):
            FAILURES.labels("http_5xx").inc()

    def _segment_rule(self):
        rule = self.extensions.get(SEGMENT_RULE_KEY)
        if rule is None:
            rules = [r.rule for r in self.url_map.iter_rules() if r.endpoint == SEGMENT_ENDPOINT]
            rule = self.extensions[SEGMENT_RULE_KEY] = rules[0] if rules else UNMATCHED
        return rule
