"""A space's runtime state and its settings (variables and secrets), kept in the database.

The database is the truth every hub process reads (``get_space_runtime``, the pages, the proxy's lookup); the
supervisor (``spaces.supervisor``) is the one writer of the stage while it builds and runs the space.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hubstead.db import Base, UTCDateTime, utcnow


class SpaceRuntime(Base):
    """One row per space repo.

    ``stage`` is the Hub's (BUILDING, APP_STARTING, RUNNING, BUILD_ERROR, RUNTIME_ERROR, PAUSED, SLEEPING,
    NO_APP_FILE, CONFIG_ERROR, STOPPED); ``error`` says why in words for an error stage. ``wanted_sha`` is the
    commit the space should run (main's head), ``running_sha`` the one it runs; ``generation`` grows with every
    restart request, so the supervisor notices a request made from any process. ``last_request_at`` is the last
    visit through the proxy (sleep is counted from it)."""

    __tablename__ = "space_runtimes"

    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(24), nullable=False, default="BUILDING")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    subdomain: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    hardware: Mapped[str] = mapped_column(String(32), nullable=False, default="cpu-basic")
    requested_hardware: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sleep_time: Mapped[int | None] = mapped_column(Integer, nullable=True)  # seconds; -1 never; None default
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    wanted_sha: Mapped[str | None] = mapped_column(String(40), nullable=True)
    running_sha: Mapped[str | None] = mapped_column(String(40), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    factory_generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    built_factory: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # the factory rebuild done
    env_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where the running app listens: 127.0.0.1 (the local backend) or a Ray node's address on the cluster's
    # network; None (a row from before the column) is this host's loopback.
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_request_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    stage_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class SpaceSetting(Base):
    """A variable (value readable by writers) or a secret (value encrypted at rest, never shown back)."""

    __tablename__ = "space_settings"
    __table_args__ = (UniqueConstraint("repo_pk", "kind", "key", name="uq_space_settings_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # "variable" | "secret"
    key: Mapped[str] = mapped_column(String(128), nullable=False)
    value: Mapped[str] = mapped_column(Text, nullable=False)  # a secret's is a Fernet token
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
