"""Configuration profiles, read from the environment (see the table in README.md)."""
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

from redis.backoff import NoBackoff
from redis.retry import Retry

from videoflix.env import env_bool, env_float, env_int

BASE_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = BASE_DIR / "instance"
# Keys published in this repository (the development and test profiles' defaults); production
# refuses them, as it does .env.example's placeholder (security.PUBLISHED_SECRETS).
DEVELOPMENT_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789"
TESTING_SECRET_KEY = "testing-secret-key-0123456789abcdef0123456789"
# Seconds to connect to Redis and to wait for an answer, for every client (app, queue, limiter):
# an unreachable or hung Redis fails a request (503) or the health check within a second instead
# of hanging it. Redis answers in well under a millisecond when it is healthy.
REDIS_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
# redis-py retries a failed command three times with a backoff by default: a dead Redis would hold
# every request for seconds. A command fails once; videoflix.connections.redis_conn decides when to ask again.
REDIS_NO_RETRY = {"retry": Retry(NoBackoff(), 0)}


def database_url():
    """DATABASE_URL, else PostgreSQL from DB_* variables, else the embedded SQLite file."""
    if os.environ.get("DATABASE_URL"):
        return with_driver(os.environ["DATABASE_URL"])
    if os.environ.get("DB_NAME"):
        user = quote(os.environ.get("DB_USER", "postgres"), safe="")
        password = os.environ.get("DB_PASSWORD")
        auth = f"{user}:{quote(password, safe='')}" if password else user
        host = os.environ.get("DB_HOST", "127.0.0.1")
        port = os.environ.get("DB_PORT", "5432")
        return f"postgresql+psycopg2://{auth}@{host}:{port}/{os.environ['DB_NAME']}"
    return f"sqlite:///{INSTANCE_DIR / 'videoflix.sqlite3'}"


def with_driver(url):
    """postgres:// and postgresql:// URLs use psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def origin_of(url):
    """The lower-case scheme://host[:port] of an absolute URL, or None for anything else."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def cors_origins(frontend_url):
    raw = os.environ.get("CORS_ORIGINS")
    if raw:
        return [o.strip().rstrip("/") for o in raw.split(",") if o.strip()]
    return list(dict.fromkeys(filter(None, [origin_of(frontend_url), "http://localhost:5500"])))


class Config:
    """Shared defaults; every value can be overridden from the environment."""

    DEBUG = False
    TESTING = False
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    SQLALCHEMY_DATABASE_URI = database_url()
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL") or None
    REDIS_PREFIX = os.environ.get("REDIS_PREFIX", "videoflix:")
    # One bounded pool per app (and one for its queues): a request waits at most
    # REDIS_POOL_TIMEOUT seconds for a free connection, then answers 503.
    REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 64)
    REDIS_POOL_TIMEOUT = 0.5
    # After a connection error or timeout, Redis is not asked again for this many seconds: requests
    # that need it answer 503 with this Retry-After at once (see extensions.redis_client).
    REDIS_RETRY_AFTER = env_int("REDIS_RETRY_AFTER", 5)

    FRONTEND_URL = os.environ.get("FRONTEND_URL", "http://127.0.0.1:5500").rstrip("/")
    CORS_ORIGINS = cors_origins(FRONTEND_URL)
    MEDIA_ROOT = os.environ.get("MEDIA_ROOT", str(BASE_DIR / "media"))
    HOST = os.environ.get("HOST", "127.0.0.1")
    PORT = env_int("PORT", 8000)

    # Tokens. Clients refresh every 20 minutes, so the access token must outlive that.
    JWT_TOKEN_LOCATION = ["cookies", "headers"]
    JWT_ACCESS_COOKIE_NAME = "access_token"
    JWT_REFRESH_COOKIE_NAME = "refresh_token"
    JWT_ACCESS_COOKIE_PATH = "/"
    JWT_REFRESH_COOKIE_PATH = "/"
    JWT_COOKIE_SAMESITE = "Lax"
    JWT_COOKIE_SECURE = True
    JWT_SESSION_COOKIE = False
    # Flask's `session` cookie (the admin's CSRF secret and flashed messages): as the JWT cookies.
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    # SPAs send no CSRF header; Origin/Referer checking in videoflix.security replaces it.
    JWT_COOKIE_CSRF_PROTECT = False
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=env_int("ACCESS_TOKEN_MINUTES", 30))
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(hours=env_int("REFRESH_TOKEN_HOURS", 24))
    ACTIVATION_TOKEN_MAX_AGE = env_int("ACTIVATION_TOKEN_HOURS", 72) * 3600
    RESET_TOKEN_MAX_AGE = 24 * 3600
    # The register response's "token" is a demo aid; in production it must activate nothing.
    EXPOSE_ACTIVATION_TOKEN = env_bool("EXPOSE_ACTIVATION_TOKEN", False)
    PASSWORD_HASH_METHOD = "scrypt"

    # E-mail
    EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "smtp")
    MAIL_SERVER = os.environ.get("EMAIL_HOST", "localhost")
    MAIL_PORT = env_int("EMAIL_PORT", 25)
    MAIL_USERNAME = os.environ.get("EMAIL_HOST_USER") or None
    MAIL_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD") or None
    MAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
    MAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
    MAIL_DEFAULT_SENDER = os.environ.get("DEFAULT_FROM_EMAIL", "Videoflix <noreply@videoflix.local>")

    # Rate limits (Flask-Limiter); storage follows REDIS_URL.
    RATELIMIT_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    RATELIMIT_KEY_PREFIX = REDIS_PREFIX + "rl"
    # For its Redis client (memory:// ignores them): bounded; while Redis is unreachable the limits
    # are counted per process in memory instead of failing the request.
    # Flask-Limiter may ask twice (a hit, then a health check) before falling back: shorter timeouts.
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 0.3, "socket_timeout": 0.3, **REDIS_NO_RETRY,
                                 "max_connections": 64}
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # Sign-in (README, "Security notes"): failures per client (any account) and per (account,
    # client); every attempt per account, charged before the password check so concurrent guesses
    # cannot overrun it. Once an account's budget is spent, a client without a recent failure on
    # it still has its password checked, this often: the owner is never locked out.
    LOGIN_FAILURES_PER_CLIENT = os.environ.get("LOGIN_FAILURES_PER_CLIENT", "20/minute;100/hour")
    LOGIN_FAILURES_PER_ACCOUNT_CLIENT = os.environ.get("LOGIN_FAILURES_PER_ACCOUNT_CLIENT", "5/minute;20/hour")
    LOGIN_ATTEMPTS_PER_ACCOUNT = os.environ.get("LOGIN_ATTEMPTS_PER_ACCOUNT", "10/minute;60/hour")
    LOGIN_LOCKED_ATTEMPTS_PER_CLIENT = os.environ.get("LOGIN_LOCKED_ATTEMPTS_PER_CLIENT", "3/hour")
    # Registrations per client: a burst and a daily ceiling (a classroom behind one NAT can sign
    # up); accounts created per e-mail domain, from any client.
    REGISTER_LIMIT = os.environ.get("REGISTER_LIMIT", "20/minute;200/day")
    REGISTER_LIMIT_PER_DOMAIN = os.environ.get("REGISTER_LIMIT_PER_DOMAIN", "100/hour")
    PASSWORD_RESET_LIMIT = os.environ.get("PASSWORD_RESET_LIMIT", "5/hour")
    # Catalogue searches (GET /api/video/ with a word in q) per account: typing in a search box
    # with a debounce stays far below; a script hammering the search does not.
    SEARCH_LIMIT = os.environ.get("SEARCH_LIMIT", "60/minute;1000/hour")

    # Task queue (Huey): Redis when REDIS_URL is set, else a SQLite file under instance/.
    HUEY_IMMEDIATE = False
    HUEY_FILE = os.environ.get("HUEY_FILE", str(INSTANCE_DIR / "huey.sqlite3"))
    WORKERS = env_int("WORKERS", 0)  # 0: one per core, at least 1
    # On SIGTERM a worker waits this long for running tasks, then interrupts and re-queues them;
    # 0 waits until they finish. Keep it below the supervisor's kill delay (compose stop_grace_period).
    WORKER_SHUTDOWN_TIMEOUT = env_int("WORKER_SHUTDOWN_TIMEOUT", 0)
    FFMPEG_THREADS = env_int("FFMPEG_THREADS", 0)  # 0: one thread per core this process may use
    TRANSCODE_TIMEOUT = env_int("TRANSCODE_TIMEOUT", 6 * 3600)
    # A transcode is split into parts of about this many seconds (whole segments; the first part
    # is one segment, so a video is playable soon), each taken by any worker; 0: one part.
    TRANSCODE_CHUNK_SECONDS = env_int("TRANSCODE_CHUNK_SECONDS", 30)
    # playable: a new video is listed and streamable once the first part of every rendition is
    # stored, and grows; complete: only once the whole ladder is (API.md "Playable while transcoding").
    PUBLISH = os.environ.get("PUBLISH", "playable").strip().lower()
    MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 4096)
    # Uploads are refused at the probe past this picture size (width x height, 0: no limit) or
    # this duration in seconds (0: no limit): decoding huge frames costs the web process memory.
    MAX_UPLOAD_PIXELS = env_int("MAX_UPLOAD_PIXELS", 8192 * 4320)
    MAX_UPLOAD_SECONDS = env_int("MAX_UPLOAD_SECONDS", 4 * 3600)
    # Resumable uploads (tus, /api/uploads/): an unfinished upload expires this long after its
    # last write (Upload-Expires); the worker sweeps expired ones (at its start, then every 15
    # minutes). A request's lock on an upload lapses this long after its holder last wrote.
    TUS_EXPIRE_SECONDS = env_int("TUS_EXPIRE_SECONDS", 24 * 3600)
    TUS_LOCK_SECONDS = env_int("TUS_LOCK_SECONDS", 60)
    # Unfinished uploads a staff member may have at once (0: no limit); one more is refused (429).
    TUS_MAX_UNFINISHED = env_int("TUS_MAX_UNFINISHED", 20)
    # Each chunk is fsync'ed before its PATCH is answered, so an acknowledged offset survives a
    # power loss. Off: faster on slow disks; a crashed process loses nothing either way, and after
    # an OS crash the offset (the file's size) is still only what reached the disk on journaling
    # filesystems (ext4 data=ordered, xfs), so the client re-sends the rest.
    TUS_FSYNC = env_bool("TUS_FSYNC", True)
    # Every worker drops the claims of dead workers this often (seconds), and a claim whose
    # heartbeat is older than TRANSCODE_STALE_SECONDS counts as dead wherever its worker ran
    # (keep it well above 5 s: during ffmpeg the heartbeat comes with its progress, every 5 s at least).
    RECOVERY_INTERVAL = env_int("RECOVERY_INTERVAL", 60)
    TRANSCODE_STALE_SECONDS = env_int("TRANSCODE_STALE_SECONDS", 180)
    # Transient transcode failures (MediaError.transient) are retried this often, this much later.
    TRANSCODE_RETRIES = env_int("TRANSCODE_RETRIES", 2)
    TRANSCODE_RETRY_DELAY = env_int("TRANSCODE_RETRY_DELAY", 60)
    # A transcode that failed because the media store was away (the bucket down or hung, a full
    # disk) is not failed and not counted against TRANSCODE_RETRIES: it is queued again after
    # STORAGE_RETRY_DELAY seconds, doubled after each such failure up to STORAGE_RETRY_MAX_DELAY.
    STORAGE_RETRY_DELAY = max(1, env_int("STORAGE_RETRY_DELAY", 15))
    STORAGE_RETRY_MAX_DELAY = env_int("STORAGE_RETRY_MAX_DELAY", 600)
    # None: $FFMPEG_BINARY, else ffmpeg on PATH, else imageio-ffmpeg's (videos.media.ffmpeg.ffmpeg_exe).
    FFMPEG_BINARY = None
    # JSON bodies are small; upload routes raise their own limit to MAX_UPLOAD_MB per request.
    MAX_CONTENT_LENGTH = 1024 * 1024
    # Where media lives (API.md, "Object storage"): local (files below MEDIA_ROOT) or s3 (a bucket;
    # web servers and workers then share no filesystem, each works in its own MEDIA_SCRATCH).
    MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "local").lower()
    MEDIA_SCRATCH = os.environ.get("MEDIA_SCRATCH") or None  # None: a folder below the temp dir
    S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL") or None
    S3_BUCKET = os.environ.get("S3_BUCKET", "videoflix")
    S3_REGION = os.environ.get("S3_REGION", "us-east-1")
    S3_ACCESS_KEY_ID = os.environ.get("S3_ACCESS_KEY_ID") or None
    S3_SECRET_ACCESS_KEY = os.environ.get("S3_SECRET_ACCESS_KEY") or None
    S3_ADDRESSING_STYLE = os.environ.get("S3_ADDRESSING_STYLE") or None
    S3_PREFIX = os.environ.get("S3_PREFIX", "")
    S3_CONCURRENCY = env_int("S3_CONCURRENCY", 8)  # parallel parts and files per transfer
    # Bounded waits on the bucket (README, "When a service is down"): seconds to connect and to
    # wait for an answer, and the attempts of one call, for what a request reads (a segment, a
    # playlist): a bucket that is down or hung fails such a request (503) within about a second.
    # Whole files (uploads, publishing, a worker's copy of a source) wait longer for an answer.
    # After a failure the bucket is not asked again for S3_RETRY_AFTER seconds (the Retry-After).
    S3_CONNECT_TIMEOUT = env_float("S3_CONNECT_TIMEOUT", 0.5)
    S3_READ_TIMEOUT = env_float("S3_READ_TIMEOUT", 1.0)
    S3_MAX_ATTEMPTS = env_int("S3_MAX_ATTEMPTS", 1)
    S3_TRANSFER_READ_TIMEOUT = env_float("S3_TRANSFER_READ_TIMEOUT", 5.0)
    S3_TRANSFER_ATTEMPTS = env_int("S3_TRANSFER_ATTEMPTS", 3)
    S3_RETRY_AFTER = env_int("S3_RETRY_AFTER", 5)
    # app (the API sends the bytes), accel (nginx does, from the internal location
    # MEDIA_ACCEL_REDIRECT; setting MEDIA_ACCEL_REDIRECT alone means accel too), signed (media
    # playlists name presigned object URLs, so segments never reach the API; MEDIA_STORAGE=s3 only).
    MEDIA_DELIVERY = os.environ.get("MEDIA_DELIVERY", "app").lower()
    MEDIA_ACCEL_REDIRECT = os.environ.get("MEDIA_ACCEL_REDIRECT") or (
        "/protected-media/" if MEDIA_DELIVERY == "accel" else None)
    SIGNED_URL_SECONDS = env_int("SIGNED_URL_SECONDS", 0)  # 0: the video's duration plus 4 hours
    # Seconds a process trusts what it read about a video's published files (misses: at most 1 s);
    # commits in the same process invalidate at once, other processes wait this long.
    MEDIA_CACHE_TTL = env_float("MEDIA_CACHE_TTL", 5.0)
    API_VERSION = "1.0.0"  # info.version of the OpenAPI document (/api/openapi.json)

    # Viewing analytics (videoflix.analytics): playback sessions (who watched what) are kept this
    # many days, then only the per-video-day counts remain; a session is a view from this many
    # seconds watched (or 90 % of a shorter video); beacons allowed per playback session.
    ANALYTICS_RAW_DAYS = max(1, env_int("ANALYTICS_RAW_DAYS", 30))
    ANALYTICS_VIEW_SECONDS = env_int("ANALYTICS_VIEW_SECONDS", 10)
    ANALYTICS_BEACONS_PER_MINUTE = env_int("ANALYTICS_BEACONS_PER_MINUTE", 30)
    # Operator metrics (/metrics, videoflix.metrics): who may read them (addresses or networks, after
    # PROXY_COUNT), or anyone presenting METRICS_TOKEN as a Bearer token. (METRICS_DIR, read from the
    # environment when videoflix.metrics.instruments is imported, shares the counters of every
    # process of a host through prometheus_client's multiprocess files.)
    METRICS_ALLOW = [a.strip() for a in os.environ.get("METRICS_ALLOW", "127.0.0.1,::1").split(",") if a.strip()]
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
    # `flask worker` serves METRICS_DIR on this port too (0: not), for worker hosts without a web server.
    METRICS_PORT = env_int("METRICS_PORT", 0)
    METRICS_HOST = os.environ.get("METRICS_HOST", "127.0.0.1")

    SEED_DEMO_USERS = False
    LOG_JSON = env_bool("LOG_JSON")
    # How many proxies (nginx) set X-Forwarded-*; 0 trusts none.
    PROXY_COUNT = env_int("PROXY_COUNT", 0)


class DevelopmentConfig(Config):
    """The embedded default: SQLite, a file-backed queue, console e-mail, plain-HTTP cookies."""

    DEBUG = True
    SECRET_KEY = os.environ.get("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
    JWT_COOKIE_SECURE = False
    SESSION_COOKIE_SECURE = False
    EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "console")
    EXPOSE_ACTIVATION_TOKEN = env_bool("EXPOSE_ACTIVATION_TOKEN", True)
    SEED_DEMO_USERS = True


class ProductionConfig(Config):
    """Requires a strong SECRET_KEY (checked in create_app)."""


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = TESTING_SECRET_KEY
    SQLALCHEMY_DATABASE_URI = with_driver(os.environ.get("TEST_DATABASE_URL", "sqlite://"))
    REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    JWT_COOKIE_SECURE = False
    SESSION_COOKIE_SECURE = False
    # Flask-Mail records instead of sending (mail.record_messages); one test uses a real listener.
    EMAIL_BACKEND = "smtp"
    MAIL_SUPPRESS_SEND = True
    EXPOSE_ACTIVATION_TOKEN = True
    HUEY_IMMEDIATE = True
    TRANSCODE_RETRY_DELAY = 0  # immediate mode never runs scheduled (delayed) retries
    RECOVERY_INTERVAL = 0  # no recovery thread in the test process; worker tests set their own
    # Fast hashing keeps the suite quick; production uses scrypt.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"


PROFILES = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "testing": TestingConfig,
}


def select_profile():
    """VIDEOFLIX_ENV picks the profile; else DEBUG decides between development and production."""
    name = os.environ.get("VIDEOFLIX_ENV")
    if name:
        return PROFILES[name]
    return DevelopmentConfig if env_bool("DEBUG", True) else ProductionConfig
