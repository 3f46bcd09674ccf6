"""What `/metrics` reads when it is scraped: the process's (or, with METRICS_DIR, every process's)
instruments, and the gauges only the database and the queues know."""
import logging
from datetime import timedelta

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from videoflix import tasks
from videoflix.analytics.beacons import active_sessions
from videoflix.extensions import db
from videoflix.metrics.instruments import METRICS_DIR, REGISTRY
from videoflix.models_base import utcnow

log = logging.getLogger(__name__)
# A player beacons every 10 s while it plays: a session heard from in this window is playing.
ACTIVE_WINDOW = timedelta(seconds=30)


class AppCollector:
    """Queue depth per queue and active playback sessions, read at scrape time (in the request's
    app context); `videoflix_metrics_source_up` says which source could not be read."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        up = GaugeMetricFamily("videoflix_metrics_source_up", "Whether a source of these metrics could be read.",
                               labels=["source"])
        depth = GaugeMetricFamily("videoflix_queue_depth", "Tasks waiting on each queue.", labels=["queue"])
        try:
            for name, huey in tasks.tasks_of(self.app).queues.items():
                depth.add_metric([name], huey.pending_count())
            up.add_metric(["queue"], 1)
            yield depth
        except Exception:  # Redis away: the other metrics still answer
            log.warning("Queue depth unavailable for /metrics", exc_info=True)
            up.add_metric(["queue"], 0)
        try:
            count = active_sessions(utcnow() - ACTIVE_WINDOW)
            up.add_metric(["database"], 1)
            yield GaugeMetricFamily("videoflix_active_playback_sessions",
                                    "Playback sessions that sent a beacon in the last 30 s and have not ended.",
                                    value=count)
        except Exception:
            log.warning("Active playback sessions unavailable for /metrics", exc_info=True)
            db.session.rollback()
            up.add_metric(["database"], 0)
        yield up


class _Together:
    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def exposition(app):
    """The Prometheus text of every instrument and the app's gauges."""
    instruments = MultiProcessCollector(None, METRICS_DIR) if METRICS_DIR else REGISTRY
    return generate_latest(_Together(instruments, AppCollector(app)))
