"""memberships.prompt_path: how the checkout's variant is known, "click" or "assigned"

Every attribution before this revision came from the checkout form's variant: a click.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 20:27:38
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prompt_path', sa.String(length=10), nullable=True))
    op.execute("UPDATE memberships SET prompt_path = 'click' WHERE prompt_variant IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_column('prompt_path')
