"""collections and their items

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 04:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("namespace", sa.String(length=96), nullable=False),
        sa.Column("namespace_key", sa.String(length=96), nullable=False),
        sa.Column("title", sa.String(length=60), nullable=False),
        sa.Column("title_key", sa.String(length=60), nullable=False),
        sa.Column("description", sa.String(length=150), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("theme", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("upvotes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("namespace_key", "title_key"),
    )
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.create_index("ix_collections_namespace_key", ["namespace_key"], unique=False)
        batch_op.create_index("ix_collections_updated_at", ["updated_at"], unique=False)
    op.create_table(
        "collection_items",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=24), nullable=False),
        sa.Column("collection_pk", sa.Integer(), nullable=False),
        sa.Column("item_type", sa.String(length=16), nullable=False),
        sa.Column("repo_pk", sa.Integer(), nullable=True),
        sa.Column("item_collection_pk", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["collection_pk"], ["collections.pk"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_collection_pk"], ["collections.pk"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("public_id"),
        sa.UniqueConstraint("collection_pk", "repo_pk"),
        sa.UniqueConstraint("collection_pk", "item_collection_pk"),
    )
    with op.batch_alter_table("collection_items", schema=None) as batch_op:
        batch_op.create_index("ix_collection_items_collection_pk", ["collection_pk"], unique=False)
        batch_op.create_index("ix_collection_items_repo_pk", ["repo_pk"], unique=False)
        batch_op.create_index("ix_collection_items_item_collection_pk", ["item_collection_pk"], unique=False)


def downgrade() -> None:
    op.drop_table("collection_items")
    op.drop_table("collections")
