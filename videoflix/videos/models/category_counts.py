"""The number of ready videos per category, kept by the database itself, so the catalogue's
`X-Total-Count` (unfiltered or by category) and `GET /api/categories/` read a handful of rows
instead of counting the table.

`catalogue_count` (model: videoflix.videos.models.CategoryCount) holds one row per category name
(exact spelling) with at least one ready video. Triggers on `video` keep it in step with every
INSERT, DELETE and UPDATE of `status` or `category`, whoever makes them (the ORM, the admin, bulk
SQL, a migration), in the same transaction:

- PostgreSQL: PL/pgSQL trigger functions (see PG_CREATE); an increment is an upsert, so two
  transactions publishing the first videos of a new category both count (the second waits for
  the first's row lock, as for any UPDATE of that row).
- SQLite: four row triggers with the same rules (no row versions to pile up there).

A row that drops to zero is deleted. Both are created by the migrations and, for databases built
with `create_all()` (the tests), by the hooks at the end of this module; `install()` also recounts from the
table, which makes it the repair for a database whose triggers were ever missing.
"""
from sqlalchemy import String, event
from sqlalchemy.orm import Mapped, mapped_column

from videoflix.extensions import db
from videoflix.videos.models.fulltext import by_dialect

TABLE = "catalogue_count"
_READY = "'ready'"  # videoflix.videos.models.READY, as an SQL literal

# PostgreSQL: inserts and deletes are counted once per statement from its transition table (a bulk
# import of 100,000 videos updates each category's row once per statement, not once per video:
# no pile of dead row versions to scan); an UPDATE that moves a video in or out of `ready`, or to
# another category, once per row, and the WHEN clause skips every other UPDATE without a call.
PG_CREATE = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {TABLE} (category, ready)
    SELECT category, count(*) FROM added WHERE status = {_READY} GROUP BY category ORDER BY category
    ON CONFLICT (category) DO UPDATE SET ready = {TABLE}.ready + excluded.ready;
  RETURN NULL;
END $$""",
    f"""CREATE OR REPLACE FUNCTION {TABLE}_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE {TABLE} SET ready = {TABLE}.ready - gone.n
    FROM (SELECT category, count(*) AS n FROM removed WHERE status = {_READY} GROUP BY category) AS gone
    WHERE {TABLE}.category = gone.category;
  DELETE FROM {TABLE} WHERE ready <= 0;
  RETURN NULL;
END $$""",
    f"""CREATE OR REPLACE FUNCTION {TABLE}_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = {_READY} THEN
    UPDATE {TABLE} SET ready = ready - 1 WHERE category = OLD.category;
    DELETE FROM {TABLE} WHERE category = OLD.category AND ready <= 0;
  END IF;
  IF NEW.status = {_READY} THEN
    INSERT INTO {TABLE} (category, ready) VALUES (NEW.category, 1)
      ON CONFLICT (category) DO UPDATE SET ready = {TABLE}.ready + 1;
  END IF;
  RETURN NULL;
END $$""",
    f"DROP TRIGGER IF EXISTS {TABLE}_insert ON video",
    f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON video REFERENCING NEW TABLE AS added "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_added()",
    f"DROP TRIGGER IF EXISTS {TABLE}_delete ON video",
    f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON video REFERENCING OLD TABLE AS removed "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_removed()",
    # TRUNCATE fires no DELETE trigger.
    f"""CREATE OR REPLACE FUNCTION {TABLE}_cleared() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM {TABLE};
  RETURN NULL;
END $$""",
    f"DROP TRIGGER IF EXISTS {TABLE}_truncate ON video",
    f"CREATE TRIGGER {TABLE}_truncate AFTER TRUNCATE ON video FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_cleared()",
    f"DROP TRIGGER IF EXISTS {TABLE}_update ON video",
    f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF status, category ON video FOR EACH ROW "
    f"WHEN ((OLD.status = {_READY}) <> (NEW.status = {_READY}) "
    f"OR (NEW.status = {_READY} AND NEW.category <> OLD.category)) EXECUTE FUNCTION {TABLE}_moved()",
]
# CASCADE: the triggers go with their functions.
PG_DROP = [f"DROP FUNCTION IF EXISTS {TABLE}_{f}() CASCADE" for f in ("added", "removed", "cleared", "moved")]

_SQLITE_ADD = (
    f"INSERT INTO {TABLE} (category, ready) VALUES (new.category, 1) "
    "ON CONFLICT (category) DO UPDATE SET ready = ready + 1;"
)
_SQLITE_REMOVE = (
    f"UPDATE {TABLE} SET ready = ready - 1 WHERE category = old.category; "
    f"DELETE FROM {TABLE} WHERE category = old.category AND ready <= 0;"
)
# An UPDATE that moves a video out of `ready` (or out of its category) and one that moves it in
# are two triggers, running the delete's and the insert's statements; a move between categories
# fires both, each on its own category's row.
_MOVED = "old.category IS NOT new.category"
SQLITE_CREATE = [
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_insert AFTER INSERT ON video WHEN new.status = {_READY} "
    f"BEGIN {_SQLITE_ADD} END",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_delete AFTER DELETE ON video WHEN old.status = {_READY} "
    f"BEGIN {_SQLITE_REMOVE} END",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_leave AFTER UPDATE OF status, category ON video "
    f"WHEN old.status = {_READY} AND (new.status IS NOT {_READY} OR {_MOVED}) BEGIN {_SQLITE_REMOVE} END",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_join AFTER UPDATE OF status, category ON video "
    f"WHEN new.status = {_READY} AND (old.status IS NOT {_READY} OR {_MOVED}) BEGIN {_SQLITE_ADD} END",
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_{t}" for t in ("insert", "delete", "leave", "join")]

RECOUNT = [
    f"DELETE FROM {TABLE}",
    f"INSERT INTO {TABLE} (category, ready) SELECT category, count(*) FROM video WHERE status = {_READY} "
    "GROUP BY category",
]


def install(connection):
    """Create the triggers of `connection`'s database (idempotent) and recount from `video`."""
    for statement in by_dialect(connection.dialect.name, PG_CREATE, SQLITE_CREATE) + RECOUNT:
        connection.exec_driver_sql(statement)


def uninstall(connection):
    for statement in by_dialect(connection.dialect.name, PG_DROP, SQLITE_DROP):
        connection.exec_driver_sql(statement)


class CategoryCount(db.Model):
    """How many videos of a category (this exact spelling) are ready. Written only by the
    database's triggers on `video` (see above); read by videoflix.videos.catalogue.queries."""

    __tablename__ = TABLE

    category: Mapped[str] = mapped_column(String(80), primary_key=True)
    ready: Mapped[int] = mapped_column(default=0)


# The triggers on `video` need both tables: databases built by create_all() get them once every
# table is there, as migrated ones do.
event.listen(db.metadata, "after_create", lambda target, connection, **kw: install(connection))
event.listen(db.metadata, "before_drop", lambda target, connection, **kw: uninstall(connection))
