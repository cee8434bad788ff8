"""discussions, pull requests and the repo event outbox

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 04:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("discussions_disabled", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("discussions_seq", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "discussions",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("num", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("is_pull_request", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("base_ref", sa.String(length=255), nullable=True),
        sa.Column("merge_commit", sa.String(length=40), nullable=True),
        sa.Column("pending_merge", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("repo_pk", "num"),
    )
    with op.batch_alter_table("discussions", schema=None) as batch_op:
        batch_op.create_index("ix_discussions_repo_pk", ["repo_pk"], unique=False)
        batch_op.create_index("ix_discussions_status", ["status"], unique=False)
    op.create_table(
        "discussion_events",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=24), nullable=False),
        sa.Column("discussion_pk", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("hidden_by_user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["discussion_pk"], ["discussions.pk"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["hidden_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("discussion_events", schema=None) as batch_op:
        batch_op.create_index("ix_discussion_events_discussion_pk", ["discussion_pk"], unique=False)
    op.create_table(
        "repo_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("repo_type", sa.String(length=16), nullable=False),
        sa.Column("repo_id", sa.String(length=200), nullable=False),
        sa.Column("namespace", sa.String(length=96), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("repo_events", schema=None) as batch_op:
        batch_op.create_index("ix_repo_events_namespace", ["namespace"], unique=False)
        batch_op.create_index("ix_repo_events_repo_pk", ["repo_pk"], unique=False)


def downgrade() -> None:
    op.drop_table("repo_events")
    op.drop_table("discussion_events")
    op.drop_table("discussions")
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.drop_column("discussions_seq")
        batch_op.drop_column("discussions_disabled")
