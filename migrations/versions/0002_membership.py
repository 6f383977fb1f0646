"""membership: members, cards, ledger, coupons

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:27:40.617598
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('card_definitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('refuse_reason', sa.String(length=256), nullable=False),
    sa.Column('pushed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_definitions')),
    sa.UniqueConstraint('card_id', name=op.f('uq_card_definitions_card_id'))
    )
    op.create_table('members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unionid', sa.String(length=64), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('joined_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('points_balance', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('points_balance >= 0', name=op.f('ck_members_points_balance_not_negative')),
    sa.ForeignKeyConstraint(['merged_into_id'], ['members.id'], name=op.f('fk_members_merged_into_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('phone', name=op.f('uq_members_phone')),
    sa.UniqueConstraint('unionid', name=op.f('uq_members_unionid'))
    )
    op.create_table('staff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_username'))
    )
    op.create_table('coupons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('title', sa.String(length=64), nullable=False),
    sa.Column('value_fen', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('source_key', sa.String(length=160), nullable=False),
    sa.Column('issued_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('redeemed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_coupons_member_id_members')),
    sa.ForeignKeyConstraint(['redeemed_by_id'], ['staff.id'], name=op.f('fk_coupons_redeemed_by_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code')),
    sa.UniqueConstraint('source_key', name=op.f('uq_coupons_source_key'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_member_id'), ['member_id'], unique=False)

    op.create_table('member_cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outer_str', sa.String(length=128), nullable=False),
    sa.Column('source_scene', sa.String(length=64), nullable=False),
    sa.Column('issued_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('activated_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_viewed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('synced_ledger_id', sa.BigInteger(), nullable=False),
    sa.Column('synced_level', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_cards_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_cards')),
    sa.UniqueConstraint('code', name=op.f('uq_member_cards_code'))
    )
    with op.batch_alter_table('member_cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_cards_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_cards_openid'), ['openid'], unique=False)

    op.create_table('member_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_identities_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_identities')),
    sa.UniqueConstraint('kind', 'openid', name='uq_member_identities_kind_openid')
    )
    with op.batch_alter_table('member_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_identities_member_id'), ['member_id'], unique=False)

    op.create_table('member_level_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('from_level', sa.String(length=16), nullable=False),
    sa.Column('to_level', sa.String(length=16), nullable=False),
    sa.Column('spend_fen', sa.Integer(), nullable=False),
    sa.Column('changed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_level_changes_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_level_changes'))
    )
    with op.batch_alter_table('member_level_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_level_changes_member_id'), ['member_id'], unique=False)

    op.create_table('member_spend',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('occurred_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source_key', sa.String(length=160), nullable=False),
    sa.Column('ref_key', sa.String(length=160), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_spend_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_spend')),
    sa.UniqueConstraint('source_key', name=op.f('uq_member_spend_source_key'))
    )
    with op.batch_alter_table('member_spend', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_spend_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_spend_ref_key'), ['ref_key'], unique=False)

    op.create_table('points_adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=256), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['approved_by_id'], ['staff.id'], name=op.f('fk_points_adjustments_approved_by_id_staff')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_points_adjustments_member_id_members')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['staff.id'], name=op.f('fk_points_adjustments_requested_by_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_points_adjustments'))
    )
    with op.batch_alter_table('points_adjustments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_points_adjustments_member_id'), ['member_id'], unique=False)

    op.create_table('points_ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('balance_after', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('source_key', sa.String(length=160), nullable=False),
    sa.Column('ref_key', sa.String(length=160), nullable=False),
    sa.Column('earned_year', sa.Integer(), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=256), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance_after >= 0', name=op.f('ck_points_ledger_balance_after_not_negative')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['staff.id'], name=op.f('fk_points_ledger_approved_by_id_staff')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_points_ledger_member_id_members')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_points_ledger_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_points_ledger')),
    sa.UniqueConstraint('source_key', name=op.f('uq_points_ledger_source_key'))
    )
    with op.batch_alter_table('points_ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_points_ledger_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_points_ledger_ref_key'), ['ref_key'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('points_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_points_ledger_ref_key'))
        batch_op.drop_index(batch_op.f('ix_points_ledger_member_id'))

    op.drop_table('points_ledger')
    with op.batch_alter_table('points_adjustments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_points_adjustments_member_id'))

    op.drop_table('points_adjustments')
    with op.batch_alter_table('member_spend', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_spend_ref_key'))
        batch_op.drop_index(batch_op.f('ix_member_spend_member_id'))

    op.drop_table('member_spend')
    with op.batch_alter_table('member_level_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_level_changes_member_id'))

    op.drop_table('member_level_changes')
    with op.batch_alter_table('member_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_identities_member_id'))

    op.drop_table('member_identities')
    with op.batch_alter_table('member_cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_cards_openid'))
        batch_op.drop_index(batch_op.f('ix_member_cards_member_id'))

    op.drop_table('member_cards')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_member_id'))

    op.drop_table('coupons')
    op.drop_table('staff')
    op.drop_table('members')
    op.drop_table('card_definitions')

