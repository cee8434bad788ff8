"""storage quotas per namespace (issue 23; filled in by its change)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 06:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A site admin's limits per namespace (NULL: the site default); usage is computed from repo_lfs_objects.
    op.create_table(
        "namespace_quotas",
        sa.Column("namespace_key", sa.String(length=96), primary_key=True),
        sa.Column("public_bytes", sa.BigInteger(), nullable=True),
        sa.Column("private_bytes", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("namespace_quotas")
