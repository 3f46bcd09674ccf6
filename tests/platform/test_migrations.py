"""The committed migrations build exactly the schema the models describe."""
import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from tests.fixtures.databases import scratch_database
from videoflix import create_app
from videoflix.extensions import db
from videoflix.videos.models import fulltext


@pytest.fixture
def scratch_postgres():
    """A throwaway PostgreSQL database next to the test database."""
    with scratch_database(os.environ["TEST_DATABASE_URL"], prefix="vf_migrations") as url:
        yield url


def assert_no_drift(url):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": fulltext.include_name}
            )
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"models and migrations differ; run `flask db migrate`: {diff}"
        downgrade(revision="base")
        tables = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        db.engine.dispose()


def test_migrations_match_models_on_sqlite(tmp_path):
    assert_no_drift(f"sqlite:///{tmp_path / 'migrated.sqlite3'}")


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"), reason="runs in CI against PostgreSQL"
)
def test_migrations_match_models_on_postgresql(scratch_postgres):
    assert_no_drift(scratch_postgres)
