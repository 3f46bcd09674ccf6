"""Configuration profiles, read from the environment (see the table in README.md)."""
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = BASE_DIR / "instance"
# Seconds to connect to Redis and to wait for an answer, for every client (app, queue, limiter):
# an unreachable Redis fails a request or the health check instead of hanging it.
REDIS_TIMEOUTS = {"socket_connect_timeout": 5, "socket_timeout": 5}


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


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
    RATELIMIT_STORAGE_OPTIONS = dict(REDIS_TIMEOUTS)  # for its Redis client; memory:// ignores them
    LOGIN_FAILURES_PER_ACCOUNT = os.environ.get("LOGIN_FAILURES_PER_ACCOUNT", "5/minute;20/hour")
    LOGIN_FAILURES_PER_CLIENT = os.environ.get("LOGIN_FAILURES_PER_CLIENT", "20/minute;100/hour")
    # Every sign-in attempt per account, successful or not: failures are only counted after the
    # check, so this ceiling is what bounds a burst of concurrent guesses.
    LOGIN_ATTEMPTS_PER_ACCOUNT = os.environ.get("LOGIN_ATTEMPTS_PER_ACCOUNT", "10/minute;60/hour")
    REGISTER_LIMIT = os.environ.get("REGISTER_LIMIT", "10/hour")
    PASSWORD_RESET_LIMIT = os.environ.get("PASSWORD_RESET_LIMIT", "5/hour")

    # Task queue (Huey): Redis when REDIS_URL is set, else a SQLite file under instance/.
    HUEY_IMMEDIATE = False
    HUEY_FILE = os.environ.get("HUEY_FILE", str(INSTANCE_DIR / "huey.sqlite3"))
    WORKERS = env_int("WORKERS", 0)  # 0: one per core, at least 1
    # On SIGTERM a worker waits this long for running tasks, then interrupts and re-queues them;
    # 0 waits until they finish. Keep it below the supervisor's kill delay (compose stop_grace_period).
    WORKER_SHUTDOWN_TIMEOUT = env_int("WORKER_SHUTDOWN_TIMEOUT", 0)
    FFMPEG_THREADS = env_int("FFMPEG_THREADS", 0)  # 0: let ffmpeg decide from the cores
    TRANSCODE_TIMEOUT = env_int("TRANSCODE_TIMEOUT", 6 * 3600)
    MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 4096)
    # Uploads are refused at the probe past this picture size (width x height, 0: no limit) or
    # this duration in seconds (0: no limit): decoding huge frames costs the web process memory.
    MAX_UPLOAD_PIXELS = env_int("MAX_UPLOAD_PIXELS", 8192 * 4320)
    MAX_UPLOAD_SECONDS = env_int("MAX_UPLOAD_SECONDS", 4 * 3600)
    # Every worker drops the claims of dead workers this often (seconds), and a claim whose
    # heartbeat is older than TRANSCODE_STALE_SECONDS counts as dead wherever its worker ran
    # (keep it well above 5 s: during ffmpeg the heartbeat comes with its progress, every 5 s at least).
    RECOVERY_INTERVAL = env_int("RECOVERY_INTERVAL", 60)
    TRANSCODE_STALE_SECONDS = env_int("TRANSCODE_STALE_SECONDS", 180)
    # Transient transcode failures (TranscodeError.transient) are retried this often, this much later.
    TRANSCODE_RETRIES = env_int("TRANSCODE_RETRIES", 2)
    TRANSCODE_RETRY_DELAY = env_int("TRANSCODE_RETRY_DELAY", 60)
    FFMPEG_BINARY = os.environ.get("FFMPEG_BINARY") or None  # None: ffmpeg on PATH, else imageio-ffmpeg's
    # JSON bodies are small; upload routes raise their own limit to MAX_UPLOAD_MB per request.
    MAX_CONTENT_LENGTH = 1024 * 1024
    MEDIA_ACCEL_REDIRECT = os.environ.get("MEDIA_ACCEL_REDIRECT") or None

    SEED_DEMO_USERS = False
    LOG_JSON = env_bool("LOG_JSON")
    # How many proxies (nginx) set X-Forwarded-*; 0 trusts none.
    PROXY_COUNT = env_int("PROXY_COUNT", 0)


class DevelopmentConfig(Config):
    """The embedded default: SQLite, a file-backed queue, console e-mail, plain-HTTP cookies."""

    DEBUG = True
    SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-insecure-secret-key-change-me-0123456789"
    JWT_COOKIE_SECURE = False
    EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "console")
    EXPOSE_ACTIVATION_TOKEN = env_bool("EXPOSE_ACTIVATION_TOKEN", True)
    SEED_DEMO_USERS = True


class ProductionConfig(Config):
    """Requires a strong SECRET_KEY (checked in create_app)."""


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret-key-0123456789abcdef0123456789"
    SQLALCHEMY_DATABASE_URI = with_driver(os.environ.get("TEST_DATABASE_URL", "sqlite://"))
    REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    JWT_COOKIE_SECURE = False
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
