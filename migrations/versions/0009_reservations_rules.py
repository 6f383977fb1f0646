"""reservations rules

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:01:27.023378
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reservation_hour_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('counter_code', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('opens', sa.Integer(), nullable=True),
    sa.Column('closes', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=64), nullable=False),
    sa.CheckConstraint('(opens IS NULL AND closes IS NULL) OR (opens >= 0 AND closes <= 1440 AND opens < closes)', name=op.f('ck_reservation_hour_exceptions_exception_sane')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_hour_exceptions')),
    sa.UniqueConstraint('counter_code', 'day', name='uq_reservation_hour_exceptions_day')
    )
    op.create_table('reservation_hours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('counter_code', sa.String(length=32), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('opens', sa.Integer(), nullable=False),
    sa.Column('closes', sa.Integer(), nullable=False),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6 AND opens >= 0 AND closes <= 1440 AND opens < closes', name=op.f('ck_reservation_hours_hours_sane')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_hours')),
    sa.UniqueConstraint('counter_code', 'weekday', name='uq_reservation_hours_day')
    )
    op.create_table('reservation_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('wechat_errcode', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=256), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_notices')),
    sa.UniqueConstraint('subject', 'kind', name='uq_reservation_notices_subject_kind')
    )
    with op.batch_alter_table('reservation_notices', schema=None) as batch_op:
        batch_op.create_index('ix_reservation_notices_status_created', ['status', 'created_at'], unique=False)

    op.create_table('reservation_shopper_load',
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('open_bookings', sa.Integer(), nullable=False),
    sa.CheckConstraint('open_bookings >= 0', name=op.f('ck_reservation_shopper_load_open_bookings_not_negative')),
    sa.PrimaryKeyConstraint('openid', name=op.f('pk_reservation_shopper_load'))
    )
    op.create_table('subscribe_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('template_id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('granted_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('spent_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('spent_for', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribe_grants'))
    )
    with op.batch_alter_table('subscribe_grants', schema=None) as batch_op:
        batch_op.create_index('ix_subscribe_grants_unspent', ['openid', 'template_id', 'spent_at'], unique=False)

    op.create_table('staff_roles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('counter_code', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_staff_roles_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_roles')),
    sa.UniqueConstraint('staff_id', 'role', 'counter_code', name='uq_staff_roles_grant')
    )
    with op.batch_alter_table('staff_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_roles_staff_id'), ['staff_id'], unique=False)

    op.create_table('reservation_waitlist',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resource_id', sa.Integer(), nullable=True),
    sa.Column('offered_until', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['reservation_bookings.id'], name=op.f('fk_reservation_waitlist_booking_id_reservation_bookings')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_reservation_waitlist_member_id_members')),
    sa.ForeignKeyConstraint(['resource_id'], ['reservation_resources.id'], name=op.f('fk_reservation_waitlist_resource_id_reservation_resources')),
    sa.ForeignKeyConstraint(['service_id'], ['reservation_services.id'], name=op.f('fk_reservation_waitlist_service_id_reservation_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservation_waitlist')),
    sa.UniqueConstraint('service_id', 'starts_at', 'openid', name='uq_reservation_waitlist_shopper')
    )
    with op.batch_alter_table('reservation_waitlist', schema=None) as batch_op:
        batch_op.create_index('ix_reservation_waitlist_offers', ['status', 'offered_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_reservation_waitlist_openid'), ['openid'], unique=False)
        batch_op.create_index('ix_reservation_waitlist_slot', ['service_id', 'starts_at', 'status'], unique=False)

    with op.batch_alter_table('reservation_bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checked_in_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=16), server_default='mp', nullable=False))
        batch_op.add_column(sa.Column('out_trade_no', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('visit_code', sa.String(length=16), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_reservation_bookings_visit_code'), ['visit_code'])

    with op.batch_alter_table('reservation_holds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visit_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('visited_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_reservation_holds_visit_code'), ['visit_code'])

    with op.batch_alter_table('reservation_resources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))

    with op.batch_alter_table('reservation_services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lead_minutes', sa.Integer(), server_default='60', nullable=False))
        batch_op.add_column(sa.Column('horizon_days', sa.Integer(), server_default='30', nullable=False))
        batch_op.add_column(sa.Column('description', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index(batch_op.f('ix_reservation_services_counter_code'), ['counter_code'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reservation_services', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reservation_services_counter_code'))
        batch_op.drop_column('active')
        batch_op.drop_column('description')
        batch_op.drop_column('horizon_days')
        batch_op.drop_column('lead_minutes')

    with op.batch_alter_table('reservation_resources', schema=None) as batch_op:
        batch_op.drop_column('active')

    with op.batch_alter_table('reservation_holds', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_reservation_holds_visit_code'), type_='unique')
        batch_op.drop_column('visited_at')
        batch_op.drop_column('visit_code')

    with op.batch_alter_table('reservation_bookings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_reservation_bookings_visit_code'), type_='unique')
        batch_op.drop_column('visit_code')
        batch_op.drop_column('out_trade_no')
        batch_op.drop_column('channel')
        batch_op.drop_column('checked_in_at')

    with op.batch_alter_table('reservation_waitlist', schema=None) as batch_op:
        batch_op.drop_index('ix_reservation_waitlist_slot')
        batch_op.drop_index(batch_op.f('ix_reservation_waitlist_openid'))
        batch_op.drop_index('ix_reservation_waitlist_offers')

    op.drop_table('reservation_waitlist')
    with op.batch_alter_table('staff_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_roles_staff_id'))

    op.drop_table('staff_roles')
    with op.batch_alter_table('subscribe_grants', schema=None) as batch_op:
        batch_op.drop_index('ix_subscribe_grants_unspent')

    op.drop_table('subscribe_grants')
    op.drop_table('reservation_shopper_load')
    with op.batch_alter_table('reservation_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_reservation_notices_status_created')

    op.drop_table('reservation_notices')
    op.drop_table('reservation_hours')
    op.drop_table('reservation_hour_exceptions')
