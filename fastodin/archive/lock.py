"""The archive writer's file lock: one writer per file, and a test for a live writer.

A :class:`~fastodin.archive.writer.Writer` holds an exclusive ``flock(2)`` lock on its file from
open to close (the kernel drops it when the writer's process dies, however it dies).  A second
writer fails at once with :class:`~fastodin.errors.ArchiveLockedError`; a reader never takes the
lock for longer than :func:`writer_alive` needs to probe it, so readers never block a writer.
``flock`` locks belong to an open file description: two writers in one process exclude each other
too.  Where ``fcntl`` is missing (Windows) there is no lock.  The protocol is in spec/archive.md
(section 6).

>>> import os, tempfile
>>> from fastodin.archive.writer import Writer
>>> path = os.path.join(tempfile.mkdtemp(), "live.fastpack.zst")
>>> w = Writer(path)
>>> writer_alive(path)
True
>>> w.close()
>>> writer_alive(path)
False
"""
from __future__ import annotations

import os
from typing import Union

from ..errors import ArchiveLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["lock_for_writing", "writer_alive", "replace_unless_live"]


def lock_for_writing(fd: int, path: str) -> None:
    """Take the writer's exclusive lock on open file ``fd`` without waiting; ArchiveLockedError if
    another writer holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ArchiveLockedError(path) from None


def writer_alive(path: Union[str, "os.PathLike[str]"]) -> bool:
    """True while a writer holds ``path`` open (a recording in progress, or a writer not closed
    yet); False once it closed or its process died.  Probes with a shared non-blocking lock that it
    drops at once.  OSError if ``path`` cannot be opened."""
    if fcntl is None:  # pragma: no cover - Windows
        return False
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def replace_unless_live(tmp: str, out: str) -> None:
    """``os.replace(tmp, out)``, refused with ArchiveLockedError while a writer holds ``out``: a
    finished temporary never takes the place of a recording in progress."""
    try:
        alive = os.path.exists(out) and writer_alive(out)
    except OSError:
        alive = False
    if alive:
        raise ArchiveLockedError(out)
    os.replace(tmp, out)
