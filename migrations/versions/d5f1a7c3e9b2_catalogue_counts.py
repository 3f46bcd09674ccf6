"""catalogue counts: ready videos per category, kept by triggers on video

Revision ID: d5f1a7c3e9b2
Revises: c4e8a1f2d6b3
Create Date: 2026-11-30 19:30:00.000000

The catalogue's totals and categories read these few rows instead of counting `video`
(videoflix/videos/counts.py). The triggers are not in the models' metadata; their DDL is frozen
here, as it was at this revision. `video` itself is not altered (a batch "move and copy" on SQLite
would drop its FTS5 triggers, b3d9e61f0a27).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd5f1a7c3e9b2'
down_revision = 'c4e8a1f2d6b3'
branch_labels = None
depends_on = None

PG_UP = [
    """CREATE OR REPLACE FUNCTION catalogue_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO catalogue_count (category, ready)
    SELECT category, count(*) FROM added WHERE status = 'ready' GROUP BY category ORDER BY category
    ON CONFLICT (category) DO UPDATE SET ready = catalogue_count.ready + excluded.ready;
  RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION catalogue_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE catalogue_count SET ready = catalogue_count.ready - gone.n
    FROM (SELECT category, count(*) AS n FROM removed WHERE status = 'ready' GROUP BY category) AS gone
    WHERE catalogue_count.category = gone.category;
  DELETE FROM catalogue_count WHERE ready <= 0;
  RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION catalogue_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status = 'ready' THEN
    UPDATE catalogue_count SET ready = ready - 1 WHERE category = OLD.category;
    DELETE FROM catalogue_count WHERE category = OLD.category AND ready <= 0;
  END IF;
  IF NEW.status = 'ready' THEN
    INSERT INTO catalogue_count (category, ready) VALUES (NEW.category, 1)
      ON CONFLICT (category) DO UPDATE SET ready = catalogue_count.ready + 1;
  END IF;
  RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS catalogue_count_insert ON video",
    "CREATE TRIGGER catalogue_count_insert AFTER INSERT ON video REFERENCING NEW TABLE AS added FOR EACH "
    "STATEMENT EXECUTE FUNCTION catalogue_count_added()",
    "DROP TRIGGER IF EXISTS catalogue_count_delete ON video",
    "CREATE TRIGGER catalogue_count_delete AFTER DELETE ON video REFERENCING OLD TABLE AS removed FOR "
    "EACH STATEMENT EXECUTE FUNCTION catalogue_count_removed()",
    """CREATE OR REPLACE FUNCTION catalogue_count_cleared() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM catalogue_count;
  RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS catalogue_count_truncate ON video",
    "CREATE TRIGGER catalogue_count_truncate AFTER TRUNCATE ON video FOR EACH STATEMENT EXECUTE FUNCTION "
    "catalogue_count_cleared()",
    "DROP TRIGGER IF EXISTS catalogue_count_update ON video",
    "CREATE TRIGGER catalogue_count_update AFTER UPDATE OF status, category ON video FOR EACH ROW WHEN "
    "((OLD.status = 'ready') <> (NEW.status = 'ready') OR (NEW.status = 'ready' AND NEW.category <> "
    "OLD.category)) EXECUTE FUNCTION catalogue_count_moved()",
]
PG_DOWN = [
    "DROP FUNCTION IF EXISTS catalogue_count_added() CASCADE",
    "DROP FUNCTION IF EXISTS catalogue_count_removed() CASCADE",
    "DROP FUNCTION IF EXISTS catalogue_count_cleared() CASCADE",
    "DROP FUNCTION IF EXISTS catalogue_count_moved() CASCADE",
]
SQLITE_UP = [
    "CREATE TRIGGER IF NOT EXISTS catalogue_count_insert AFTER INSERT ON video WHEN new.status = 'ready' "
    "BEGIN INSERT INTO catalogue_count (category, ready) VALUES (new.category, 1) ON CONFLICT (category) "
    "DO UPDATE SET ready = ready + 1; END",
    "CREATE TRIGGER IF NOT EXISTS catalogue_count_delete AFTER DELETE ON video WHEN old.status = 'ready' "
    "BEGIN UPDATE catalogue_count SET ready = ready - 1 WHERE category = old.category; DELETE FROM "
    "catalogue_count WHERE category = old.category AND ready <= 0; END",
    "CREATE TRIGGER IF NOT EXISTS catalogue_count_leave AFTER UPDATE OF status, category ON video WHEN "
    "old.status = 'ready' AND (new.status IS NOT 'ready' OR old.category IS NOT new.category) BEGIN "
    "UPDATE catalogue_count SET ready = ready - 1 WHERE category = old.category; DELETE FROM "
    "catalogue_count WHERE category = old.category AND ready <= 0; END",
    "CREATE TRIGGER IF NOT EXISTS catalogue_count_join AFTER UPDATE OF status, category ON video WHEN "
    "new.status = 'ready' AND (old.status IS NOT 'ready' OR old.category IS NOT new.category) BEGIN "
    "INSERT INTO catalogue_count (category, ready) VALUES (new.category, 1) ON CONFLICT (category) DO "
    "UPDATE SET ready = ready + 1; END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS catalogue_count_insert",
    "DROP TRIGGER IF EXISTS catalogue_count_delete",
    "DROP TRIGGER IF EXISTS catalogue_count_leave",
    "DROP TRIGGER IF EXISTS catalogue_count_join",
]
RECOUNT = [
    "INSERT INTO catalogue_count (category, ready) SELECT category, count(*) FROM video WHERE status = 'ready' "
    "GROUP BY category",
]


def _run(postgresql, sqlite):
    bind = op.get_bind()
    for statement in {"postgresql": postgresql, "sqlite": sqlite}.get(bind.dialect.name, []):
        bind.exec_driver_sql(statement)


def upgrade():
    op.create_table(
        'catalogue_count',
        sa.Column('category', sa.String(length=80), nullable=False),
        sa.Column('ready', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('category', name=op.f('pk_catalogue_count')),
    )
    _run(PG_UP + RECOUNT, SQLITE_UP + RECOUNT)


def downgrade():
    _run(PG_DOWN, SQLITE_DOWN)
    op.drop_table('catalogue_count')
