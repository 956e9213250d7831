"""resources: the resource register 应急资源 (rescue teams, equipment, supply depots and their stock, experts,
shelters), supply requests 物资调拨, each unit's 24-hour duty phone and an incident's
disaster figures 灾情统计, issue 23

Revision ID: 0017_resources
Revises: 0015_incident_times
Create Date: 2026-12-04 22:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import store.types


revision = '0017_resources'
down_revision = '0015_incident_times'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def _updated() -> sa.Column:
    return sa.Column('updated_at', store.types.UtcDateTime(timezone=True), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table('org_unit') as b:
        b.add_column(sa.Column('duty_phone', S(), nullable=True))
    with op.batch_alter_table('incident') as b:  # 灾情统计: the totals of the last approved report
        b.add_column(sa.Column('figures', sa.JSON(), nullable=True))

    op.create_table('rescue_team',
    sa.Column('id', S(), nullable=False),
    sa.Column('name', S(), nullable=False),
    sa.Column('kind', S(), nullable=False),
    sa.Column('strength', sa.Integer(), nullable=False),
    sa.Column('equipment', sa.JSON(), nullable=False),
    sa.Column('base', S(), nullable=False),
    sa.Column('town_id', S(), nullable=True),
    sa.Column('unit_id', S(), nullable=True),
    sa.Column('duty_phone', S(), nullable=True),
    sa.Column('leader_id', S(), nullable=True),
    sa.Column('readiness', S(), nullable=False),
    sa.Column('status', S(), nullable=False),
    sa.Column('busy_with', S(), nullable=True),
    sa.Column('busy_since', store.types.UtcDateTime(timezone=True), nullable=True),
    _updated(),
    sa.ForeignKeyConstraint(['town_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['leader_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rescue_team') as b:
        b.create_index(b.f('ix_rescue_team_kind'), ['kind'], unique=False)
        b.create_index(b.f('ix_rescue_team_town_id'), ['town_id'], unique=False)
        b.create_index(b.f('ix_rescue_team_status'), ['status'], unique=False)

    op.create_table('supply_depot',
    sa.Column('id', S(), nullable=False),
    sa.Column('name', S(), nullable=False),
    sa.Column('place', S(), nullable=False),
    sa.Column('town_id', S(), nullable=True),
    sa.Column('unit_id', S(), nullable=True),
    sa.Column('keeper_id', S(), nullable=True),
    sa.Column('duty_phone', S(), nullable=True),
    _updated(),
    sa.ForeignKeyConstraint(['town_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['keeper_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('supply_depot') as b:
        b.create_index(b.f('ix_supply_depot_town_id'), ['town_id'], unique=False)

    op.create_table('stock_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('depot_id', S(), nullable=False),
    sa.Column('item', S(), nullable=False),
    sa.Column('quantity', sa.Float(), nullable=False),
    sa.Column('unit', S(), nullable=False),
    sa.Column('minimum', sa.Float(), nullable=False),
    sa.Column('expiry', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['depot_id'], ['supply_depot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('depot_id', 'item', name='uq_stock_line')
    )
    with op.batch_alter_table('stock_line') as b:
        b.create_index(b.f('ix_stock_line_depot_id'), ['depot_id'], unique=False)
        b.create_index(b.f('ix_stock_line_item'), ['item'], unique=False)

    op.create_table('equipment',
    sa.Column('id', S(), nullable=False),
    sa.Column('name', S(), nullable=False),
    sa.Column('kind', S(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit', S(), nullable=False),
    sa.Column('team_id', S(), nullable=True),
    sa.Column('depot_id', S(), nullable=True),
    sa.Column('town_id', S(), nullable=True),
    _updated(),
    sa.ForeignKeyConstraint(['team_id'], ['rescue_team.id'], ),
    sa.ForeignKeyConstraint(['depot_id'], ['supply_depot.id'], ),
    sa.ForeignKeyConstraint(['town_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('equipment') as b:
        b.create_index(b.f('ix_equipment_kind'), ['kind'], unique=False)
        b.create_index(b.f('ix_equipment_team_id'), ['team_id'], unique=False)
        b.create_index(b.f('ix_equipment_depot_id'), ['depot_id'], unique=False)
        b.create_index(b.f('ix_equipment_town_id'), ['town_id'], unique=False)

    op.create_table('expert',
    sa.Column('id', S(), nullable=False),
    sa.Column('name', S(), nullable=False),
    sa.Column('field', S(), nullable=False),
    sa.Column('title', S(), nullable=False),
    sa.Column('employer', S(), nullable=False),
    sa.Column('person_id', S(), nullable=True),
    sa.Column('mobile', S(), nullable=True),
    sa.Column('town_id', S(), nullable=True),
    _updated(),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['town_id'], ['org_unit.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('expert') as b:
        b.create_index(b.f('ix_expert_field'), ['field'], unique=False)
        b.create_index(b.f('ix_expert_town_id'), ['town_id'], unique=False)

    op.create_table('shelter',
    sa.Column('id', S(), nullable=False),
    sa.Column('name', S(), nullable=False),
    sa.Column('place', S(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('town_id', S(), nullable=True),
    sa.Column('kind', S(), nullable=False),
    sa.Column('manager_id', S(), nullable=True),
    _updated(),
    sa.ForeignKeyConstraint(['town_id'], ['org_unit.id'], ),
    sa.ForeignKeyConstraint(['manager_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shelter') as b:
        b.create_index(b.f('ix_shelter_town_id'), ['town_id'], unique=False)
        b.create_index(b.f('ix_shelter_kind'), ['kind'], unique=False)

    op.create_table('supply_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activation_id', S(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('depot_id', S(), nullable=False),
    sa.Column('state', S(), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('purpose', S(), nullable=False),
    sa.Column('deliver_to', S(), nullable=False),
    sa.Column('requested_by', S(), nullable=False),
    sa.Column('requested_at', store.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', S(), nullable=True),
    sa.Column('decided_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('comments', S(), nullable=True),
    sa.Column('picked_up_by', S(), nullable=True),
    sa.Column('picked_up_by_name', S(), nullable=True),
    sa.Column('picked_up_at', store.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('received_by', S(), nullable=True),
    sa.Column('received_at', store.types.UtcDateTime(timezone=True), nullable=True),
    _updated(),
    sa.ForeignKeyConstraint(['depot_id'], ['supply_depot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('activation_id', 'seq', name='uq_supply_request')
    )
    with op.batch_alter_table('supply_request') as b:
        b.create_index(b.f('ix_supply_request_activation_id'), ['activation_id'], unique=False)
        b.create_index(b.f('ix_supply_request_depot_id'), ['depot_id'], unique=False)
        b.create_index(b.f('ix_supply_request_state'), ['state'], unique=False)


def downgrade() -> None:
    op.drop_table('supply_request')
    for table in ('shelter', 'expert', 'equipment', 'stock_line', 'supply_depot', 'rescue_team'):
        op.drop_table(table)
    with op.batch_alter_table('incident') as b:
        b.drop_column('figures')
    with op.batch_alter_table('org_unit') as b:
        b.drop_column('duty_phone')
