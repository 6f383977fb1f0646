"""payments: orders, append-only payment transactions (notification id unique), refunds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:01:51.046817
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pay_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('out_trade_no', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=8), nullable=False),
    sa.Column('description', sa.String(length=127), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('payer_openid', sa.String(length=64), nullable=True),
    sa.Column('transaction_id', sa.String(length=32), nullable=True),
    sa.Column('attach', sa.String(length=128), nullable=False),
    sa.Column('points_member_id', sa.Integer(), nullable=True),
    sa.Column('needs_reconcile', sa.Boolean(), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_pay_orders_amount_positive')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_pay_orders_member_id_members')),
    sa.ForeignKeyConstraint(['points_member_id'], ['members.id'], name=op.f('fk_pay_orders_points_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pay_orders')),
    sa.UniqueConstraint('out_trade_no', name=op.f('uq_pay_orders_out_trade_no')),
    sa.UniqueConstraint('transaction_id', name=op.f('uq_pay_orders_transaction_id'))
    )
    with op.batch_alter_table('pay_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pay_orders_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pay_orders_state'), ['state'], unique=False)

    op.create_table('pay_refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('out_refund_no', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('refund_id', sa.String(length=32), nullable=True),
    sa.Column('needs_reconcile', sa.Boolean(), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('succeeded_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_pay_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['pay_orders.id'], name=op.f('fk_pay_refunds_order_id_pay_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pay_refunds')),
    sa.UniqueConstraint('out_refund_no', name=op.f('uq_pay_refunds_out_refund_no')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_pay_refunds_refund_id'))
    )
    with op.batch_alter_table('pay_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pay_refunds_order_id'), ['order_id'], unique=False)

    op.create_table('pay_transactions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('trade_state', sa.String(length=24), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('received_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['pay_orders.id'], name=op.f('fk_pay_transactions_order_id_pay_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pay_transactions')),
    sa.UniqueConstraint('notification_id', name=op.f('uq_pay_transactions_notification_id'))
    )
    with op.batch_alter_table('pay_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pay_transactions_order_id'), ['order_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('pay_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pay_transactions_order_id'))

    op.drop_table('pay_transactions')
    with op.batch_alter_table('pay_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pay_refunds_order_id'))

    op.drop_table('pay_refunds')
    with op.batch_alter_table('pay_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pay_orders_state'))
        batch_op.drop_index(batch_op.f('ix_pay_orders_member_id'))

    op.drop_table('pay_orders')
