"""job runner: the host and process that took a job row, so a dead worker is told from a live work-horse

Revision ID: c3f9a1d2e4b5
Revises: c3f5a7d1e2b4
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3f9a1d2e4b5'
down_revision = 'c3f5a7d1e2b4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('runner', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('runner')
