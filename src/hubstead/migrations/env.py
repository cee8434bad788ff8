"""Alembic environment: runs migrations on the engine the caller hands over (see ``Database.migrate``)."""

from alembic import context

from hubstead.db import Base, make_engine
from hubstead.models import load_all_models

load_all_models()
target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
