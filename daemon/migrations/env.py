"""Alembic environment: runs migrations on the connection `daemon.db` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import daemon.models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise SystemExit("run migrations with `parcelwatch db upgrade`")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
