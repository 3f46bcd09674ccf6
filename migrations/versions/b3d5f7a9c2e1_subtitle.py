"""subtitle: a video's subtitle tracks, one per language

Revision ID: b3d5f7a9c2e1
Revises: b3d5e7f90a12
Create Date: 2026-11-30 16:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

import videoflix.models_base

# revision identifiers, used by Alembic.
revision = 'b3d5f7a9c2e1'
down_revision = 'b3d5e7f90a12'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'subtitle',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('video_id', sa.Integer(), nullable=False),
        sa.Column('language', sa.String(length=35), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('created_at', videoflix.models_base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['video_id'], ['video.id'], name=op.f('fk_subtitle_video_id_video'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subtitle')),
        sa.UniqueConstraint('video_id', 'language', name=op.f('uq_subtitle_video_id'))
    )
    with op.batch_alter_table('subtitle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subtitle_video_id'), ['video_id'], unique=False)


def downgrade():
    with op.batch_alter_table('subtitle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subtitle_video_id'))
    op.drop_table('subtitle')
