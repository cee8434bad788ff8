"""where a running space's app listens: its host as well as its port (issue 22: apps on a Ray cluster's nodes)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 14:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: this host's loopback (every app before this revision, and every app the local backend runs).
    op.add_column("space_runtimes", sa.Column("host", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("space_runtimes") as batch:
        batch.drop_column("host")
