"""brand subscriptions: state, consent ledger, announcements, chunks, deliveries

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:48:19.461532
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('brand_announcements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=64), nullable=False),
    sa.Column('brand_ids', sa.JSON(), nullable=False),
    sa.Column('subscribers', sa.Integer(), nullable=False),
    sa.Column('chunks_total', sa.Integer(), nullable=False),
    sa.Column('chunks_done', sa.Integer(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_announcements')),
    sa.UniqueConstraint('kind', 'item_id', name=op.f('uq_brand_announcements_kind'))
    )
    op.create_table('brand_announcement_chunks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('announcement_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('after_key', sa.String(length=64), nullable=False),
    sa.Column('last_key', sa.String(length=64), nullable=True),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('queued_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resume_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['announcement_id'], ['brand_announcements.id'], name=op.f('fk_brand_announcement_chunks_announcement_id_brand_announcements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_announcement_chunks')),
    sa.UniqueConstraint('announcement_id', 'seq', name=op.f('uq_brand_announcement_chunks_announcement_id'))
    )
    with op.batch_alter_table('brand_announcement_chunks', schema=None) as batch_op:
        batch_op.create_index('ix_brand_announcement_chunks_status', ['status'], unique=False)

    op.create_table('brand_news_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('announcement_id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('channel', sa.String(length=12), nullable=False),
    sa.Column('to_openid', sa.String(length=64), nullable=False),
    sa.Column('wechat_errcode', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=256), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['announcement_id'], ['brand_announcements.id'], name=op.f('fk_brand_news_deliveries_announcement_id_brand_announcements')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_brand_news_deliveries_brand_id_brands')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_news_deliveries')),
    sa.UniqueConstraint('openid', 'kind', 'item_id', name=op.f('uq_brand_news_deliveries_openid'))
    )
    with op.batch_alter_table('brand_news_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_brand_news_deliveries_announcement_status', ['announcement_id', 'status'], unique=False)
        batch_op.create_index('ix_brand_news_deliveries_openid_created', ['openid', 'created_at'], unique=False)

    op.create_table('brand_subscription_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=12), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_brand_subscription_changes_brand_id_brands')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_subscription_changes'))
    )
    with op.batch_alter_table('brand_subscription_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_brand_subscription_changes_brand_id'), ['brand_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_brand_subscription_changes_openid'), ['openid'], unique=False)

    op.create_table('brand_subscriptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_brand_subscriptions_brand_id_brands')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_subscriptions')),
    sa.UniqueConstraint('openid', 'brand_id', name=op.f('uq_brand_subscriptions_openid'))
    )
    with op.batch_alter_table('brand_subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_brand_subscriptions_brand_openid', ['brand_id', 'openid'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table('brand_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_brand_subscriptions_brand_openid')

    op.drop_table('brand_subscriptions')
    with op.batch_alter_table('brand_subscription_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_brand_subscription_changes_openid'))
        batch_op.drop_index(batch_op.f('ix_brand_subscription_changes_brand_id'))

    op.drop_table('brand_subscription_changes')
    with op.batch_alter_table('brand_news_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_brand_news_deliveries_openid_created')
        batch_op.drop_index('ix_brand_news_deliveries_announcement_status')

    op.drop_table('brand_news_deliveries')
    with op.batch_alter_table('brand_announcement_chunks', schema=None) as batch_op:
        batch_op.drop_index('ix_brand_announcement_chunks_status')

    op.drop_table('brand_announcement_chunks')
    op.drop_table('brand_announcements')
    # ### end Alembic commands ###
