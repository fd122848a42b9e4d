"""`parcelwatch demo`: a first look at parcelwatch in a throw-away workspace, no accounts needed."""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from daemon.cli.common import out
from daemon.config import load_config
from daemon.db import make_engine, upgrade
from daemon.importer import parse_file
from daemon.models import utcnow
from daemon.order_store import import_rows
from daemon.queries import status_summary

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent.parent / "config.toml"


def demo(
    workspace: Annotated[
        Path | None, typer.Option(help="Folder for the demo's database (default: a new temp dir).")
    ] = None,
) -> None:
    """Import the sample orders into a fresh SQLite database and show the status summary."""
    root = workspace or Path(tempfile.mkdtemp(prefix="parcelwatch-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / "config.toml"
    db = root / "parcelwatch.db"
    config_path.write_text(
        SHIPPED_CONFIG.read_text(encoding="utf-8").replace(
            "sqlite:///parcelwatch.db", f"sqlite:///{db}"
        ),
        encoding="utf-8",
    )
    config = load_config(config_path)
    engine = make_engine(config.daemon.database_url)
    upgrade(engine)
    sample = resources.files("daemon") / "samples" / "demo_orders.csv"
    with resources.as_file(sample) as path:
        parsed = parse_file(path)
    report = import_rows(engine, parsed.rows, utcnow())
    summary = status_summary(engine, config, utcnow())
    out.print(f"workspace: {root}", markup=False)
    out.print(f"imported {report.created} sample orders into {db}", markup=False)
    out.print(
        f"{summary.open_orders} open orders, {summary.open_shipments} open shipments", markup=False
    )
    for country, counts in summary.past_stage.items():
        stages = ", ".join(f"{k} {v}" for k, v in counts.items())
        out.print(f"  {country}: at or past {stages}", markup=False)
    out.print(f"try: parcelwatch --config {config_path} orders show AE-1001", markup=False)
    engine.dispose()
