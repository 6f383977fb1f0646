"""one-key customer service: messages, FAQ, canned replies, phone reveals; push records linked to conversations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:01:23.809691
"""
from alembic import op
import sqlalchemy as sa
import wx_service.ground.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('desk_faq',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('question', sa.String(length=128), nullable=False),
    sa.Column('pattern', sa.String(length=512), nullable=False),
    sa.Column('is_regex', sa.Boolean(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_faq'))
    )
    op.create_table('desk_canned_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shortcut', sa.String(length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['desk_agents.id'], name=op.f('fk_desk_canned_replies_owner_id_desk_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_canned_replies')),
    sa.UniqueConstraint('owner_id', 'shortcut', name='uq_desk_canned_owner_shortcut')
    )
    with op.batch_alter_table('desk_canned_replies', schema=None) as batch_op:
        batch_op.create_index('uq_desk_canned_shared_shortcut', ['shortcut'], unique=True, postgresql_where=sa.text('owner_id IS NULL'), sqlite_where=sa.text('owner_id IS NULL'))

    op.create_table('desk_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('media_id', sa.String(length=128), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('client_key', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('wechat_errcode', sa.Integer(), nullable=True),
    sa.Column('wechat_errmsg', sa.String(length=256), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['desk_agents.id'], name=op.f('fk_desk_messages_agent_id_desk_agents')),
    sa.ForeignKeyConstraint(['conversation_id'], ['desk_conversations.id'], name=op.f('fk_desk_messages_conversation_id_desk_conversations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_messages')),
    sa.UniqueConstraint('conversation_id', 'client_key', name='uq_desk_messages_client_key')
    )
    with op.batch_alter_table('desk_messages', schema=None) as batch_op:
        batch_op.create_index('ix_desk_messages_conversation_created', ['conversation_id', 'created_at'], unique=False)

    op.create_table('desk_phone_reveals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('revealed_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['desk_agents.id'], name=op.f('fk_desk_phone_reveals_agent_id_desk_agents')),
    sa.ForeignKeyConstraint(['conversation_id'], ['desk_conversations.id'], name=op.f('fk_desk_phone_reveals_conversation_id_desk_conversations')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_desk_phone_reveals_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_phone_reveals'))
    )
    with op.batch_alter_table('desk_conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=8), server_default='oa', nullable=False))
        batch_op.add_column(sa.Column('bot_misses', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_inbound_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('read_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_response_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('csat', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('csat_at', wx_service.ground.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('inbound_pushes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('media_id', sa.String(length=128), server_default='', nullable=False))
        batch_op.add_column(sa.Column('conversation_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_inbound_pushes_conversation', ['conversation_id', 'id'], unique=False, postgresql_where=sa.text('conversation_id IS NOT NULL'), sqlite_where=sa.text('conversation_id IS NOT NULL'))



def downgrade() -> None:
    with op.batch_alter_table('inbound_pushes', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_pushes_conversation', postgresql_where=sa.text('conversation_id IS NOT NULL'), sqlite_where=sa.text('conversation_id IS NOT NULL'))
        batch_op.drop_column('conversation_id')
        batch_op.drop_column('media_id')

    with op.batch_alter_table('desk_conversations', schema=None) as batch_op:
        batch_op.drop_column('csat_at')
        batch_op.drop_column('csat')
        batch_op.drop_column('first_response_at')
        batch_op.drop_column('read_at')
        batch_op.drop_column('last_inbound_at')
        batch_op.drop_column('bot_misses')
        batch_op.drop_column('channel')

    op.drop_table('desk_phone_reveals')
    with op.batch_alter_table('desk_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_desk_messages_conversation_created')

    op.drop_table('desk_messages')
    with op.batch_alter_table('desk_canned_replies', schema=None) as batch_op:
        batch_op.drop_index('uq_desk_canned_shared_shortcut', postgresql_where=sa.text('owner_id IS NULL'), sqlite_where=sa.text('owner_id IS NULL'))

    op.drop_table('desk_canned_replies')
    op.drop_table('desk_faq')
