"""staff.session_epoch: a deactivation or password reset ends the staff member's console sessions

A console session remembers the epoch it signed in under; deactivating a staff member or resetting
their password bumps it, so every cookie issued before is refused at its next request, and a
reactivation does not revive them. Existing sessions carry no epoch and count as epoch 0, the
column's default: they stay valid until the first such change.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 14:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
