"""funnel: touches carry the counter and a refund's payment

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:48:17.889174
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('counter', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('ref', sa.String(length=96), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.drop_column('ref')
        batch_op.drop_column('counter')

