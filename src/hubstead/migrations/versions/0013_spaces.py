"""spaces: runtime state, variables and secrets

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 13:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "space_runtimes",
        sa.Column("repo_pk", sa.Integer(), sa.ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("subdomain", sa.String(length=200), nullable=False),
        sa.Column("hardware", sa.String(length=32), nullable=False),
        sa.Column("requested_hardware", sa.String(length=32), nullable=True),
        sa.Column("sleep_time", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("wanted_sha", sa.String(length=40), nullable=True),
        sa.Column("running_sha", sa.String(length=40), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("factory_generation", sa.Integer(), nullable=False),
        sa.Column("built_factory", sa.Integer(), nullable=False),
        sa.Column("env_key", sa.String(length=64), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("last_request_at", sa.DateTime(), nullable=True),
        sa.Column("stage_changed_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("subdomain"),
    )
    op.create_table(
        "space_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("repo_pk", sa.Integer(), sa.ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("repo_pk", "kind", "key", name="uq_space_settings_key"),
    )
    op.create_index("ix_space_settings_repo_pk", "space_settings", ["repo_pk"])


def downgrade() -> None:
    op.drop_index("ix_space_settings_repo_pk", table_name="space_settings")
    op.drop_table("space_settings")
    op.drop_table("space_runtimes")
