"""coordination: leases (the elected compute process) and failure counts shared by every API process

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 02:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("renewed_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "failure_counts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("budget", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_failure_counts_budget_key_at", "failure_counts", ["budget", "key", "at"])


def downgrade() -> None:
    op.drop_index("ix_failure_counts_budget_key_at", table_name="failure_counts")
    op.drop_table("failure_counts")
    op.drop_table("leases")
