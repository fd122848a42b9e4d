"""`daemon.parse_ahead`: a file read in a second process, its rows passed on as they come."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from daemon.importer import ImportFileError, parse_file
from daemon.parse_ahead import parse_ahead


def _csv(path: Path, rows: int, bad_every: int = 0) -> Path:
    lines = ["order_id,country,ship_date,tracking_numbers,email"]
    for i in range(rows):
        email = "not-an-address" if bad_every and i % bad_every == 0 else f"b{i}@example.com"
        lines.append(f"P-{i:05d},RU,2026-10-0{1 + i % 9},RR123456785CN,{email}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _readers() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "parcelwatch-reader"]


def test_rows_and_problems_are_those_of_reading_it_here(tmp_path: Path) -> None:
    path = _csv(tmp_path / "o.csv", 4321, bad_every=1000)
    here = parse_file(path)
    with parse_ahead(path) as reading:
        rows = list(reading.rows())
        parsed = reading.parsed
    assert rows == here.rows
    assert len(rows) == 4316
    assert parsed.errors == here.errors and len(parsed.errors) == 5
    assert (parsed.warnings, parsed.bad_lines, parsed.total) == (
        here.warnings, here.bad_lines, here.total,
    )  # fmt: skip
    assert parsed.rows == []  # the rows came through `rows`, once
    assert _readers() == []


def test_rows_come_while_the_rest_is_still_being_read(tmp_path: Path) -> None:
    path = _csv(tmp_path / "o.csv", 20_000)
    with parse_ahead(path) as reading:
        rows = reading.rows()
        first = next(rows)
        assert first.order_id == "P-00000"
        assert not reading.finished
        assert [p.is_alive() for p in _readers()] == [True]
        with pytest.raises(RuntimeError, match="not read to the end yet"):
            reading.parsed  # noqa: B018 - the property raises
        assert sum(1 for _ in rows) == 19_999
        assert reading.finished


def test_leaving_early_stops_the_reader(tmp_path: Path) -> None:
    path = _csv(tmp_path / "o.csv", 20_000)
    with pytest.raises(KeyError), parse_ahead(path) as reading:
        next(reading.rows())
        raise KeyError("the writer failed")
    assert _readers() == []


def test_a_reader_that_dies_is_an_error_not_a_short_file(tmp_path: Path) -> None:
    path = _csv(tmp_path / "o.csv", 20_000)
    with parse_ahead(path) as reading:
        rows = reading.rows()
        next(rows)
        (reader,) = _readers()
        assert reader.pid is not None
        os.kill(reader.pid, signal.SIGKILL)
        with pytest.raises(RuntimeError, match=r"o\.csv: the process reading the file stopped"):
            for _ in rows:
                pass


def test_what_the_reader_raises_is_raised_here(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("order_id,country,ship_date,tracking_numbers,emial\n")
    with parse_ahead(path) as reading, pytest.raises(ImportFileError, match="unknown column"):
        next(reading.rows())
    with pytest.raises(ImportFileError, match="cannot tell the format"):
        parse_ahead(tmp_path / "orders.xlsx").__enter__()
    assert _readers() == []
