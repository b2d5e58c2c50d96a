"""annotation revision saved_at (autosaves fold into one revision)

Revision ID: c3f5a8d2e711
Revises: c3f9a1d2e4b5
Create Date: 2026-12-02 09:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3f5a8d2e711'
down_revision = 'c3f9a1d2e4b5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('annotation_revision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('saved_at', sa.DateTime(), nullable=True))
    # Every revision so far is one save: its last save is its first.
    op.execute("UPDATE annotation_revision SET saved_at = created_at")
    with op.batch_alter_table('annotation_revision', schema=None) as batch_op:
        batch_op.alter_column('saved_at', existing_type=sa.DateTime(), nullable=False)


def downgrade():
    with op.batch_alter_table('annotation_revision', schema=None) as batch_op:
        batch_op.drop_column('saved_at')
