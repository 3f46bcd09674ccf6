"""Full-text search over videos' titles and descriptions, served by an index on each database.

- PostgreSQL: a generated column `search_vector` (`to_tsvector('simple', ...)` of the title,
  weight A, and the description, weight B) with a GIN index; a query is
  `to_tsquery('simple', 'word1:* & word2:*')`, so every word matches as a prefix of a word. Title
  matches are told apart by a second generated column, `title_vector` (the title alone), with its
  own GIN index and statistics, so the planner can cost "title matches, newest first" on its own
  (see videoflix.videos.catalogue.queries). Also indexes for the category filter and deep pages.
- SQLite: an FTS5 table `video_search` whose content is the `video` table, kept in sync by
  triggers; a query is `"word1"* "word2"*` (every word, as a prefix), `title : (...)` for titles.

A word shorter than MIN_PREFIX letters matches whole words only ("a" is the word "a", not every
word starting with an a): a one-letter prefix matches nearly every row and expands to a large part
of the index's vocabulary, which costs the same as reading the table, and is useless as a search.

Both are created by the migrations and, for databases built with `create_all()` (the tests), by
the DDL hooks that models/video.py attaches to the `video` table. Neither is part of the models'
metadata, so autogenerate is told to leave them alone (`include_name`).

The text is split into words here ([^\\W_]+: letters and digits), so a query never carries the
search syntax of either database, only quoted words.
"""
import re

from sqlalchemy import bindparam, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import TSVECTOR

WORD = re.compile(r"[^\W_]+")
MAX_WORDS = 10
MIN_PREFIX = 2

# A stored generated column (title weighted A, description B) and its GIN index: the index's
# rechecks and the title-first order read the stored vector instead of parsing the text again.
PG_COLUMN = "search_vector"
PG_INDEX = "ix_video_fulltext"
# The title alone, and its GIN index: "title matches first" (models' metadata knows neither).
# Its lexemes are every prefix (from MIN_PREFIX letters) of every title word, and the words
# themselves: a title query looks its terms up as whole lexemes, one posting list each, instead
# of expanding each prefix over the index's vocabulary (a two-letter prefix: hundreds of entries).
PG_TITLE_COLUMN = "title_vector"
PG_PREFIXES = "videoflix_word_prefixes"
PG_TITLE_INDEX = "ix_video_title_fulltext"
# The category filter's index: only ready videos, in the list's order; `category` included so a
# deep page's offset is skipped in the index alone (an index-only scan), never in the table.
PG_CATEGORY_INDEX = "ix_video_category_newest"
PG_CATEGORY_STATISTICS = "video_lower_category"
LEGACY_CATEGORY_INDEX = "ix_video_category_ready"  # before migration 9a4c2e7b1f30
PG_CREATE = [
    f"ALTER TABLE video ADD COLUMN IF NOT EXISTS {PG_COLUMN} tsvector GENERATED ALWAYS AS "
    "(setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', description), 'B')) STORED",
    f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON video USING gin ({PG_COLUMN})",
    f"""CREATE OR REPLACE FUNCTION {PG_PREFIXES}(words tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT coalesce(array_to_tsvector(array_agg(DISTINCT p)), ''::tsvector) FROM (
    SELECT left(w, n) AS p FROM unnest(tsvector_to_array(words)) AS w,
      generate_series(least({MIN_PREFIX}, length(w)), length(w)) AS n) AS prefixes
$$""",
    f"ALTER TABLE video ADD COLUMN IF NOT EXISTS {PG_TITLE_COLUMN} tsvector GENERATED ALWAYS AS "
    f"({PG_PREFIXES}(to_tsvector('simple', title))) STORED",
    f"CREATE INDEX IF NOT EXISTS {PG_TITLE_INDEX} ON video USING gin ({PG_TITLE_COLUMN})",
    f"CREATE INDEX IF NOT EXISTS {PG_CATEGORY_INDEX} ON video (lower(category), created_at, id) "
    "INCLUDE (category) WHERE status = 'ready'",
    # ANALYZE keeps no statistics on a partial index's expression: these give the planner the
    # size of a category.
    f"CREATE STATISTICS IF NOT EXISTS {PG_CATEGORY_STATISTICS} ON (lower(category)) FROM video",
]
PG_DROP = [f"DROP STATISTICS IF EXISTS {PG_CATEGORY_STATISTICS}", f"DROP INDEX IF EXISTS {PG_CATEGORY_INDEX}",
           f"ALTER TABLE video DROP COLUMN IF EXISTS {PG_TITLE_COLUMN}",
           f"ALTER TABLE video DROP COLUMN IF EXISTS {PG_COLUMN}", f"DROP FUNCTION IF EXISTS {PG_PREFIXES}(tsvector)"]

FTS_TABLE = "video_search"
# FTS5's shadow tables, created with the virtual table.
FTS_TABLES = frozenset({FTS_TABLE} | {f"{FTS_TABLE}_{s}" for s in ("data", "idx", "docsize", "config", "content")})
_FTS_ROW = "(rowid, title, description) VALUES ({0}.id, {0}.title, {0}.description)"
_FTS_DELETE = (
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, description) "
    "VALUES ('delete', old.id, old.title, old.description);"
)
SQLITE_CREATE = [
    # remove_diacritics 0: "café" is not "cafe", as on PostgreSQL's 'simple' configuration.
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(title, description, content='video', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON video BEGIN "
    f"INSERT INTO {FTS_TABLE}{_FTS_ROW.format('new')}; END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON video BEGIN {_FTS_DELETE} END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF title, description ON video BEGIN "
    f"{_FTS_DELETE} INSERT INTO {FTS_TABLE}{_FTS_ROW.format('new')}; END",
    # Rows that existed before the index (a migrated database).
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{t}" for t in ("insert", "delete", "update")] + [
    f"DROP TABLE IF EXISTS {FTS_TABLE}"
]


def words(query):
    """The words of a search text, lower-cased (at most MAX_WORDS)."""
    return WORD.findall(query.lower())[:MAX_WORDS]


def is_prefix(term):
    """Whether `term` matches as the start of words (else only as a whole word): MIN_PREFIX."""
    return len(term) >= MIN_PREFIX


def create_index(connection):
    """Create the search index of `connection`'s database (idempotent)."""
    for statement in by_dialect(connection.dialect.name, PG_CREATE, SQLITE_CREATE):
        connection.exec_driver_sql(statement)


def drop_index(connection):
    for statement in by_dialect(connection.dialect.name, PG_DROP, SQLITE_DROP):
        connection.exec_driver_sql(statement)


def by_dialect(dialect, postgresql, sqlite):
    """The DDL statements for `dialect` (other databases get neither index nor triggers)."""
    return list({"postgresql": postgresql, "sqlite": sqlite}.get(dialect, []))


def include_name(name, type_, parent_names):
    """Alembic's filter: the search index is not in the models' metadata (see the module doc)."""
    return not (
        type_ == "table" and name in FTS_TABLES
        or type_ == "index" and name in (PG_INDEX, PG_TITLE_INDEX, PG_CATEGORY_INDEX, LEGACY_CATEGORY_INDEX)
        or type_ == "column" and name in (PG_COLUMN, PG_TITLE_COLUMN)
    )


def matches(dialect, terms):
    """(where, title): SQL clauses on `video` for videos whose title or description contain every
    term (as a word prefix, see is_prefix), and (parenthesised) for those whose title alone does."""
    if dialect == "postgresql":
        query = bindparam("search_query", " & ".join(f"{t}:*" if is_prefix(t) else t for t in terms))
        # Expressions (not text): the catalogue negates the title's. The title's vector holds the
        # prefixes themselves (PG_PREFIXES): its terms are whole lexemes there.
        where = literal_column(f"video.{PG_COLUMN}", TSVECTOR).bool_op("@@")(func.to_tsquery("simple", query))
        title = literal_column(f"video.{PG_TITLE_COLUMN}", TSVECTOR).bool_op("@@")(
            func.to_tsquery("simple", bindparam("search_title", " & ".join(terms))))
        return where, title
    query = " ".join(f'"{t}"*' if is_prefix(t) else f'"{t}"' for t in terms)
    rowid = literal_column("rowid")
    where = literal_column("video.id").in_(select(rowid).select_from(text(FTS_TABLE)).where(
        text(f"{FTS_TABLE} MATCH :search_all").bindparams(search_all=query)))
    title = literal_column("video.id").in_(select(rowid).select_from(text(FTS_TABLE)).where(
        text(f"{FTS_TABLE} MATCH :search_title").bindparams(search_title=f"title : ({query})")))
    return where, title
