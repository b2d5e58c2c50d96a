"""tag image counter

Revision ID: b7e41c2d9a10
Revises: a2db8f98fbf4
Create Date: 2026-11-24 15:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e41c2d9a10'
down_revision = 'a2db8f98fbf4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_count', sa.Integer(), server_default='0', nullable=False))
    # Existing tags start from a count of their links, as the refresh-counters job computes it.
    op.execute("UPDATE tag SET image_count = (SELECT count(*) FROM image_tag WHERE image_tag.tag_id = tag.id)")


def downgrade():
    with op.batch_alter_table('tag', schema=None) as batch_op:
        batch_op.drop_column('image_count')
