"""storage buckets: buckets, their files (path → Xet file hash), the xorbs and files their Xet tokens uploaded

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 17:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "buckets",
        sa.Column("pk", sa.Integer(), primary_key=True),
        sa.Column("namespace", sa.String(length=96), nullable=False),
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("id_key", sa.String(length=200), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("id_key"),
    )
    op.create_index("ix_buckets_namespace", "buckets", ["namespace"])
    op.create_table(
        "bucket_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bucket_pk", sa.Integer(), sa.ForeignKey("buckets.pk", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("xet_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("bucket_pk", "path"),
    )
    op.create_index("ix_bucket_files_bucket_hash", "bucket_files", ["bucket_pk", "xet_hash"])
    op.create_table(
        "bucket_xorbs",
        sa.Column("bucket_pk", sa.Integer(), sa.ForeignKey("buckets.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("xorb_hash", sa.String(length=64), primary_key=True),
    )
    op.create_index("ix_bucket_xorbs_xorb_hash", "bucket_xorbs", ["xorb_hash"])
    op.create_table(
        "bucket_uploads",
        sa.Column("bucket_pk", sa.Integer(), sa.ForeignKey("buckets.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("file_hash", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bucket_uploads")
    op.drop_index("ix_bucket_xorbs_xorb_hash", table_name="bucket_xorbs")
    op.drop_table("bucket_xorbs")
    op.drop_index("ix_bucket_files_bucket_hash", table_name="bucket_files")
    op.drop_table("bucket_files")
    op.drop_index("ix_buckets_namespace", table_name="buckets")
    op.drop_table("buckets")
