"""The Huey instance and the app-context task decorator.

The instance exists at import time so modules can declare tasks; init_app() points its storage at
Redis (REDIS_URL) or a SQLite file under instance/, or runs tasks inline (HUEY_IMMEDIATE).
"""
import functools
import logging
import os

from huey import Huey
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

from videoflix.config import REDIS_TIMEOUTS

log = logging.getLogger(__name__)

# How long a worker's blocking dequeue waits on Redis: must stay below REDIS_TIMEOUTS' socket
# timeout, or an idle queue would look like a dead connection.
HUEY_READ_TIMEOUT = 1

huey = Huey("videoflix", immediate=False, storage_class=MemoryStorage, results=False)
_state = {"app": None}


def init_app(app):
    """Bind the queue to this app's storage and remember the app that tasks run in."""
    _state["app"] = app
    name = app.config["REDIS_PREFIX"] + "queue"
    if app.config["HUEY_IMMEDIATE"]:
        huey.storage = MemoryStorage(name)
        huey._immediate = True
    elif app.config["REDIS_URL"]:
        from redis import ConnectionPool

        # A pool, because Huey takes either a URL or connection options, not both.
        pool = ConnectionPool.from_url(app.config["REDIS_URL"], **REDIS_TIMEOUTS)
        huey.storage = RedisStorage(name, connection_pool=pool, read_timeout=HUEY_READ_TIMEOUT)
        huey._immediate = False
    else:
        os.makedirs(os.path.dirname(app.config["HUEY_FILE"]), exist_ok=True)
        huey.storage = SqliteStorage(name, filename=app.config["HUEY_FILE"])
        huey._immediate = False
    app.extensions["huey"] = huey


def current_task_app():
    app = _state["app"]
    if app is None:
        raise RuntimeError("videoflix.tasks.init_app() has not run: create the app first.")
    return app


def task(**options):
    """Like huey.task(), but each run gets a fresh app context, so no session leaks between tasks.

    Options go to huey.task() unchanged (retries, retry_delay, context=True for the Task object).
    """

    def decorator(fn):
        @functools.wraps(fn)
        def in_app_context(*args, **kwargs):
            with current_task_app().app_context():
                return fn(*args, **kwargs)

        return huey.task(**options)(in_app_context)

    return decorator

