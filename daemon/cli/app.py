"""The root `parcelwatch` app: global options and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from daemon.cli import (
    carrier_cmd,
    config_cmd,
    db_cmd,
    log_cmd,
    orders_cmd,
    preview_cmd,
    purge_cmd,
    run_cmd,
    sim_cmd,
    status_cmd,
)
from daemon.cli.common import State

app = typer.Typer(
    name="parcelwatch",
    help="Watches every parcel you shipped and writes to the buyer before the buyer gets angry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="config.toml to use (default: $PARCELWATCH_CONFIG, ./config.toml, "
            "/etc/parcelwatch/config.toml).",
        ),
    ] = None,
) -> None:
    ctx.obj = State(config_path=config)


app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.add_typer(orders_cmd.app, name="orders")
app.add_typer(log_cmd.app, name="log")
app.command("status")(status_cmd.status)
app.command("purge")(purge_cmd.purge)
app.command("demo")(sim_cmd.demo)
app.command("replay")(sim_cmd.replay)
app.command("run")(run_cmd.run)
app.command("preview")(preview_cmd.preview)
app.command("poll")(carrier_cmd.poll)
app.command("track")(carrier_cmd.track)
app.command("sandbox")(carrier_cmd.sandbox)


def main() -> None:
    app()
