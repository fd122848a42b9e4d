"""Shared fixtures: a workspace with its own config.toml and SQLite file, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from daemon.cli import app

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "config.toml"
PG_URL = os.environ.get("PARCELWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Workspace:
    """A folder with a config.toml pointing at a SQLite file inside it; commands run through the CLI."""

    root: Path
    config: Path
    database_url: str

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(app, ["--config", str(self.config), *args], env=env)

    def write_config(self, text: str) -> None:
        self.config.write_text(text, encoding="utf-8")

    def shipped_config_text(self) -> str:
        return SHIPPED_CONFIG.read_text(encoding="utf-8").replace(
            'database_url = "sqlite:///parcelwatch.db"', f'database_url = "{self.database_url}"'
        )


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    url = f"sqlite:///{tmp_path / 'parcelwatch.db'}"
    ws = Workspace(tmp_path, tmp_path / "config.toml", url)
    ws.write_config(ws.shipped_config_text())
    return ws


@pytest.fixture
def upgraded(workspace: Workspace) -> Workspace:
    result = workspace.run("db", "upgrade")
    assert result.exit_code == 0, result.output
    return workspace


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the local PostgreSQL server, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    schema = f"pw_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sqlalchemy.exc.OperationalError as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def copy_fixture(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copy(REPO / "tests" / "fixtures" / name, target)
    return target


FIGURES: list[str] = []


@pytest.fixture
def figures() -> list[str]:
    """Lines a test wants printed at the end of the run (measured figures, not assertions)."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
