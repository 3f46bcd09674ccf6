"""The app that tests/test_redis_outage.py serves from a subprocess (`flask run`), configured from
the OUTAGE_TEST_* variables the test sets: its own Redis, a SQLite file, a media folder."""
import os

from videoflix import create_app


def outage_config(redis_url, db_url, media_root, prefix):
    return {
        "TESTING": True, "HUEY_IMMEDIATE": False, "REDIS_URL": redis_url, "RATELIMIT_STORAGE_URI": redis_url,
        "REDIS_PREFIX": prefix, "RATELIMIT_KEY_PREFIX": prefix + "rl", "SQLALCHEMY_DATABASE_URI": db_url,
        "MEDIA_ROOT": media_root, "REDIS_RETRY_AFTER": 1, "LOGIN_FAILURES_PER_ACCOUNT_CLIENT": "3/minute",
    }


def make_app():
    env = os.environ
    return create_app(outage_config(env["OUTAGE_TEST_REDIS"], env["OUTAGE_TEST_DB"], env["OUTAGE_TEST_MEDIA"],
                                    env["OUTAGE_TEST_PREFIX"]))
