"""Documents keep every name they came in under and every place they were moved to.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 19:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('documents', sa.Column('names', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    op.drop_column('documents', 'names')
