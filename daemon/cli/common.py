"""What every command needs: the config, the database, and consistent error exits."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine

from daemon.config import Config, ConfigError, find_config, load_config
from daemon.db import SchemaError, open_database

# Exit codes a script can act on.
EXIT_INVALID_INPUT = 1
EXIT_CONFIG = 2
EXIT_SCHEMA = 3
EXIT_NOT_FOUND = 4

# The config.toml shipped in the checkout: every default (the demo and sandbox start from it).
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent.parent / "config.toml"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class State:
    config_path: Path | None
    _config: Config | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def resolved_path(self) -> Path:
        return find_config(self.config_path)

    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.resolved_path)
            except ConfigError as exc:
                fail(str(exc), EXIT_CONFIG)
        return self._config

    def engine(self) -> Engine:
        """The database named in the config, refusing an out-of-date schema."""
        if self._engine is None:
            try:
                self._engine = open_database(self.config().daemon.database_url)
            except SchemaError as exc:
                fail(str(exc), EXIT_SCHEMA)
        return self._engine


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
