"""video storyboard: the current version's storyboard index, so the detail names it without asking the store

Revision ID: c4e8a1f2d6b3
Revises: b3d9e61f0a27
Create Date: 2026-11-30 18:00:00.000000

Plain ALTER TABLE on every database (SQLite 3.35+ drops a column in place): a batch "move and copy"
of `video` would drop the catalogue's FTS5 triggers (b3d9e61f0a27).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4e8a1f2d6b3'
down_revision = 'b3d9e61f0a27'
branch_labels = None
depends_on = None


def upgrade():
    # Versions published before have no storyboard on record: `flask transcode --storyboards` gives
    # them one and records it.
    op.add_column('video', sa.Column('storyboard', sa.String(length=255), nullable=True))


def downgrade():
    op.drop_column('video', 'storyboard')
