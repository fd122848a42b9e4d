"""what the buyer reads is decided once

The outreach row carries what the policy decided the buyer reads (situation, next update,
protection end, expected date) and what staff chose to offer (remedies); the order carries what
the buyer paid. The send job renders these and derives none of them again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import daemon.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("value", daemon.models.DecimalText(), nullable=True))
        batch.add_column(
            sa.Column(
                "currency",
                sqlmodel.sql.sqltypes.AutoString(length=3),
                nullable=False,
                server_default="",
            )
        )
    with op.batch_alter_table("outreach") as batch:
        batch.add_column(
            sa.Column(
                "situation",
                sqlmodel.sql.sqltypes.AutoString(length=32),
                nullable=False,
                server_default="",
            )
        )
        for name in ("next_update_at", "protection_until", "expected_by"):
            batch.add_column(
                sa.Column(name, daemon.models.UTCDateTime(timezone=True), nullable=True)
            )
        batch.add_column(sa.Column("remedies", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("outreach") as batch:
        for name in ("remedies", "expected_by", "protection_until", "next_update_at", "situation"):
            batch.drop_column(name)
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("currency")
        batch.drop_column("value")
