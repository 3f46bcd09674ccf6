"""Unbound extension singletons; create_app() binds them with init_app()."""
import threading

from flask import current_app
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from videoflix.connections import redis_conn

# A naming convention keeps constraint names, and so migrations, stable across databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
mail = Mail()
cors = CORS()
# Every limit names its key in ratelimit.py (which builds on this default, the client's address).
limiter = Limiter(key_func=get_remote_address)

REDIS_EXTENSION = "videoflix_redis"
_redis_lock = threading.Lock()


def redis_client(app=None):
    """The app's (default: current_app's) Redis client, or None when REDIS_URL is not set
    (embedded defaults). One per app: a bounded pool, short timeouts and a circuit (see
    videoflix.connections.redis_conn); a command that cannot reach Redis raises a redis ConnectionError or
    TimeoutError, which errors.py answers with 503."""
    app = app or current_app
    if not app.config.get("REDIS_URL"):
        return None
    client = app.extensions.get(REDIS_EXTENSION)
    if client is None:
        with _redis_lock:
            client = app.extensions.get(REDIS_EXTENSION) or redis_conn.connect(app)
            app.extensions[REDIS_EXTENSION] = client
    return client
