"""An order's whole story: tracking history and everything said to the buyer, in time order.

This is the evidence a seller attaches to a dispute, so the HTML page is self-contained (no external
CSS, scripts or images) and every value from a buyer or a carrier is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jinja2 import Environment, select_autoescape

from daemon.models import OutreachState
from daemon.queries import OrderView


@dataclass(frozen=True)
class StoryItem:
    at: datetime
    what: str  # "tracking" or "outreach"
    title: str
    detail: str
    state: str = ""


def timeline(view: OrderView) -> list[StoryItem]:
    items: list[StoryItem] = []
    for shipment in view.shipments:
        for e in view.events.get(shipment.id or 0, []):
            where = f" — {e.location}" if e.location else ""
            items.append(
                StoryItem(
                    at=e.occurred_at,
                    what="tracking",
                    title=f"{shipment.tracking_number}: {e.status}",
                    detail=f"{e.description}{where} [{e.raw_code}]".strip(),
                )
            )
    for row in view.outreach:
        at = row.sent_at if row.state == OutreachState.SENT and row.sent_at else row.created_at
        detail = row.reason
        if row.subject:
            detail += f"\nSubject: {row.subject}"
        if row.body_text:
            detail += f"\n\n{row.body_text}"
        if row.decided_by:
            detail += f"\n({row.state} by {row.decided_by}"
            detail += f": {row.decision_note})" if row.decision_note else ")"
        items.append(
            StoryItem(at=at, what="outreach", title=f"{row.kind} ({row.channel or '-'})",
                      detail=detail, state=row.state)
        )  # fmt: skip
    items.sort(key=lambda item: (item.at, item.what))
    return items


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Order {{ order.order_id }}: shipment and message history</title>
<style>
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;
vertical-align:top;text-align:left}pre{white-space:pre-wrap;margin:0;font-family:inherit}
.tracking{color:#555}.outreach td:nth-child(2){font-weight:600}small{color:#666}
</style></head><body>
<h1>Order {{ order.order_id }}</h1>
<p>Buyer: {{ order.buyer_name or "-" }} &middot; destination {{ order.country }} &middot;
shipped {{ order.shipped_at.strftime("%Y-%m-%d") }} &middot; {{ order.product or "-" }}
&times; {{ order.quantity }} &middot; source {{ order.source }}</p>
<p>Tracking numbers: {% for s in shipments %}{{ s.tracking_number }}
{%- if s.status %} ({{ s.status }}){% endif %}{% if not loop.last %}, {% endif %}{% endfor %}</p>
<table><tr><th>When (UTC)</th><th>What</th><th>Detail</th></tr>
{% for item in items %}<tr class="{{ item.what }}"><td>{{ item.at.strftime("%Y-%m-%d %H:%M") }}</td>
<td>{{ item.title }}{% if item.state %}<br><small>{{ item.state }}</small>{% endif %}</td>
<td><pre>{{ item.detail }}</pre></td></tr>
{% endfor %}</table>
<p><small>Generated {{ generated.strftime("%Y-%m-%d %H:%M") }} UTC by parcelwatch.</small></p>
</body></html>
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_html(view: OrderView, generated: datetime) -> str:
    return _ENV.from_string(_PAGE).render(
        order=view.order, shipments=view.shipments, items=timeline(view), generated=generated
    )
