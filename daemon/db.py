"""Opening the database, checking its schema version, and migrating it in place.

SQLite runs in WAL mode with foreign keys on and a busy timeout, so the CLI can read while the daemon
writes. Every command opens the database through `open_database`, which refuses an out-of-date schema
with a message that says how to fix it; only `parcelwatch db upgrade` migrates.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlmodel import Session

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).with_name("migrations")
# How each migration file names itself and its parent (the lines alembic's template writes).
_REVISION = re.compile(r'^revision = "([^"]+)"$', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision = (?:None|"([^"]+)")$', re.MULTILINE)


class SchemaError(Exception):
    """The database is missing, newer than this program, or needs `parcelwatch db upgrade`."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def make_engine(url: str) -> Engine:
    """An engine for the configured URL; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(_postgres_url(url), pool_pre_ping=True)


def _postgres_url(url: str) -> str:
    """`postgresql://` as written in a config, with the driver we install (psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        return str(
            parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        )
    return url


def open_read_only(url: str) -> Engine:
    """An engine on a current database that cannot write to it, for reading the seller's history.

    SQLite is opened with `mode=ro` (a missing file is an error rather than a new empty
    database, and no pragma is set, since each would be a write); PostgreSQL sessions start
    their transactions read-only. Raises SchemaError when the file is missing or the schema
    is not current.
    """
    parsed = make_url(url)
    where = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise SchemaError(f"{url}: not a database file")
        path = Path(parsed.database).expanduser().resolve()
        if not path.is_file():
            raise SchemaError(f"{path}: no such database file")
        uri = f"{path.as_uri()}?mode=ro"  # percent-encoded: any file name is safe in it
        engine = create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False),
        )
    else:
        engine = create_engine(
            _postgres_url(url),
            pool_pre_ping=True,
            connect_args={"options": "-c default_transaction_read_only=on"},
        )
    try:
        check_schema(engine, where)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def schema_status(engine: Engine) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the package ships at least one migration"
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaStatus(current=current, head=head)


def upgrade(engine: Engine) -> SchemaStatus:
    """Create or migrate the schema to the newest version, keeping the data."""
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return schema_status(engine)


def shipped_head() -> str | None:
    """The newest migration, read from the files' own revision lines; None if that is unclear.

    Every command checks the schema: this spares it importing alembic (a tenth of a second)
    when the database is current. Anything unexpected (a file without the two lines, a branch)
    answers None, and alembic decides.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        text = path.read_text(encoding="utf-8")
        revision = _REVISION.findall(text)
        down = _DOWN_REVISION.findall(text)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        if down[0]:
            parents.add(down[0])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: Engine) -> str | None:
    """The revision in alembic's version table, or None when there is no single one."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return str(rows[0][0]) if len(rows) == 1 else None


def check_schema(engine: Engine, where: str | None = None) -> None:
    """Raise SchemaError unless the schema is current; `where` names the database (default: its
    URL without the password)."""
    head = shipped_head()
    if head is not None and _stored_revision(engine) == head:
        return  # current: alembic is only needed to migrate or to say what is wrong
    from alembic.script import ScriptDirectory

    status = schema_status(engine)
    if status.up_to_date:
        return
    known = {
        rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }
    where = where or engine.url.render_as_string(hide_password=True)
    if status.current is None:
        raise SchemaError(f"{where} has no parcelwatch schema: run `parcelwatch db upgrade`")
    if status.current not in known:
        raise SchemaError(
            f"{where} is at schema {status.current}, newer than this parcelwatch knows: "
            "upgrade parcelwatch"
        )
    raise SchemaError(
        f"{where} is at schema {status.current}, this parcelwatch needs {status.head}: "
        "run `parcelwatch db upgrade`"
    )


def open_database(url: str) -> Engine:
    """An engine on a database whose schema is current, or SchemaError saying what to do."""
    engine = make_engine(url)
    try:
        check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back whole if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def rowcount(result: Any) -> int:
    """Rows an UPDATE or INSERT touched (the typed Result hides the cursor's count)."""
    return int(getattr(result, "rowcount", 0) or 0)
