"""Inserting or updating many rows at once through the driver's executemany (import, poll job).

Core's executemany spends most of a large write building and type-processing a parameter dict per
row. Here every value goes through the same bind processor Core would use (so what is stored, e.g.
SQLite's datetime text, is identical), but each distinct value of a column is processed once:
timestamps, ship dates and statuses repeat across thousands of rows. Columns not given get their
model's scalar default, as Core would fill them in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect


class BulkInsert:
    """One INSERT statement for `table` taking rows as tuples of the `given` columns."""

    def __init__(
        self, dialect: Dialect, table: Table, given: Sequence[str], ignore_conflict: Sequence[str]
    ) -> None:
        quote = dialect.identifier_preparer.quote
        columns = [c for c in table.columns if not c.primary_key]
        unknown = set(given) - {c.name for c in columns}
        assert not unknown, f"not columns of {table.name}: {unknown}"
        position = {name: i for i, name in enumerate(given)}
        self._plan: list[tuple[int, Any, Callable[[Any], Any] | None]] = []
        for column in columns:  # (index in `given` or -1, default, bind processor)
            default = None
            if column.name not in position and column.default is not None:
                assert column.default.is_scalar, f"{column.name}: only scalar defaults are filled"
                default = column.default.arg  # type: ignore[attr-defined]
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            self._plan.append((position.get(column.name, -1), default, processor))
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.sql = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(quote(c.name) for c in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})"
        )
        if ignore_conflict:  # the same words on SQLite (3.24+) and PostgreSQL
            self.sql += f" ON CONFLICT ({', '.join(map(quote, ignore_conflict))}) DO NOTHING"

    def run(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert `rows` (tuples in the order of `given`) in the connection's transaction."""
        if not rows:
            return
        columns: list[Sequence[Any]] = []
        for source, default, processor in self._plan:
            if source < 0:
                columns.append(_processed([default], processor) * len(rows))
            else:
                columns.append(_processed([row[source] for row in rows], processor))
        connection.exec_driver_sql(self.sql, list(zip(*columns, strict=True)))


class BulkUpdate:
    """`UPDATE table SET <columns> WHERE <key> = ...` taking rows as tuples (new values, then key)."""

    def __init__(
        self, dialect: Dialect, table: Table, columns: Sequence[str], key: Sequence[str]
    ) -> None:
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._processors = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in (*columns, *key)
        ]
        self.sql = (
            f"UPDATE {dialect.identifier_preparer.format_table(table)} "
            f"SET {', '.join(f'{quote(name)} = {mark}' for name in columns)} "
            f"WHERE {' AND '.join(f'{quote(name)} = {mark}' for name in key)}"
        )

    def run(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Apply every row; returns the rows changed as the driver counts them."""
        if not rows:
            return 0
        values = [
            _processed([row[i] for row in rows], processor)
            for i, processor in enumerate(self._processors)
        ]
        result = connection.exec_driver_sql(self.sql, list(zip(*values, strict=True)))
        return int(result.rowcount or 0)


@lru_cache(maxsize=32)
def bulk_update(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: tuple[str, ...]
) -> BulkUpdate:
    """The statement for this dialect, table, columns and key, built once."""
    return BulkUpdate(dialect, table, columns, key)


@lru_cache(maxsize=32)
def bulk_insert(
    dialect: Dialect, table: Table, given: tuple[str, ...], ignore_conflict: tuple[str, ...] = ()
) -> BulkInsert:
    """The statement for this dialect, table and columns, built once."""
    return BulkInsert(dialect, table, given, ignore_conflict)


def _processed(values: list[Any], processor: Callable[[Any], Any] | None) -> list[Any]:
    """Values as the driver gets them; each distinct one is processed once."""
    if processor is None:
        return values
    memo: dict[Any, Any] = {None: None}
    out = []
    for value in values:
        try:
            out.append(memo[value])
        except KeyError:
            memo[value] = bound = processor(value)
            out.append(bound)
        except TypeError:  # unhashable
            out.append(processor(value))
    return out
