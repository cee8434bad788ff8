"""repos: listing indexes (repo type first, then each sort key) so a sorted, limited listing walks an index in
order and stops after the page, instead of reading every repo of the type and sorting them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 02:20:00.000000
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_repos_type_pk": ["repo_type", "pk"],
    "ix_repos_type_downloads_30d": ["repo_type", "downloads_30d"],
    "ix_repos_type_trending_score": ["repo_type", "trending_score"],
    "ix_repos_type_likes": ["repo_type", "likes"],
    "ix_repos_type_last_modified": ["repo_type", "last_modified"],
    "ix_repos_type_created_at": ["repo_type", "created_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "repos", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="repos")
