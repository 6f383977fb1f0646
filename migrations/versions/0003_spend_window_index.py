"""spend window index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 08:46:17.766682
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('member_spend', schema=None) as batch_op:
        batch_op.create_index('ix_member_spend_member_id_occurred_at', ['member_id', 'occurred_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('member_spend', schema=None) as batch_op:
        batch_op.drop_index('ix_member_spend_member_id_occurred_at')

