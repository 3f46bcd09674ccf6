"""tus_upload: resumable uploads (tus 1.0.0)

Revision ID: b3d5e7f90a12
Revises: 7c1e2a9d4b10
Create Date: 2026-11-30 17:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

from videoflix.models_base import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'b3d5e7f90a12'
down_revision = '7c1e2a9d4b10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'tus_upload',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('length', sa.BigInteger(), nullable=False),
        sa.Column('upload_metadata', sa.JSON(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('video_id', sa.Integer(), nullable=True),
        sa.Column('locked_by', sa.String(length=64), nullable=True),
        sa.Column('locked_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_tus_upload_owner_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tus_upload')),
    )
    with op.batch_alter_table('tus_upload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tus_upload_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tus_upload_owner_id'), ['owner_id'], unique=False)


def downgrade():
    with op.batch_alter_table('tus_upload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tus_upload_owner_id'))
        batch_op.drop_index(batch_op.f('ix_tus_upload_expires_at'))
    op.drop_table('tus_upload')
