"""foundation: pushes, followers, content, qr codes

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 07:19:45.109875
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('articles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=256), nullable=False),
    sa.Column('url', sa.String(length=512), nullable=False),
    sa.Column('image_url', sa.String(length=512), nullable=False),
    sa.Column('published_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_articles'))
    )
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_articles_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_articles_published_at'), ['published_at'], unique=False)

    op.create_table('followers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('unionid', sa.String(length=64), nullable=True),
    sa.Column('nickname', sa.String(length=64), nullable=False),
    sa.Column('subscribed', sa.Boolean(), nullable=False),
    sa.Column('first_subscribed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('subscribed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_scene', sa.String(length=64), nullable=False),
    sa.Column('profile_fetched_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followers')),
    sa.UniqueConstraint('openid', name=op.f('uq_followers_openid'))
    )
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followers_unionid'), ['unionid'], unique=False)

    op.create_table('inbound_pushes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('dedup_key', sa.String(length=96), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('msg_type', sa.String(length=32), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('event_key', sa.String(length=256), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('handler', sa.String(length=128), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('created_at_wechat', sa.BigInteger(), nullable=False),
    sa.Column('received_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_pushes')),
    sa.UniqueConstraint('appid', 'dedup_key', name='uq_inbound_pushes_appid_dedup_key')
    )
    with op.batch_alter_table('inbound_pushes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_pushes_openid'), ['openid'], unique=False)

    op.create_table('qr_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scene', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('permanent', sa.Boolean(), nullable=False),
    sa.Column('ticket', sa.String(length=256), nullable=False),
    sa.Column('url', sa.String(length=256), nullable=False),
    sa.Column('expires_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('follow_up_text', sa.Text(), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qr_codes')),
    sa.UniqueConstraint('scene', name=op.f('uq_qr_codes_scene'))
    )
    op.create_table('store_info',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=256), nullable=False),
    sa.Column('opening_hours', sa.String(length=128), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store_info'))
    )
    op.create_table('follower_scans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=False),
    sa.Column('scene', sa.String(length=64), nullable=False),
    sa.Column('subscribed_by_scan', sa.Boolean(), nullable=False),
    sa.Column('scanned_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['follower_id'], ['followers.id'], name=op.f('fk_follower_scans_follower_id_followers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follower_scans'))
    )
    with op.batch_alter_table('follower_scans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_follower_scans_follower_id'), ['follower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_follower_scans_scene'), ['scene'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('follower_scans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follower_scans_scene'))
        batch_op.drop_index(batch_op.f('ix_follower_scans_follower_id'))

    op.drop_table('follower_scans')
    op.drop_table('store_info')
    op.drop_table('qr_codes')
    with op.batch_alter_table('inbound_pushes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_pushes_openid'))

    op.drop_table('inbound_pushes')
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_followers_unionid'))

    op.drop_table('followers')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_articles_published_at'))
        batch_op.drop_index(batch_op.f('ix_articles_kind'))

    op.drop_table('articles')

