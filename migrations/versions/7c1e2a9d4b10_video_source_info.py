"""video source_info: the upload's probe, reused by the worker

Revision ID: 7c1e2a9d4b10
Revises: 5f46ae9300b2
Create Date: 2026-11-30 16:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7c1e2a9d4b10'
down_revision = '5f46ae9300b2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('video', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_info', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('video', schema=None) as batch_op:
        batch_op.drop_column('source_info')
