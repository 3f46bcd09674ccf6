"""Scratch PostgreSQL databases for tests, so concurrent runs never share tables."""
import uuid
from contextlib import contextmanager

import sqlalchemy as sa

from videoflix.config import with_driver


@contextmanager
def scratch_database(url, prefix=None):
    """Create a uniquely named database on the server of `url`; yield its URL; drop it after."""
    base = sa.engine.make_url(with_driver(url))
    name = f"{prefix or base.database}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
