"""Failed log-ins, by name and client address, so repeated wrong passwords can be throttled.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('failed_logins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('failed_logins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_failed_logins_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_failed_logins_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_failed_logins_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('failed_logins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_failed_logins_at'))
        batch_op.drop_index(batch_op.f('ix_failed_logins_address'))
        batch_op.drop_index(batch_op.f('ix_failed_logins_name'))
    op.drop_table('failed_logins')
