"""`parcelwatch db ...`: create or migrate the schema in place."""

from __future__ import annotations

import typer

from daemon.cli.common import out, state
from daemon.db import make_engine, schema_status, upgrade

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd(ctx: typer.Context) -> None:
    """Create the schema, or migrate it to this version keeping every row."""
    engine = make_engine(state(ctx).config().daemon.database_url)
    before = schema_status(engine).current
    after = upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before == after.current:
        out.print(f"{where}: schema already at {after.current}", markup=False)
    else:
        out.print(f"{where}: schema {before or '(empty)'} -> {after.current}", markup=False)
    engine.dispose()
