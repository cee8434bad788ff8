"""compute jobs (the Hub's Jobs API) and scheduled jobs

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 17:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _owned_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(length=24), primary_key=True),
        sa.Column("namespace", sa.String(length=96), nullable=False),
        sa.Column("namespace_key", sa.String(length=96), nullable=False),
        sa.Column("owner_type", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "compute_jobs",
        *_owned_columns(),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("initiator_type", sa.String(length=24), nullable=True),
        sa.Column("initiator_id", sa.String(length=64), nullable=True),
        sa.Column("scheduled_job_id", sa.String(length=24), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("devices", sa.String(length=64), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_compute_jobs_namespace_created", "compute_jobs", ["namespace_key", "created_at"])
    op.create_index("ix_compute_jobs_stage", "compute_jobs", ["stage"])
    op.create_index("ix_compute_jobs_scheduled_job_id", "compute_jobs", ["scheduled_job_id"])
    op.create_table(
        "scheduled_jobs",
        *_owned_columns(),
        sa.Column("schedule", sa.String(length=120), nullable=False),
        sa.Column("suspend", sa.Boolean(), nullable=False),
        sa.Column("concurrency", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(), nullable=True),
        sa.Column("last_job_id", sa.String(length=24), nullable=True),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_scheduled_jobs_namespace", "scheduled_jobs", ["namespace_key"])


def downgrade() -> None:
    op.drop_index("ix_scheduled_jobs_namespace", table_name="scheduled_jobs")
    op.drop_table("scheduled_jobs")
    op.drop_index("ix_compute_jobs_scheduled_job_id", table_name="compute_jobs")
    op.drop_index("ix_compute_jobs_stage", table_name="compute_jobs")
    op.drop_index("ix_compute_jobs_namespace_created", table_name="compute_jobs")
    op.drop_table("compute_jobs")
