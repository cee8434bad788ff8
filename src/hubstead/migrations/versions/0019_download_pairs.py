"""download_pairs: a client's last request for a counted file, shared by every API process

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 02:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "download_pairs",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_download_pairs_at", "download_pairs", ["at"])


def downgrade() -> None:
    op.drop_index("ix_download_pairs_at", table_name="download_pairs")
    op.drop_table("download_pairs")
