"""versions and exports (released snapshots, export files)

Revision ID: d1a0e5f7c901
Revises: c3f5a8d2e711
Create Date: 2026-12-02 11:48:27.214485

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd1a0e5f7c901'
down_revision = 'c3f5a8d2e711'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('image_count', sa.Integer(), nullable=False),
    sa.Column('annotation_count', sa.Integer(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_version_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_version_dataset_id_dataset'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_version_job_id_job'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_id'], ['version.id'], name=op.f('fk_version_parent_id_version'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_version')),
    sa.UniqueConstraint('dataset_id', 'number', name=op.f('uq_version_dataset_id_number'))
    )
    op.create_table('export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('format', sa.String(length=20), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('storage_key', sa.String(length=255), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('byte_size', sa.BigInteger(), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_export_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_export_dataset_id_dataset'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_export_job_id_job'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['version_id'], ['version.id'], name=op.f('fk_export_version_id_version'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export'))
    )
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_export_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index('ix_export_expires', ['expires_at'], unique=False)

    op.create_table('version_image',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.BigInteger(), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('folder_path', sa.String(length=1024), nullable=False),
    sa.Column('storage_key', sa.String(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('byte_size', sa.BigInteger(), nullable=False),
    sa.Column('format', sa.String(length=10), nullable=False),
    sa.Column('split', sa.String(length=12), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('annotations', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['version.id'], name=op.f('fk_version_image_version_id_version'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_version_image'))
    )
    with op.batch_alter_table('version_image', schema=None) as batch_op:
        batch_op.create_index('ix_version_image_storage_key', ['storage_key'], unique=False)
        batch_op.create_index('ix_version_image_version', ['version_id', 'image_id'], unique=True)



def downgrade():
    with op.batch_alter_table('version_image', schema=None) as batch_op:
        batch_op.drop_index('ix_version_image_version')
        batch_op.drop_index('ix_version_image_storage_key')

    op.drop_table('version_image')
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.drop_index('ix_export_expires')
        batch_op.drop_index(batch_op.f('ix_export_dataset_id'))

    op.drop_table('export')
    op.drop_table('version')
