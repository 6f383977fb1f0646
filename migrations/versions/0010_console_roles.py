"""console roles: every desk agent holds the `agent` role

Data only: the staff_roles table (0008) already holds any role name. Before this revision any
signed-in staff member could open the desk (if they had an Agent row), the counter page and the
cashier page; from here each console route needs a role. Agents keep the desk (their rows are
backfilled with `agent`). Till staff get no role by guess: after upgrading, grant `cashier` (or
`counter --counter CODE`) to whoever works a till (`flask staff grant-role USER cashier`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text(
        "INSERT INTO staff_roles (staff_id, role, counter_code) "
        "SELECT a.staff_id, 'agent', '' FROM desk_agents a "
        "WHERE NOT EXISTS (SELECT 1 FROM staff_roles r "
        "                  WHERE r.staff_id = a.staff_id AND r.role = 'agent' AND r.counter_code = '')"))


def downgrade() -> None:
    # The code before this revision knows admin and counter only.
    op.execute(sa.text("DELETE FROM staff_roles WHERE role NOT IN ('admin', 'counter')"))
