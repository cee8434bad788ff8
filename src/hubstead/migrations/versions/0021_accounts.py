"""account administration: disabled users, emails (issue 23; filled in by its change)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 06:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # users.email already exists (0001); a disabled account keeps its row, repos and history.
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
