"""Pages carry the pipeline's notices: facts about the document that are not review tasks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 21:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('pages', sa.Column('notices', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    op.drop_column('pages', 'notices')
