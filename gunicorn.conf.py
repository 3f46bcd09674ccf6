"""Gunicorn settings for production: `gunicorn --config gunicorn.conf.py wsgi:app`.

Everything comes from the environment so one image serves every deployment:
HOST/PORT (bind), WEB_CONCURRENCY (worker processes), WEB_THREADS (threads per process),
GUNICORN_TIMEOUT, GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_KEEPALIVE, GUNICORN_MAX_REQUESTS.
"""
import os


def _int(name, default):
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{_int('PORT', 8000)}"

# Threads, not only processes: most requests wait on the database, Redis or the disk (segments),
# and an upload holds its thread while the body streams in.
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", min(2 * _cores() + 1, 8))
threads = _int("WEB_THREADS", 4)

# A worker silent for this long is killed and replaced; with gthread the heartbeat runs beside the
# request threads, so a slow upload does not count against it.
timeout = _int("GUNICORN_TIMEOUT", 60)
# SIGTERM: stop accepting, let in-flight requests finish for this long.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers after this many requests (0, the default, never: memory stays flat without it).
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10

# sendfile() stays on by leaving the setting alone: gunicorn's `sendfile` is its --no-sendfile
# flag, so assigning it anything (even True) turns sendfile off.

# The app logs one line per request itself (with the request id and timing): no second access log.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# The heartbeat file lives in memory, not on a container's overlay disk.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# The control socket would be created under $HOME, which the container's user cannot write.
control_socket_disable = True

# The app is created in each worker (not preloaded), so no database connection crosses a fork.
preload_app = False
proc_name = "videoflix-web"
