"""catalogue worst cases: a title-only search vector, a covering category index

Revision ID: 9a4c2e7b1f30
Revises: e7a3c5b1d9f4
Create Date: 2026-12-07 09:20:00.000000

PostgreSQL only (SQLite's FTS5 table already searches titles alone; its deep pages use the
existing (status, created_at, id) index):
- `title_vector`, the title's words and every prefix of them from two letters
  (`videoflix_word_prefixes`), stored and GIN-indexed: "title matches first, newest first" is
  read from its own index with its own statistics, each term one lexeme
  (videoflix/videos/models/fulltext.py);
- `ix_video_category_newest` replaces `ix_video_category_ready`: the same keys with `category`
  included, so a deep page's offset is skipped by an index-only scan;
- statistics on `lower(category)` (ANALYZE keeps none for a partial index's expression: the
  planner took every category for 0.5 % of the table and read a large one through bitmaps).
Adding a stored generated column rewrites the table (about 4 s per 100,000 videos, under an
exclusive lock). The DDL is frozen here, as it is at this revision.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '9a4c2e7b1f30'
down_revision = 'e7a3c5b1d9f4'
branch_labels = None
depends_on = None

PG_UP = [
    """CREATE OR REPLACE FUNCTION videoflix_word_prefixes(words tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT coalesce(array_to_tsvector(array_agg(DISTINCT p)), ''::tsvector) FROM (
    SELECT left(w, n) AS p FROM unnest(tsvector_to_array(words)) AS w,
      generate_series(least(2, length(w)), length(w)) AS n) AS prefixes
$$""",
    "ALTER TABLE video ADD COLUMN IF NOT EXISTS title_vector tsvector GENERATED ALWAYS AS "
    "(videoflix_word_prefixes(to_tsvector('simple', title))) STORED",
    "CREATE INDEX IF NOT EXISTS ix_video_title_fulltext ON video USING gin (title_vector)",
    "CREATE INDEX IF NOT EXISTS ix_video_category_newest ON video (lower(category), created_at, id) "
    "INCLUDE (category) WHERE status = 'ready'",
    "DROP INDEX IF EXISTS ix_video_category_ready",
    "CREATE STATISTICS IF NOT EXISTS video_lower_category ON (lower(category)) FROM video",
    "ANALYZE video",
]
PG_DOWN = [
    "DROP STATISTICS IF EXISTS video_lower_category",
    "CREATE INDEX IF NOT EXISTS ix_video_category_ready ON video (lower(category), created_at, id) "
    "WHERE status = 'ready'",
    "DROP INDEX IF EXISTS ix_video_category_newest",
    "ALTER TABLE video DROP COLUMN IF EXISTS title_vector",
    "DROP FUNCTION IF EXISTS videoflix_word_prefixes(tsvector)",
]


def _run(statements):
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in statements:
            bind.exec_driver_sql(statement)


def upgrade():
    _run(PG_UP)


def downgrade():
    _run(PG_DOWN)
