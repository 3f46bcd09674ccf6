"""Background tasks: declared once at import, bound to each app's own Huey queues.

`@task(...)` and `@periodic_task(...)` take huey's options (plus `queue=`) and only record the
declaration. create_app() calls init_app(app), which builds that app's Huey instances (storage from
its config: Redis with REDIS_URL, else a SQLite file under instance/, or inline with
HUEY_IMMEDIATE), binds every declaration to them and keeps them in app.extensions, so two apps in
one process never share a queue. Calling a declared task (`send_email(...)`, `.s()`,
`.schedule()`) enqueues on the current app's queue, and each run gets a fresh context of the app
that bound it, so no session leaks between tasks.

Two queues: DEFAULT (transcodes and the rest) and MAIL. `flask worker` serves MAIL with its own
worker, so an activation e-mail never waits while every worker transcodes.
"""
import functools
import logging
import os
import threading
import weakref
from dataclasses import dataclass, field

from flask import current_app
from huey import Huey
from huey.api import PeriodicTask
from huey.signals import SIGNAL_INTERRUPTED
from huey.storage import SqliteStorage
from werkzeug.local import LocalProxy

from videoflix import logs
from videoflix.connections.redis_conn import GuardedRedisStorage, bounded_pool
from videoflix.extensions import redis_client

log = logging.getLogger(__name__)

DEFAULT, MAIL = "default", "mail"
QUEUES = (DEFAULT, MAIL)
EXTENSION = "videoflix_tasks"
# How long a worker's blocking dequeue waits on Redis: must stay below REDIS_TIMEOUTS' socket
# timeout, or an idle queue would look like a dead connection (Redis 6+ takes fractions).
HUEY_READ_TIMEOUT = 0.25

_declared = []  # every DeclaredTask, in declaration order; bound to each app by bind_all()
_worker_start_hooks = []
_process_start_hooks = []


@dataclass
class AppTasks:
    """One app's queues and its bound tasks (app.extensions[EXTENSION])."""

    queues: dict
    bound: dict = field(default_factory=dict)  # DeclaredTask -> huey TaskWrapper


class DeclaredTask:
    """A task as its module declares it. Called (or .s(), .schedule(), .task_class ...), it acts
    as the huey TaskWrapper bound to the current app's queue."""

    def __init__(self, fn, queue, options, validate_datetime=None):
        functools.update_wrapper(self, fn)
        self.fn, self.queue, self.options, self.validate_datetime = fn, queue, options, validate_datetime

    def bind(self, app, huey):
        fn = self.fn

        @functools.wraps(fn)
        def in_app_context(*args, **kwargs):
            with app.app_context():
                return fn(*args, **kwargs)

        if self.validate_datetime is None:
            return huey.task(**self.options)(in_app_context)
        return huey.periodic_task(self.validate_datetime, **self.options)(in_app_context)

    def bound(self, app=None):
        """The huey TaskWrapper of this task on `app`'s (default: current_app's) queue."""
        app = app or current_app._get_current_object()
        app_tasks = tasks_of(app)
        wrapper = app_tasks.bound.get(self)
        if wrapper is None:  # declared after the app was created
            wrapper = app_tasks.bound[self] = self.bind(app, app_tasks.queues[self.queue])
            if self.queue != DEFAULT:
                # Known to the DEFAULT queue too: a message queued there before this task had a
                # queue of its own (e-mails, before an upgrade) still runs.
                self.bind(app, app_tasks.queues[DEFAULT])
        return wrapper

    def __call__(self, *args, **kwargs):
        return self.bound()(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):  # introspection (copy, pytest, inspect) needs no app
            raise AttributeError(name)
        return getattr(self.bound(), name)


def task(queue=DEFAULT, **options):
    """Like huey.task() (options unchanged: retries, retry_delay, priority, context=True for the
    Task object ...), on the named queue of whichever app enqueues it."""

    def decorator(fn):
        declared = DeclaredTask(fn, queue, options)
        _declared.append(declared)
        return declared

    return decorator


def periodic_task(validate_datetime_or_crontab, queue=DEFAULT, **options):
    """Like huey.periodic_task(): run by the worker's scheduler whenever
    validate_datetime_or_crontab(datetime) is true (e.g. huey.crontab(minute="*/5"))."""

    def decorator(fn):
        declared = DeclaredTask(fn, queue, options, validate_datetime_or_crontab)
        _declared.append(declared)
        return declared

    return decorator


def on_worker_start(fn):
    """Register fn(app) to run once when `flask worker` starts (e.g. recover stuck jobs)."""
    _worker_start_hooks.append(fn)
    return fn


def on_worker_process_start(fn):
    """Register fn(app) to run in each worker process as it starts, including one the consumer
    starts again after it died. Bound to each app's DEFAULT queue (Huey's on_startup)."""
    _process_start_hooks.append(fn)
    return fn


def tasks_of(app):
    try:
        return app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("videoflix.tasks.init_app() has not run for this app.") from None


def queue_of(app=None, name=DEFAULT):
    """The app's (default: current_app's) Huey instance for queue `name`."""
    return tasks_of(app or current_app).queues[name]


# The current app's DEFAULT queue (needs an app context).
huey = LocalProxy(queue_of)


def make_huey(app, name):
    """A Huey instance for queue `name` of this app, with storage from its config."""
    config = app.config
    queue_name = config["REDIS_PREFIX"] + ("queue" if name == DEFAULT else f"queue-{name}")
    if config["HUEY_IMMEDIATE"]:
        return Huey(queue_name, immediate=True, results=False)
    if config["REDIS_URL"]:
        return Huey(
            queue_name, results=False, storage_class=GuardedRedisStorage, circuit=redis_client(app).circuit,
            connection_pool=_queue_pool(app), read_timeout=HUEY_READ_TIMEOUT,
        )
    os.makedirs(os.path.dirname(config["HUEY_FILE"]), exist_ok=True)
    return Huey(queue_name, results=False, storage_class=ForkSafeSqliteStorage, filename=config["HUEY_FILE"])


class ForkSafeSqliteStorage(SqliteStorage):
    """Huey's SQLite queue file, whose connection never crosses a fork(): the process closes it just
    before forking (holding the storage's lock until the fork is done, so no thread reopens it
    meanwhile), and each side opens a new one on its next use.

    SQLite forbids carrying a connection across fork(). A child that inherits one also inherits
    SQLite's per-file lock and WAL-index state, which its own new connections to the file share:
    it holds none of the locks it believes it holds, so when the parent closes its connection as
    the last real one, SQLite checkpoints and deletes the -wal and -shm files, and the child goes
    on reading the deleted index, a snapshot that never sees another task (`flask worker`'s e-mail
    consumer lost every e-mail queued after it started), and could corrupt the file by writing.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _sqlite_queues.add(self)

    def drop_connection(self):
        """Close the connection, if open (the caller holds self.lock); the next use opens another."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


_sqlite_queues = weakref.WeakSet()  # every ForkSafeSqliteStorage of this process
_fork_guard = threading.Lock()  # one fork at a time closes the queue files
_held_for_fork = []  # the storages' locks, held from before a fork until after it


def _close_queue_files_before_fork():
    _fork_guard.acquire()
    for storage in list(_sqlite_queues):
        storage.lock.acquire()
        _held_for_fork.append(storage.lock)
        storage.drop_connection()


def _release_queue_files_after_fork():
    while _held_for_fork:
        _held_for_fork.pop().release()
    _fork_guard.release()


os.register_at_fork(before=_close_queue_files_before_fork, after_in_parent=_release_queue_files_after_fork,
                    after_in_child=_release_queue_files_after_fork)


def _queue_pool(app):
    """One bounded pool (bytes, as Huey wants them) shared by the app's queues."""
    pools = app.extensions.setdefault("videoflix_queue_pool", [])
    if not pools:
        pools.append(bounded_pool(app.config["REDIS_URL"], app.config))
    return pools[0]


def bind_all(app):
    """Bind every task declared so far to the app's queues (idempotent)."""
    for declared in _declared:
        declared.bound(app)


def bind_worker_hooks(app, first=None):
    """Bind the declared process-start hooks to the app's DEFAULT queue (run by each of its worker
    processes as it starts, after `first`); returns the worker-start hooks to run once now."""
    huey = queue_of(app)
    if first is not None:
        huey.on_startup(first.__name__)(first)
    for hook in _process_start_hooks:
        huey.on_startup(hook.__name__)(functools.partial(hook, app))
    return [functools.partial(hook, app) for hook in _worker_start_hooks]


def requeue_interrupted(huey, signal_name, task, *args):
    """Huey drops a task interrupted mid-run; put it back so another worker (or this one after a
    restart) runs it again. Tasks must therefore be safe to run twice."""
    if isinstance(task, PeriodicTask):
        return  # the scheduler enqueues it again anyway
    huey.enqueue(task)
    log.warning("Task %s was interrupted and has been re-queued.", task)


def init_app(app):
    """Build the app's queues and bind the tasks declared so far (later ones bind on first use)."""
    queues = {name: make_huey(app, name) for name in QUEUES}
    for queue in queues.values():
        logs.watch_jobs(queue)
        queue.signal(SIGNAL_INTERRUPTED)(functools.partial(requeue_interrupted, queue))
    app.extensions[EXTENSION] = AppTasks(queues)
    app.extensions["huey"] = queues[DEFAULT]
    bind_all(app)
