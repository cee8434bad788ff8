"""who handled a gated repo's access request, when, and why it was rejected

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gated_access") as batch:
        batch.add_column(sa.Column("rejection_reason", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("handled_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("handled_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            "fk_gated_access_handled_by_id_users", "users", ["handled_by_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("gated_access") as batch:
        batch.drop_constraint("fk_gated_access_handled_by_id_users", type_="foreignkey")
        batch.drop_column("handled_at")
        batch.drop_column("handled_by_id")
        batch.drop_column("rejection_reason")
