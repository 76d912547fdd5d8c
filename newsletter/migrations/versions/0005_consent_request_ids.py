"""consent_records.request_id: the sign-up request a record comes from, unique

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 13:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_consent_records_request_id'), ['request_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_records_request_id'))
        batch_op.drop_column('request_id')
