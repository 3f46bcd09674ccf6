"""chunked transcodes: transcode_chunk rows, video.growing and video.job_plan

Revision ID: b8d2f4a6c1e3
Revises: 9a4c2e7b1f30
Create Date: 2026-12-07 13:20:00.000000

A transcode is split into parts any worker takes (transcode_chunk); a first version may be
published while it grows (video.growing). The DDL is frozen here, as it is at this revision.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b8d2f4a6c1e3'
down_revision = '9a4c2e7b1f30'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'transcode_chunk',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('video_id', sa.Integer(), nullable=False),
        sa.Column('job', sa.String(length=32), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('start', sa.Float(), nullable=False),
        sa.Column('end', sa.Float(), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('claimed_by', sa.String(length=100), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('position', sa.Float(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['video_id'], ['video.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('video_id', 'job', 'number'),
    )
    op.create_index('ix_transcode_chunk_video_id', 'transcode_chunk', ['video_id'], unique=False)
    with op.batch_alter_table('video') as batch:
        batch.add_column(sa.Column('growing', sa.Boolean(), server_default='0', nullable=False))
        batch.add_column(sa.Column('job_plan', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('video') as batch:
        batch.drop_column('job_plan')
        batch.drop_column('growing')
    op.drop_index('ix_transcode_chunk_video_id', table_name='transcode_chunk')
    op.drop_table('transcode_chunk')
