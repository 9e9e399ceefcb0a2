"""The one exception hierarchy of fastodin.

Every error fastodin raises derives from :class:`FastOdinError`.  Errors about bad *data*
(a corrupt stream, a truncated record, a record over a limit) also derive from ``ValueError``
and carry where it happened: ``offset`` (byte offset in the input), ``length`` (bytes
involved), ``limit`` (the limit that was exceeded), ``record`` (how many good records came
before), ``channel`` (name or id) where known.

>>> try:
...     raise TruncatedError("record cut short", offset=16, length=8, record=1)
... except ValueError as e:
...     (e.offset, e.record)
(16, 1)
"""
from __future__ import annotations

import errno
from typing import Any, Optional

__all__ = [
    "FastOdinError",
    "DataError",
    "TruncatedError",
    "ExtraData",
    "LimitError",
    "MetadataError",
    "ChecksumError",
    "CorruptFrameError",
    "OdinError",
    "JPackError",
    "TimestampOrderError",
    "UsageError",
    "WriterError",
    "MissingDependency",
    "OutputExistsError",
    "ArchiveLockedError",
    "NotSeekableError",
    "FileChangedError",
    "SchemaMismatch",
]


class FastOdinError(Exception):
    """Base class of every fastodin error."""


class UsageError(FastOdinError, ValueError):
    """An API was called with arguments it cannot take (not a data problem)."""


class DataError(FastOdinError, ValueError):
    """Bad input data.  Carries ``offset``, ``length``, ``limit``, ``record`` and ``channel``."""

    def __init__(
        self,
        message: str,
        *,
        offset: Optional[int] = None,
        length: Optional[int] = None,
        limit: Optional[int] = None,
        record: Optional[int] = None,
        channel: Any = None,
    ) -> None:
        super().__init__(message)
        self.offset = offset
        self.length = length
        self.limit = limit
        self.record = record
        self.channel = channel


class TruncatedError(DataError):
    """The input ends inside a record (or frame, or packet)."""


class ExtraData(TruncatedError):
    """One-shot decoding: bytes remain after the last complete record (a cut record or garbage).

    ``unpacked`` holds the records decoded before them, ``extra`` the bytes themselves
    (as msgpack's ``ExtraData`` does).
    """

    def __init__(self, message: str, *, unpacked: Any = None, extra: bytes = b"", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.unpacked = unpacked
        self.extra = extra


class LimitError(DataError):
    """A size in the input exceeds a configured limit (named in the message)."""


class MetadataError(DataError):
    """An id-0 metadata payload is neither JSON nor MessagePack."""


class ChecksumError(DataError):
    """A checksum (CRC, zstd content checksum) does not match."""


class CorruptFrameError(DataError):
    """An archive frame cannot be decompressed or parsed."""


class OdinError(DataError):
    """A malformed ODIN packet, definition or link frame."""


class JPackError(DataError):
    """A ``.jpack`` file (the Perl tools' browser chunk format) or JPack tree that cannot be read.

    The message is ``"<file>: <reason>"``; ``file`` names the ``.jpack`` file (for a missing one, the
    path it should have), ``reason`` says what is wrong, ``offset`` is the byte offset in that file
    where it is, when known.

    >>> str(JPackError("bad base64", file="d/0.jpack", offset=7))
    'd/0.jpack: bad base64'
    """

    def __init__(self, reason: str, *, file: str, **kw: Any) -> None:
        super().__init__(f"{file}: {reason}", **kw)
        self.file = file
        self.reason = reason


class TimestampOrderError(FastOdinError, ValueError):
    """A record is older than the last flush (VRS's TimestampOrderWriteException)."""


class NotSeekableError(FastOdinError, OSError):
    """The path is not a regular file -- a FIFO, device, socket, directory, or a pseudo-file whose
    size says nothing (``/proc``, ``/sys``): reading an archive or FastPack file needs random
    access.  An ``OSError`` (``errno`` ESPIPE, EISDIR for a directory) with ``filename``.

    >>> e = NotSeekableError("/tmp/p: is a FIFO", filename="/tmp/p")
    >>> isinstance(e, OSError), e.filename, str(e)
    (True, '/tmp/p', '/tmp/p: is a FIFO')
    """

    def __init__(self, message: str, *, filename: Any = None, errno: int = errno.ESPIPE) -> None:
        OSError.__init__(self, errno, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message


class WriterError(FastOdinError):
    """An archive writer cannot go on: its background thread failed (``records_lost``: records it had
    accepted and did not write; the file is left marked as failed, see spec/archive.md section 6), or
    it cannot take its file (subclasses).  ``path``: the archive.
    """

    def __init__(self, message: str, *, path: Optional[str] = None, records_lost: Optional[int] = None) -> None:
        super().__init__(message)
        self.path = path
        self.records_lost = records_lost


class OutputExistsError(WriterError, FileExistsError):
    """The output file exists and the writer was not told to replace it (``overwrite=True``, ``--force``).

    Also a ``FileExistsError`` (``errno``, ``strerror``, ``filename`` set).

    >>> e = OutputExistsError("/d/a.fastpack.zst")
    >>> isinstance(e, FileExistsError), e.path
    (True, '/d/a.fastpack.zst')
    """

    def __init__(self, path: str) -> None:
        FileExistsError.__init__(self, errno.EEXIST, "exists (pass overwrite=True, or --force, to replace it)", path)
        self.path = path
        self.records_lost = None

    def __str__(self) -> str:
        return f"{self.path} {self.strerror}"


class ArchiveLockedError(WriterError, BlockingIOError):
    """Another writer holds the file's lock: it is being written right now (spec/archive.md, section 6).

    Also a ``BlockingIOError`` (``errno`` EWOULDBLOCK, ``filename`` set).
    """

    def __init__(self, path: str) -> None:
        BlockingIOError.__init__(self, errno.EWOULDBLOCK, "is being written by another writer (it holds the "
                                 "file's lock); two writers on one file would corrupt it", path)
        self.path = path
        self.records_lost = None

    def __str__(self) -> str:
        return f"{self.path} {self.strerror}"


class MissingDependency(FastOdinError, ImportError):
    """An optional package is needed (``package``) and missing: ``pip install 'fastodin[extra]'``
    (the command line exits 4)."""

    def __init__(self, message: str, *, package: str = "", extra: str = "") -> None:
        super().__init__(message)
        self.package = package
        self.extra = extra


class FileChangedError(DataError):
    """A file changed after a dataset catalogued it, or while a partition read it: the partition
    fails rather than give a wrong answer.  ``path`` names the file.

    >>> FileChangedError("x.zst: size 10 -> 12", path="x.zst").path
    'x.zst'
    """

    def __init__(self, message: str, *, path: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.path = path


class SchemaMismatch(DataError):
    """The files of a dataset hold one channel with different columns (layouts, ODIN set
    definitions): they cannot be one table.  ``channel``; ``schemas``: each distinct schema (text)
    -> the files that have it.

    >>> SchemaMismatch("differ", channel="imu", schemas={"a:<f8": ["x.zst"]}).schemas["a:<f8"]
    ['x.zst']
    """

    def __init__(self, message: str, *, channel: Any = None, schemas: Any = None) -> None:
        super().__init__(message, channel=channel)
        self.schemas = dict(schemas or {})
