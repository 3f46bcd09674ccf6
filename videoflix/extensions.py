"""Unbound extension singletons; create_app() binds them with init_app()."""
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from videoflix.config import REDIS_TIMEOUTS

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


def redis_client(app=None):
    """The app's (default: current_app's) Redis client, or None when REDIS_URL is not set
    (embedded defaults)."""
    from flask import current_app

    app = app or current_app
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    client = app.extensions.get("videoflix_redis")
    if client is None:
        import redis

        client = app.extensions["videoflix_redis"] = redis.Redis.from_url(
            url, decode_responses=True, **REDIS_TIMEOUTS
        )
    return client
