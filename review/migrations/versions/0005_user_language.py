"""A reviewer's language is theirs, on any browser they log in from.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 20:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('language', sa.String(8), nullable=True))


def downgrade() -> None:
    op.drop_column('users', 'language')
