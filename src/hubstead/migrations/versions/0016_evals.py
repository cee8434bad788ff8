"""evals: benchmarks (dataset repos with a root eval.yaml) and the index of models' evaluation results

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 20:55:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_benchmarks",
        sa.Column("repo_pk", sa.Integer(), sa.ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("framework", sa.String(length=32), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sha", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "eval_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_repo_pk", sa.Integer(), sa.ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("filename", sa.String(length=1024), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(length=200), nullable=True),
        sa.Column("task_id", sa.String(length=200), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("model_sha", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.JSON(), nullable=True),
        sa.Column("date", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("pull_request", sa.Integer(), nullable=True),
        sa.Column("model_params", sa.BigInteger(), nullable=True),
        sa.Column("entry", sa.JSON(), nullable=True),
    )
    op.create_index("ix_eval_results_dataset_task", "eval_results", ["dataset_id", "task_id"])
    op.create_index("ix_eval_results_model", "eval_results", ["model_repo_pk"])


def downgrade() -> None:
    op.drop_index("ix_eval_results_model", table_name="eval_results")
    op.drop_index("ix_eval_results_dataset_task", table_name="eval_results")
    op.drop_table("eval_results")
    op.drop_table("eval_benchmarks")
