"""Operator metrics: `/metrics` in the Prometheus text format.

This package owns the instruments (`instruments`: request counts and latency by route, transcode
duration and time to playable, failures by kind, bucket errors), what is read at scrape time
(`collect`: queue depth per queue, active playback sessions), the app's WSGI entry point that
times every request (`middleware.MeasuredFlask`, the segment fast path included) and the route
with its access rule
(`routes`: configured addresses, or the METRICS_TOKEN).

With METRICS_DIR set, every process of a host (gunicorn's workers, `flask worker` and its
processes) writes its counters there (prometheus_client's multiprocess mode) and `/metrics` sums
them; unset, each process answers with its own.

It may import the app's plumbing (extensions, tasks, auth.credentials), the media store and the
video rows (to observe them) and analytics.beacons (active sessions); only the factory imports it.
"""


def init_app(app):
    from videoflix.metrics import middleware, observers, routes

    app.register_blueprint(routes.bp)
    # First of all, so a request another hook answers (a refusal) is still known by its route.
    app.before_request_funcs.setdefault(None, []).insert(0, middleware.remember_route)
    observers.init_app(app)

