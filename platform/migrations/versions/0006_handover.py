"""handover: when a record last changed owner; why a task was closed undone

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 10:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    # empty for every existing record: time rules "from assigned_at" count from created_at
    # until the record next changes hands, so nothing already due is armed again
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_reason', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('closed_reason')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_column('assigned_at')
