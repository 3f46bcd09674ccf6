"""videoflix.analytics.prepared: a statement PREPAREd once per PostgreSQL connection, then EXECUTEd, with
the same rows as the statement itself."""
import pytest
from sqlalchemy import Integer, String, bindparam, func, literal, select, text

from videoflix.analytics import prepared
from videoflix.extensions import db

STATEMENT = select(
    (bindparam("a", type_=Integer) + literal(1)).label("total"),
    func.upper(bindparam("word", type_=String)).label("word"),
)


@pytest.fixture
def connection(app):
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("prepared statements: PostgreSQL (TEST_DATABASE_URL)")
    with engine.connect() as connection:
        yield connection


def prepared_here(connection):
    return connection.execute(text("SELECT name FROM pg_prepared_statements")).scalars().all()


def test_prepared_once_per_connection_with_the_statements_rows(connection):
    assert connection.execute(STATEMENT, {"a": 1, "word": "x"}).one() == (2, "X")
    first = prepared.execute(connection, "vf_test_statement", STATEMENT, {"a": 1, "word": "x"}).one()
    assert tuple(first) == (2, "X") and first.total == 2
    connection.rollback()  # a rolled-back transaction keeps it (PREPARE is not transactional)
    assert prepared_here(connection) == ["vf_test_statement"]
    assert prepared.execute(connection, "vf_test_statement", STATEMENT, {"a": 41, "word": "y"}).one() == (42, "Y")
    assert prepared_here(connection) == ["vf_test_statement"]


def test_a_new_connection_prepares_again(app, connection):
    prepared.execute(connection, "vf_test_statement", STATEMENT, {"a": 1, "word": "x"})
    connection.invalidate()  # the pool replaces the connection; its record forgets what was prepared
    connection.rollback()
    assert prepared.execute(connection, "vf_test_statement", STATEMENT, {"a": 2, "word": "z"}).one() == (3, "Z")
