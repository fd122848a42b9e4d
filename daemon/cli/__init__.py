"""The `parcelwatch` command line: one Typer app, one module per group of commands."""

from __future__ import annotations

from daemon.cli.app import app, main

__all__ = ["app", "main"]
