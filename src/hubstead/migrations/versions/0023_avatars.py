"""uploaded avatars for users and orgs (issue 23)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 06:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The stored image's name (``<sha256>.<ext>`` under avatars/ in the data dir); NULL: the generated one.
    op.add_column("users", sa.Column("avatar", sa.String(length=80), nullable=True))
    op.add_column("orgs", sa.Column("avatar", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orgs") as batch:
        batch.drop_column("avatar")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("avatar")
