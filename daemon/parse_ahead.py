"""Reading an order file in a second process while this one stores the rows already read.

Checking a large file row by row and storing it are each mostly work on one core: side by side,
an import takes about as long as the longer of the two instead of both together (a 100,000-row
CSV: 2 s of checking and 3 s of storing). The reader is forked, not spawned: it needs only the
importer, already loaded here, where a fresh interpreter would spend much of the time saved on
importing it again. It is meant for the command-line import, a process with one thread (forking
a process with several can copy a lock that another thread held).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

from daemon.importer import OrderRow, ParsedFile, detect_format, in_batches, parse_rows

# Rows per message: large enough that pickling stays cheap, small enough that storing starts
# at once and the reader is never far ahead (a full pipe holds it until the writer reads).
_BATCH = 1000


class FileReading:
    """The rows of a file being read in the reader process, and afterwards its problems."""

    def __init__(self, path: Path, receiver: Connection) -> None:
        self.path = path
        self._receiver = receiver
        self._parsed: ParsedFile | None = None

    @property
    def parsed(self) -> ParsedFile:
        """The file's problems and row count (without its rows), once `rows` has run out."""
        if self._parsed is None:
            raise RuntimeError(f"{self.path}: not read to the end yet")
        return self._parsed

    @property
    def finished(self) -> bool:
        """Whether every row and the problems have come through."""
        return self._parsed is not None

    def rows(self) -> Iterator[OrderRow]:
        """Each valid row, in file order, as the reader passes it on. Raises what the reader
        raised (`ImportFileError` for a file that cannot be read)."""
        while True:
            try:
                message = self._receiver.recv()
            except EOFError:
                raise RuntimeError(
                    f"{self.path}: the process reading the file stopped before the end"
                ) from None
            if isinstance(message, list):
                yield from message
            elif isinstance(message, ParsedFile):
                self._parsed = message
                return
            else:
                raise message


@contextmanager
def parse_ahead(path: Path, fmt: str | None = None) -> Iterator[FileReading]:
    """Start reading and checking `path` in a forked process; the reader is stopped when the
    block ends, whether or not its rows were all taken."""
    fmt = detect_format(path, fmt)  # an unknown format is an error before anything starts
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    reader = context.Process(target=_read, args=(sender, path, fmt), name="parcelwatch-reader")
    reader.start()
    sender.close()  # the reader's end: EOF here once the reader is gone
    reading = FileReading(path, receiver)
    try:
        yield reading
    finally:
        if not reading.finished:
            # Stopped early (a database error, Ctrl-C): what the reader has left is not needed.
            # Stopped before the pipe closes, or it would fail writing to it and say so.
            reader.terminate()
        reader.join()
        receiver.close()


def _read(sender: Connection, path: Path, fmt: str) -> None:
    """The reader process: the file's valid rows in batches, then its problems, or an error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the writer's to handle
    parsed = ParsedFile(path)
    try:
        for batch in in_batches(parse_rows(path, fmt, parsed), _BATCH):
            sender.send(batch)
        sender.send(parsed)
    except Exception as exc:  # passed on whole, to be raised in the writer
        sender.send(exc)
    finally:
        sender.close()
