"""one-key customer service: teams, agents and their load, conversations (one open per shopper)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:20:00
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('desk_teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_teams')),
    sa.UniqueConstraint('code', name=op.f('uq_desk_teams_code'))
    )
    op.create_table('desk_agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('max_open', sa.Integer(), nullable=False),
    sa.Column('open_load', sa.Integer(), nullable=False),
    sa.Column('last_offered_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_desk_agents_staff_id_staff')),
    sa.ForeignKeyConstraint(['team_id'], ['desk_teams.id'], name=op.f('fk_desk_agents_team_id_desk_teams')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_agents')),
    sa.UniqueConstraint('staff_id', name=op.f('uq_desk_agents_staff_id'))
    )
    with op.batch_alter_table('desk_agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_desk_agents_team_id'), ['team_id'], unique=False)

    op.create_table('desk_conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('context', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('queued_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('offered_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('assigned_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('declined_by', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['desk_agents.id'], name=op.f('fk_desk_conversations_assignee_id_desk_agents')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_desk_conversations_member_id_members')),
    sa.ForeignKeyConstraint(['team_id'], ['desk_teams.id'], name=op.f('fk_desk_conversations_team_id_desk_teams')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_conversations'))
    )
    with op.batch_alter_table('desk_conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_desk_conversations_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_desk_conversations_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_desk_conversations_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index('uq_desk_conversations_open_openid', ['openid'], unique=True,
                              postgresql_where=sa.text("status <> 'resolved'"),
                              sqlite_where=sa.text("status <> 'resolved'"))


def downgrade() -> None:
    with op.batch_alter_table('desk_conversations', schema=None) as batch_op:
        batch_op.drop_index('uq_desk_conversations_open_openid', postgresql_where=sa.text("status <> 'resolved'"),
                            sqlite_where=sa.text("status <> 'resolved'"))
        batch_op.drop_index('ix_desk_conversations_status_created')
        batch_op.drop_index(batch_op.f('ix_desk_conversations_member_id'))
        batch_op.drop_index(batch_op.f('ix_desk_conversations_assignee_id'))
    op.drop_table('desk_conversations')
    with op.batch_alter_table('desk_agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_desk_agents_team_id'))
    op.drop_table('desk_agents')
    op.drop_table('desk_teams')
