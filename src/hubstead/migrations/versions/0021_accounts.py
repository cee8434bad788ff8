"""account administration: disabled users, emails (issue 23; filled in by its change)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 06:00:00.000000
"""

from alembic import op  # noqa: F401 - used by the change that fills this migration

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
