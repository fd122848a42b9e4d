"""Inserting, updating or reading many rows at once through the driver (import, poll and decide jobs).

Core's executemany spends most of a large write building and type-processing a parameter dict per
row. Here every value goes through the same bind processor Core would use (so what is stored, e.g.
SQLite's datetime text, is identical), but each distinct value of a column is processed once:
timestamps, ship dates and statuses repeat across thousands of rows. Columns not given get their
model's scalar default (NULL without one), as Core would fill them in. Those, and values the caller
says are the same for every row, are written into the statement as SQL literals when their bound
form is plain text, a whole number or NULL: binding them on every row was a third of SQLite's own
work in a large import, and the database stores exactly what it stores for the bound value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect


class BulkInsert:
    """One INSERT statement for `table` taking rows as tuples of the `given` columns.

    A None in `given` is a position of the rows that is not stored (rows can be NamedTuples
    carrying more than the table's columns, with no tuple built per row to leave them out).

    `same` names columns that take one value for every row of a run (an import's "now"); `run`
    gets those values once.
    """

    def __init__(
        self,
        dialect: Dialect,
        table: Table,
        given: Sequence[str | None],
        ignore_conflict: Sequence[str],
        same: Sequence[str] = (),
    ) -> None:
        quote = dialect.identifier_preparer.quote
        columns = [c for c in table.columns if not c.primary_key]
        stored = [name for name in given if name is not None]
        unknown = {*stored, *same} - {c.name for c in columns}
        assert not unknown, f"not columns of {table.name}: {unknown}"
        assert not set(stored) & set(same), "a column is given per row or the same for all rows"
        assert stored, "at least one column varies per row (rows are counted by their values)"
        self._dialect = dialect
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"
        position = {name: i for i, name in enumerate(given) if name is not None}
        same_position = {name: i for i, name in enumerate(same)}
        # Per column: (index in `given` or -1, index in `same` or -1, bind processor, default).
        self._plan: list[tuple[int, int, Callable[[Any], Any] | None, Any]] = []
        for column in columns:
            default = None
            given_here = column.name in position or column.name in same_position
            if not given_here and column.default is not None:
                assert column.default.is_scalar, f"{column.name}: only scalar defaults"
                default = column.default.arg  # type: ignore[attr-defined]
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            self._plan.append(
                (
                    position.get(column.name, -1),
                    same_position.get(column.name, -1),
                    processor,
                    default,
                )
            )
        self._head = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(quote(c.name) for c in columns)}) VALUES ("
        )
        self._tail = ")"
        if ignore_conflict:  # the same words on SQLite (3.24+) and PostgreSQL
            self._tail += f" ON CONFLICT ({', '.join(map(quote, ignore_conflict))}) DO NOTHING"

    def run(
        self, connection: Connection, rows: Sequence[Sequence[Any]], same: Sequence[Any] = ()
    ) -> None:
        """Insert `rows` (tuples in the order of `given`) in the connection's transaction.

        `same` holds the values of the `same` columns, in that order.
        """
        if not rows:
            return
        marks: list[str] = []
        columns: list[Sequence[Any]] = []
        for source, same_source, processor, default in self._plan:
            if source >= 0:
                marks.append(self._mark)
                columns.append(_processed([row[source] for row in rows], processor))
                continue
            value = same[same_source] if same_source >= 0 else default
            bound = processor(value) if processor is not None and value is not None else value
            literal = _literal(bound, self._dialect)
            if literal is None:  # e.g. a datetime the driver adapts itself: bound on every row
                marks.append(self._mark)
                columns.append([bound] * len(rows))
            else:
                marks.append(literal)
        sql = self._head + ", ".join(marks) + self._tail
        connection.exec_driver_sql(sql, list(zip(*columns, strict=True)))


class BulkUpdate:
    """`UPDATE table SET <columns> WHERE <key> = ...` taking rows as tuples (new values, then key).

    `also` is one more condition, as SQL without parameters (e.g. an EXISTS on another table).
    """

    def __init__(
        self,
        dialect: Dialect,
        table: Table,
        columns: Sequence[str],
        key: Sequence[str],
        also: str = "",
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
        if also:
            self.sql += f" AND {also}"

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

    def run_one(self, connection: Connection, row: Sequence[Any]) -> int:
        """Apply one row (no executemany); returns 1 if it changed a row, else 0."""
        bound = tuple(
            value if processor is None or value is None else processor(value)
            for value, processor in zip(row, self._processors, strict=True)
        )
        return int(connection.exec_driver_sql(self.sql, bound).rowcount or 0)


class BulkSelect:
    """`SELECT columns FROM table WHERE ...` through the driver, with `?` in `where` for each
    parameter and `(?)` for a list of them (an IN list).

    Each value comes back converted by the result processor Core would use (so a time is the
    same aware UTC datetime), but each distinct value of a column is converted once: a chunk's
    times repeat, and Core's per-row processing was a large part of reading it.
    """

    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str], where: str) -> None:
        quote = dialect.identifier_preparer.quote
        self._dialect = dialect
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._sql = (
            f"SELECT {', '.join(quote(name) for name in columns)} "
            f"FROM {dialect.identifier_preparer.format_table(table)} WHERE {where}"
        )
        self._in_list = "(?)" in where
        self._table = table
        self._processors = [
            table.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
            for name in columns
        ]

    def bind(self, column: str, value: Any) -> Any:
        """`value` as the driver gets it for a parameter compared with `column`."""
        dialect_type = self._table.c[column].type.dialect_impl(self._dialect)
        processor = dialect_type.bind_processor(self._dialect)
        return value if processor is None else processor(value)

    def run(self, connection: Connection, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows for `params` (the IN list's values when `where` has one)."""
        sql = self._sql
        if self._in_list:
            if not params:
                return []
            sql = sql.replace("(?)", f"({', '.join([self._mark] * len(params))})")
        sql = sql.replace("?", self._mark)
        # The DBAPI cursor of the connection (same transaction): a Result would wrap every row.
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if not rows:
            return []
        columns = [
            _processed(values, processor)
            for values, processor in zip(zip(*rows, strict=True), self._processors, strict=True)
        ]
        return list(zip(*columns, strict=True))


@lru_cache(maxsize=64)
def bulk_update(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: tuple[str, ...], also: str = ""
) -> BulkUpdate:
    """The statement for this dialect, table, columns, key and extra condition, built once."""
    return BulkUpdate(dialect, table, columns, key, also)


@lru_cache(maxsize=32)
def bulk_insert(
    dialect: Dialect,
    table: Table,
    given: tuple[str | None, ...],
    ignore_conflict: tuple[str, ...] = (),
    same: tuple[str, ...] = (),
) -> BulkInsert:
    """The statement for this dialect, table and columns, built once."""
    return BulkInsert(dialect, table, given, ignore_conflict, same)


def _processed(values: Sequence[Any], processor: Callable[[Any], Any] | None) -> Sequence[Any]:
    """Values through a bind or result processor; each distinct one is processed once."""
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


def _literal(value: Any, dialect: Dialect) -> str | None:
    """`value` (as the driver would get it) as an SQL literal, or None to keep it bound.

    Only plain values: NULL, booleans, whole numbers and text without NUL; the database converts a
    literal of these exactly as it converts the same value bound.
    """
    if value is None:
        return "NULL"
    kind = type(value)
    if kind is bool:
        return "TRUE" if value else "FALSE"
    if kind is int:
        return str(value)
    if kind is str and "\x00" not in value:
        text: str = "'" + value.replace("'", "''") + "'"
        if dialect.paramstyle in ("format", "pyformat"):
            text = text.replace("%", "%%")  # the driver reads % as the start of a mark
        return text
    return None
