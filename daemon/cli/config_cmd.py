"""`parcelwatch config ...`: validate a config file without starting anything."""

from __future__ import annotations

import typer

from daemon.cli.common import EXIT_CONFIG, err, out, state
from daemon.config import ConfigError, load_config

app = typer.Typer(help="Check the configuration.", no_args_is_help=True)


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Validate config.toml and report every problem with its key path (exit 2 if any)."""
    path = state(ctx).resolved_path
    try:
        config = load_config(path)
    except ConfigError as exc:
        err.print(f"{path}: {len(exc.problems)} problem(s)", markup=False)
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    countries = sorted(config.policy.countries)
    out.print(
        f"{path}: valid ({len(countries)} countries configured: {', '.join(countries)}; "
        "others use policy.default)",
        markup=False,
    )
