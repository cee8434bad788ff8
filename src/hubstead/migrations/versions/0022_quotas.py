"""storage quotas per namespace (issue 23; filled in by its change)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 06:00:00.000000
"""

from alembic import op  # noqa: F401 - used by the change that fills this migration

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
