"""reservations: holdable goods and holds, services, resources, slot capacity, bookings

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:40:58.507233
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reservation_services',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('counter_code', sa.String(length=32), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('buffer_minutes', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_services')),
    sa.UniqueConstraint('code', name=op.f('uq_reservation_services_code'))
    )
    op.create_table('reservation_variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('counter_code', sa.String(length=32), nullable=False),
    sa.Column('brand', sa.String(length=64), nullable=False),
    sa.Column('product', sa.String(length=128), nullable=False),
    sa.Column('variant', sa.String(length=64), nullable=False),
    sa.Column('holdable', sa.Integer(), nullable=False),
    sa.Column('held', sa.Integer(), nullable=False),
    sa.CheckConstraint('held >= 0 AND held <= holdable', name=op.f('ck_reservation_variants_held_within_holdable')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_variants')),
    sa.UniqueConstraint('counter_code', 'product', 'variant', name='uq_reservation_variants_item')
    )
    op.create_table('reservation_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('visit_day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('out_trade_no', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_reservation_holds_member_id_members')),
    sa.ForeignKeyConstraint(['variant_id'], ['reservation_variants.id'], name=op.f('fk_reservation_holds_variant_id_reservation_variants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_holds')),
    sa.UniqueConstraint('openid', 'idempotency_key', name='uq_reservation_holds_idempotency')
    )
    with op.batch_alter_table('reservation_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservation_holds_openid'), ['openid'], unique=False)
        batch_op.create_index('ix_reservation_holds_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservation_holds_variant_id'), ['variant_id'], unique=False)

    op.create_table('reservation_resources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['reservation_services.id'], name=op.f('fk_reservation_resources_service_id_reservation_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_resources'))
    )
    with op.batch_alter_table('reservation_resources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservation_resources_service_id'), ['service_id'], unique=False)

    op.create_table('reservation_bookings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('resource_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('cancel_reason', sa.Text(), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_reservation_bookings_member_id_members')),
    sa.ForeignKeyConstraint(['previous_id'], ['reservation_bookings.id'], name=op.f('fk_reservation_bookings_previous_id_reservation_bookings')),
    sa.ForeignKeyConstraint(['resource_id'], ['reservation_resources.id'], name=op.f('fk_reservation_bookings_resource_id_reservation_resources')),
    sa.ForeignKeyConstraint(['service_id'], ['reservation_services.id'], name=op.f('fk_reservation_bookings_service_id_reservation_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_bookings')),
    sa.UniqueConstraint('openid', 'idempotency_key', name='uq_reservation_bookings_idempotency')
    )
    with op.batch_alter_table('reservation_bookings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reservation_bookings_openid'), ['openid'], unique=False)
        batch_op.create_index('ix_reservation_bookings_slot', ['resource_id', 'starts_at'], unique=False)

    op.create_table('reservation_slot_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resource_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.CheckConstraint('used >= 0 AND used <= capacity', name=op.f('ck_reservation_slot_usage_used_within_capacity')),
    sa.ForeignKeyConstraint(['resource_id'], ['reservation_resources.id'], name=op.f('fk_reservation_slot_usage_resource_id_reservation_resources')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_slot_usage')),
    sa.UniqueConstraint('resource_id', 'starts_at', name='uq_reservation_slot_usage_slot')
    )


def downgrade() -> None:
    op.drop_table('reservation_slot_usage')
    with op.batch_alter_table('reservation_bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_reservation_bookings_slot')
        batch_op.drop_index(batch_op.f('ix_reservation_bookings_openid'))

    op.drop_table('reservation_bookings')
    with op.batch_alter_table('reservation_resources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservation_resources_service_id'))

    op.drop_table('reservation_resources')
    with op.batch_alter_table('reservation_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservation_holds_variant_id'))
        batch_op.drop_index('ix_reservation_holds_status_expires')
        batch_op.drop_index(batch_op.f('ix_reservation_holds_openid'))

    op.drop_table('reservation_holds')
    op.drop_table('reservation_variants')
    op.drop_table('reservation_services')
