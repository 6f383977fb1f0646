"""content (stores, hours exceptions, brands, images, activities, new arrivals, discounts) and the funnel's touches

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:43:21.553947
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=256), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('weekly_hours', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stores')),
    sa.UniqueConstraint('code', name=op.f('uq_stores_code'))
    )
    op.create_table('content_images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=128), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('wechat_media_id', sa.String(length=128), nullable=False),
    sa.Column('wechat_url', sa.String(length=512), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['uploaded_by'], ['staff.id'], name=op.f('fk_content_images_uploaded_by_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_images')),
    sa.UniqueConstraint('sha256', name=op.f('uq_content_images_sha256'))
    )
    op.create_table('store_hours_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('opens', sa.Time(), nullable=True),
    sa.Column('closes', sa.Time(), nullable=True),
    sa.Column('note', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_store_hours_exceptions_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store_hours_exceptions')),
    sa.UniqueConstraint('store_id', 'day', name=op.f('uq_store_hours_exceptions_store_id'))
    )
    with op.batch_alter_table('store_hours_exceptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_store_hours_exceptions_store_id'), ['store_id'], unique=False)

    op.create_table('activities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.String(length=256), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('place', sa.String(length=128), nullable=False),
    sa.Column('starts_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cover_image_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('publish_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unpublish_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cover_image_id'], ['content_images.id'], name=op.f('fk_activities_cover_image_id_content_images')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_activities_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activities_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_store_id'), ['store_id'], unique=False)

    op.create_table('brands',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=64), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('floor', sa.String(length=16), nullable=False),
    sa.Column('counter_code', sa.String(length=32), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('logo_image_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['logo_image_id'], ['content_images.id'], name=op.f('fk_brands_logo_image_id_content_images')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_brands_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brands')),
    sa.UniqueConstraint('name', name=op.f('uq_brands_name'))
    )
    with op.batch_alter_table('brands', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_brands_counter_code'), ['counter_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_brands_store_id'), ['store_id'], unique=False)

    op.create_table('activity_brands',
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_activity_brands_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_activity_brands_brand_id_brands')),
    sa.PrimaryKeyConstraint('activity_id', 'brand_id', name=op.f('pk_activity_brands'))
    )
    with op.batch_alter_table('activity_brands', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_brands_brand_id'), ['brand_id'], unique=False)

    op.create_table('discounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=256), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=True),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('publish_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unpublish_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_discounts_brand_id_brands')),
    sa.ForeignKeyConstraint(['image_id'], ['content_images.id'], name=op.f('fk_discounts_image_id_content_images')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_discounts_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discounts'))
    )
    with op.batch_alter_table('discounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_discounts_brand_id'), ['brand_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_discounts_status'), ['status'], unique=False)

    op.create_table('new_arrivals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=False),
    sa.Column('product', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=256), nullable=False),
    sa.Column('price_fen', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('publish_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unpublish_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('published_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_new_arrivals_brand_id_brands')),
    sa.ForeignKeyConstraint(['image_id'], ['content_images.id'], name=op.f('fk_new_arrivals_image_id_content_images')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_new_arrivals'))
    )
    with op.batch_alter_table('new_arrivals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_new_arrivals_brand_id'), ['brand_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_new_arrivals_status'), ['status'], unique=False)

    op.create_table('touches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=96), nullable=True),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('brand_id', sa.Integer(), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('occurred_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_touches_brand_id_brands')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_touches_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_touches')),
    sa.UniqueConstraint('kind', 'key', name=op.f('uq_touches_kind'))
    )
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_touches_brand_id'), ['brand_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_touches_campaign'), ['campaign'], unique=False)
        batch_op.create_index(batch_op.f('ix_touches_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_touches_occurred_at_kind', ['occurred_at', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_touches_openid'), ['openid'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_touches_openid'))
        batch_op.drop_index('ix_touches_occurred_at_kind')
        batch_op.drop_index(batch_op.f('ix_touches_member_id'))
        batch_op.drop_index(batch_op.f('ix_touches_campaign'))
        batch_op.drop_index(batch_op.f('ix_touches_brand_id'))

    op.drop_table('touches')
    with op.batch_alter_table('new_arrivals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_new_arrivals_status'))
        batch_op.drop_index(batch_op.f('ix_new_arrivals_brand_id'))

    op.drop_table('new_arrivals')
    with op.batch_alter_table('discounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_discounts_status'))
        batch_op.drop_index(batch_op.f('ix_discounts_brand_id'))

    op.drop_table('discounts')
    with op.batch_alter_table('activity_brands', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_brands_brand_id'))

    op.drop_table('activity_brands')
    with op.batch_alter_table('brands', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_brands_store_id'))
        batch_op.drop_index(batch_op.f('ix_brands_counter_code'))

    op.drop_table('brands')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activities_store_id'))
        batch_op.drop_index(batch_op.f('ix_activities_status'))

    op.drop_table('activities')
    with op.batch_alter_table('store_hours_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_store_hours_exceptions_store_id'))

    op.drop_table('store_hours_exceptions')
    op.drop_table('content_images')
    op.drop_table('stores')
