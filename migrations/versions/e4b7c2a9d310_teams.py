"""teams: workforces on datasets, invites, task members, queue positions, acceptance samples

Revision ID: e4b7c2a9d310
Revises: d1a0e5f7c901
Create Date: 2026-12-02 17:54:31.876875

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4b7c2a9d310'
down_revision = 'd1a0e5f7c901'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dataset_workforce',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('workforce_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_dataset_workforce_dataset_id_dataset'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workforce_id'], ['workforce.id'], name=op.f('fk_dataset_workforce_workforce_id_workforce'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_workforce')),
    sa.UniqueConstraint('dataset_id', 'workforce_id', name=op.f('uq_dataset_workforce_dataset_id_workforce_id'))
    )
    with op.batch_alter_table('dataset_workforce', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_workforce_workforce_id'), ['workforce_id'], unique=False)

    op.create_table('workforce_invite',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workforce_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('labeler', 'reviewer', 'team_admin', name='workforcerole', native_enum=False, length=12), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('used_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_workforce_invite_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['used_by_id'], ['user.id'], name=op.f('fk_workforce_invite_used_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workforce_id'], ['workforce.id'], name=op.f('fk_workforce_invite_workforce_id_workforce'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workforce_invite')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_workforce_invite_token_hash'))
    )
    with op.batch_alter_table('workforce_invite', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workforce_invite_workforce_id'), ['workforce_id'], unique=False)

    op.create_table('acceptance_sample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('required_accuracy', sa.Float(), nullable=False),
    sa.Column('lot_size', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('pending', 'passed', 'failed', name='sampleoutcome', native_enum=False, length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_acceptance_sample_created_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['labeling_task.id'], name=op.f('fk_acceptance_sample_task_id_labeling_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acceptance_sample'))
    )
    with op.batch_alter_table('acceptance_sample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_acceptance_sample_task_id'), ['task_id'], unique=False)

    op.create_table('task_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['labeling_task.id'], name=op.f('fk_task_member_task_id_labeling_task'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_task_member_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_member')),
    sa.UniqueConstraint('task_id', 'user_id', name=op.f('uq_task_member_task_id_user_id'))
    )
    with op.batch_alter_table('task_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_member_user_id'), ['user_id'], unique=False)

    op.create_table('sample_item',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('verdict', sa.String(length=10), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], name=op.f('fk_sample_item_decided_by_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_sample_item_image_id_image'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sample_id'], ['acceptance_sample.id'], name=op.f('fk_sample_item_sample_id_acceptance_sample'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sample_item')),
    sa.UniqueConstraint('sample_id', 'image_id', name=op.f('uq_sample_item_sample_id_image_id'))
    )
    with op.batch_alter_table('sample_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sample_item_image_id'), ['image_id'], unique=False)

    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('annotations', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='0', nullable=False))
        batch_op.alter_column('labeler_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index('ix_assignment_queue', ['task_id', 'labeler_id', 'state', 'position'], unique=False)

    with op.batch_alter_table('labeling_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_size', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('image_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('complete', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('job_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_labeling_task_job_id_job'), 'job', ['job_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_labeling_task_created_by_id_user'), 'user', ['created_by_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=True))
        batch_op.create_index('ix_review_reviewer', ['reviewer_id', 'created_at'], unique=False)

    with op.batch_alter_table('workforce', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_workforce_created_by_id_user'), 'user', ['created_by_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('workforce', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_workforce_created_by_id_user'), type_='foreignkey')
        batch_op.drop_column('created_by_id')

    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index('ix_review_reviewer')
        batch_op.drop_column('revision')

    with op.batch_alter_table('labeling_task', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_labeling_task_created_by_id_user'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_labeling_task_job_id_job'), type_='foreignkey')
        batch_op.drop_column('created_by_id')
        batch_op.drop_column('job_id')
        batch_op.drop_column('complete')
        batch_op.drop_column('image_count')
        batch_op.drop_column('batch_size')

    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_index('ix_assignment_queue')
        batch_op.alter_column('labeler_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('revision')
        batch_op.drop_column('annotations')
        batch_op.drop_column('position')

    with op.batch_alter_table('sample_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sample_item_image_id'))

    op.drop_table('sample_item')
    with op.batch_alter_table('task_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_member_user_id'))

    op.drop_table('task_member')
    with op.batch_alter_table('acceptance_sample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_acceptance_sample_task_id'))

    op.drop_table('acceptance_sample')
    with op.batch_alter_table('workforce_invite', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workforce_invite_workforce_id'))

    op.drop_table('workforce_invite')
    with op.batch_alter_table('dataset_workforce', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_workforce_workforce_id'))

    op.drop_table('dataset_workforce')
