"""followers.location_answered_at: when a LOCATION report was last answered with the nearest store

The phone may report every 5 seconds; the OA answers once per 30 minutes. No coordinates are kept.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 14:33:34.997409
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('location_answered_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.drop_column('location_answered_at')

