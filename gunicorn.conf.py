"""Gunicorn settings for production: `gunicorn --config gunicorn.conf.py wsgi:app`.

Everything comes from the environment so one image serves every deployment:
HOST/PORT (bind), WEB_CONCURRENCY (worker processes), WEB_THREADS (threads per process),
GUNICORN_TIMEOUT, GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_KEEPALIVE, GUNICORN_MAX_REQUESTS.
"""
import importlib.util
import os

# videoflix/env.py by its path: importing the package would load the app into this master process.
_spec = importlib.util.spec_from_file_location(
    "videoflix_env", os.path.join(os.path.dirname(os.path.abspath(__file__)), "videoflix", "env.py")
)
_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_env)
env_int, env_str = _env.env_int, _env.env_str

bind = f"{env_str('HOST', '127.0.0.1')}:{env_int('PORT', 8000)}"

# Threads, not only processes: most requests wait on the database, Redis or the disk (segments),
# and an upload holds its thread while the body streams in.
worker_class = "gthread"
workers = env_int("WEB_CONCURRENCY", min(2 * _env.cpu_cores() + 1, 8))
threads = env_int("WEB_THREADS", 4)

# A worker silent for this long is killed and replaced; with gthread the heartbeat runs beside the
# request threads, so a slow upload does not count against it.
timeout = env_int("GUNICORN_TIMEOUT", 60)
# SIGTERM: stop accepting, let in-flight requests finish for this long.
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = env_int("GUNICORN_KEEPALIVE", 5)
# Recycle workers after this many requests (0, the default, never: memory stays flat without it).
max_requests = env_int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10

# sendfile() stays on by leaving the setting alone: gunicorn's `sendfile` is its --no-sendfile
# flag, so assigning it anything (even True) turns sendfile off.

# The app logs one line per request itself (with the request id and timing): no second access log.
accesslog = None
errorlog = "-"
loglevel = env_str("GUNICORN_LOG_LEVEL", "info")

# The heartbeat file lives in memory, not on a container's overlay disk.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# The control socket would be created under $HOME, which the container's user cannot write.
control_socket_disable = True

# The app is created in each worker (not preloaded), so no database connection crosses a fork.
preload_app = False
proc_name = "videoflix-web"
