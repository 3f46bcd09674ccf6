"""catalogue search index and watch progress

Revision ID: b3d9e61f0a27
Revises: b3d5f7a9c2e1
Create Date: 2026-11-30 17:10:00.000000

The search index is not in the models' metadata (videoflix/videos/search.py): on PostgreSQL a
generated tsvector column with a GIN index (and the category filter's index), on SQLite an FTS5
table kept in sync with `video` by triggers. Its DDL is frozen here, as it was at this revision.
"""
import sqlalchemy as sa
from alembic import op

from videoflix.models_base import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'b3d9e61f0a27'
down_revision = 'b3d5f7a9c2e1'
branch_labels = None
depends_on = None

PG_UP = [
    "ALTER TABLE video ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS "
    "(setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', description), 'B')) STORED",
    "CREATE INDEX IF NOT EXISTS ix_video_fulltext ON video USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS ix_video_category_ready ON video (lower(category), created_at, id) "
    "WHERE status = 'ready'",
]
PG_DOWN = ["DROP INDEX IF EXISTS ix_video_category_ready", "ALTER TABLE video DROP COLUMN IF EXISTS search_vector"]
_ROW = "(rowid, title, description) VALUES (new.id, new.title, new.description);"
_DELETE = ("INSERT INTO video_search(video_search, rowid, title, description) "
           "VALUES ('delete', old.id, old.title, old.description);")
SQLITE_UP = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS video_search USING fts5(title, description, content='video', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    f"CREATE TRIGGER IF NOT EXISTS video_search_insert AFTER INSERT ON video BEGIN INSERT INTO video_search{_ROW} END",
    f"CREATE TRIGGER IF NOT EXISTS video_search_delete AFTER DELETE ON video BEGIN {_DELETE} END",
    "CREATE TRIGGER IF NOT EXISTS video_search_update AFTER UPDATE OF title, description ON video BEGIN "
    f"{_DELETE} INSERT INTO video_search{_ROW} END",
    "INSERT INTO video_search(video_search) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS video_search_insert",
    "DROP TRIGGER IF EXISTS video_search_delete",
    "DROP TRIGGER IF EXISTS video_search_update",
    "DROP TABLE IF EXISTS video_search",
]


def _run(postgresql, sqlite):
    bind = op.get_bind()
    for statement in {"postgresql": postgresql, "sqlite": sqlite}.get(bind.dialect.name, []):
        bind.exec_driver_sql(statement)


def upgrade():
    op.create_table(
        'watch_progress',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('video_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Double(), nullable=False),
        sa.Column('completed', sa.Boolean(), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_watch_progress_user_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['video_id'], ['video.id'], name=op.f('fk_watch_progress_video_id_video'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'video_id', name=op.f('pk_watch_progress')),
    )
    with op.batch_alter_table('watch_progress', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watch_progress_video_id'), ['video_id'], unique=False)
    with op.batch_alter_table('video', schema=None) as batch_op:
        batch_op.create_index('ix_video_status_created_at_id', ['status', 'created_at', 'id'], unique=False)
    _run(PG_UP, SQLITE_UP)


def downgrade():
    _run(PG_DOWN, SQLITE_DOWN)
    with op.batch_alter_table('video', schema=None) as batch_op:
        batch_op.drop_index('ix_video_status_created_at_id')
    with op.batch_alter_table('watch_progress', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watch_progress_video_id'))
    op.drop_table('watch_progress')
