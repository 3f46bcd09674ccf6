"""Videoflix: a self-hosted video streaming backend."""
import logging
import os

from werkzeug.middleware.proxy_fix import ProxyFix

from videoflix import logs, security, tasks
from videoflix.analytics.fastpath import BeaconFastPath
from videoflix.auth.credentials import IdConverter
from videoflix.config import INSTANCE_DIR, TestingConfig, select_profile
from videoflix.errors import register_error_handlers
from videoflix.extensions import cors, db, jwt, limiter, mail, migrate
from videoflix.metrics.middleware import MeasuredFlask
from videoflix.videos.delivery.fastpath import SegmentFastPath

TUS_EXPOSED_HEADERS = ["Location", "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata",
                       "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
                       "Tus-Checksum-Algorithm", "Video-Id"]


def create_app(config=None):
    """Build the application.

    `config` is a profile class, a dict of overrides applied on top of the environment's profile,
    or None for the environment's profile (VIDEOFLIX_ENV, else DEBUG).
    Raises RuntimeError when a non-debug profile has no strong SECRET_KEY.
    """
    app = MeasuredFlask(__name__, instance_path=str(INSTANCE_DIR))
    app.url_map.converters["id"] = IdConverter
    # A path without its trailing slash is answered directly: Werkzeug's redirect would have an
    # HTML body, and clients read every API answer as JSON. "//" is not silently merged either.
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    load_config(app, config)
    security.check_secret_key(app)
    logs.init_app(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    register_middleware(app)
    return app


def load_config(app, config):
    """A class is used as is; a mapping overrides the environment's profile (TestingConfig when
    it sets TESTING)."""
    if isinstance(config, type):
        app.config.from_object(config)
        return
    config = dict(config or {})
    app.config.from_object(TestingConfig if config.get("TESTING") else select_profile())
    app.config.update(config)


def register_extensions(app):
    db.init_app(app)
    migrations = os.path.join(os.path.dirname(app.root_path), "migrations")
    migrate.init_app(app, db, directory=migrations, render_as_batch=True, compare_type=True)
    jwt.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    cors.init_app(
        app,
        # tus clients (the back office's tus-js-client) read these headers of /api/uploads/
        # (videos/tus_routes.py); any request header is allowed (flask-cors's default echoes what
        # the preflight asks for).
        resources={r"/api/uploads/*": {"origins": app.config["CORS_ORIGINS"], "expose_headers": TUS_EXPOSED_HEADERS},
                   r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
        supports_credentials=True,
        # Only a request with an allowed Origin gets CORS headers (never the whole list of
        # origins to a client that sent none). Vary is the blueprints' (the videos one sends
        # Vary: Origin on every answer, whatever was asked); JSON answers are never stored.
        always_send=False,
        vary_header=False,
    )
    tasks.init_app(app)
    security.init_app(app)


def register_middleware(app):
    """The WSGI layers around Flask, innermost first: ProxyFix (when PROXY_COUNT proxies set
    X-Forwarded-*), then the beacon fast path (POST only: analytics/fastpath.py) and the segment
    fast path (GET only: videos/delivery/fastpath.py), which answer the requests they are sure of
    before any of them. (The request metrics time them all from the app's own entry point:
    metrics.middleware.MeasuredFlask.)"""
    if n := app.config["PROXY_COUNT"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    app.wsgi_app = SegmentFastPath(app, BeaconFastPath(app, app.wsgi_app))


def register_blueprints(app):
    from videoflix import admin, analytics, auth, health, metrics, openapi, videos

    auth.init_app(app)
    videos.init_app(app)
    analytics.init_app(app)
    metrics.init_app(app)
    admin.init_app(app)
    health.init_app(app)
    openapi.init_app(app)


def register_commands(app):
    from videoflix import cli

    cli.init_app(app)
    logging.getLogger(__name__).debug("Videoflix app created (%s)", app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0])
