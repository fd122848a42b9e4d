"""no second index on a parent key

The outreach log, the shipments and the tracking events each had an index on their parent's key
(order_pk, shipment_id) beside a unique constraint that starts with the same column and serves
every lookup by it. The second index only cost every insert: a decide pass writes hundreds of
thousands of log rows, a poll cycle as many events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_outreach_order_pk", table_name="outreach")
    op.drop_index("ix_shipments_order_pk", table_name="shipments")
    op.drop_index("ix_tracking_events_shipment_id", table_name="tracking_events")


def downgrade() -> None:
    op.create_index("ix_tracking_events_shipment_id", "tracking_events", ["shipment_id"])
    op.create_index("ix_shipments_order_pk", "shipments", ["order_pk"])
    op.create_index("ix_outreach_order_pk", "outreach", ["order_pk"])
