"""Writing JPack trees: a FastPack stream cut into ``.jpack`` files exactly as fastpack-split cuts it.

>>> import os, tempfile, fastodin
>>> d = tempfile.mkdtemp()
>>> src = os.path.join(d, "s.fastpack")
>>> _ = open(src, "wb").write(fastodin.encode([(i * 0.1, "x", b"abc") for i in range(5)], namespace=True))
>>> rep = write_tree(src, os.path.join(d, "out"), message_limit=2)
>>> rep.records, [os.path.basename(f)[-7:] for f in rep.files]
(6, ['0.jpack', '1.jpack'])
"""
from __future__ import annotations

import binascii
import errno
import os
import shutil
import tempfile
import zlib
from typing import IO, Any, Iterator, List, Optional, Union

import numpy as np

from ..columns import scan
from ..errors import DataError, UsageError
from ._format import (
    DEFAULT_BYTE_LIMIT,
    DEFAULT_MESSAGE_LIMIT,
    FOOTER,
    PREFIX,
    container_of,
    dir_name,
    file_name,
    header,
    parse_name,
)

__all__ = ["write_tree", "WriteReport", "Cutter"]

_B64_PIECE = 3 << 20          # raw bytes per base64 call (keeps the text piece at 4 MiB)
_MAX_RECORD = 1 << 40         # the source's reader has checked its own limit; scan only re-parses
#: mask of the pad bytes in the last 8-byte word of a record, by pad length
_PAD_MASK = np.array([0] + [((1 << 64) - 1) ^ ((1 << (8 * (8 - p))) - 1) for p in range(1, 8)], np.uint64)


class WriteReport:
    """What :func:`write_tree` wrote: ``tree`` (``ROOT/data/jpack``), ``set_index``, ``files``
    (paths of the ``.jpack`` files in order), ``records`` (FastPack messages, definitions and
    metadata included), ``stream_bytes`` (FastPack bytes), ``bytes_written`` (size of the files),
    ``compression``."""

    __slots__ = ("tree", "set_index", "files", "records", "stream_bytes", "bytes_written", "compression")

    def __init__(self, tree: str, set_index: int, compression: str) -> None:
        self.tree = tree
        self.set_index = set_index
        self.files: List[str] = []
        self.records = 0
        self.stream_bytes = 0
        self.bytes_written = 0
        self.compression = compression

    def __repr__(self) -> str:
        return (f"WriteReport(tree={self.tree!r}, set_index={self.set_index}, files={len(self.files)}, "
                f"records={self.records}, compression={self.compression!r})")


class Cutter:
    """fastpack-split's cut rule, applied to batches of record sizes as they come.

    A message goes into the open file when ``bytes_so_far + its_size < byte_limit`` and
    ``messages_so_far <= message_limit`` (a 0 limit is no limit); otherwise it opens a new file.
    So a file holds at most ``message_limit + 1`` messages, and fewer than ``byte_limit`` bytes
    unless one message alone reaches it.  The first message always opens a file.

    >>> c = Cutter(message_limit=2, byte_limit=0)
    >>> c.split(np.array([16] * 4)), c.split(np.array([16] * 4))
    ([0, 3], [2])
    """

    __slots__ = ("message_limit", "byte_limit", "count", "bytes", "open")

    def __init__(self, message_limit: int, byte_limit: int) -> None:
        self.message_limit = message_limit
        self.byte_limit = byte_limit
        self.count = 0
        self.bytes = 0
        self.open = False

    def split(self, sizes: np.ndarray) -> List[int]:
        """Indexes into ``sizes`` (bytes of each record of the batch) of the records that open a new file."""
        n = int(sizes.shape[0])
        cum = np.cumsum(sizes, dtype=np.int64)
        starts: List[int] = []
        j = 0
        while j < n:
            if not self.open:
                starts.append(j)
                self.open = True
                self.count, self.bytes = 1, int(sizes[j])
                j += 1
                continue
            before = int(cum[j - 1]) if j else 0
            e = n
            if self.byte_limit:
                # first k >= j with bytes + (cum[k] - before) >= byte_limit
                e = max(j, int(np.searchsorted(cum, self.byte_limit - self.bytes + before, side="left")))
            if self.message_limit:
                e = min(e, j + self.message_limit - self.count + 1)
            e = min(e, n)
            if e > j:
                self.count += e - j
                self.bytes += int(cum[e - 1]) - before
            if e < n:
                self.open = False
            j = e
        return starts


class _Body:
    """The base64 data string of one ``.jpack`` file, written as the FastPack bytes arrive
    (raw deflate first when compressing): base64 of the whole content, no line breaks."""

    __slots__ = ("_f", "_z", "_carry")

    def __init__(self, f: IO[bytes], deflate: bool) -> None:
        self._f = f
        self._z = zlib.compressobj(6, zlib.DEFLATED, -15) if deflate else None
        self._carry = b""

    def write(self, data: Any) -> None:
        self._emit(self._z.compress(data) if self._z is not None else memoryview(data))

    def finish(self) -> None:
        if self._z is not None:
            self._emit(memoryview(self._z.flush()))
        if self._carry:
            self._f.write(binascii.b2a_base64(self._carry, newline=False))
            self._carry = b""

    def _emit(self, mv: Any) -> None:
        if self._carry:
            need = 3 - len(self._carry)
            self._carry += bytes(mv[:need])
            mv = mv[need:]
            if len(self._carry) < 3:
                return
            self._f.write(binascii.b2a_base64(self._carry, newline=False))
            self._carry = b""
        whole = len(mv) - len(mv) % 3
        for a in range(0, whole, _B64_PIECE):
            self._f.write(binascii.b2a_base64(mv[a:min(whole, a + _B64_PIECE)], newline=False))
        self._carry = bytes(mv[whole:])


def _zero_pads(data: Any, sc: Any) -> Any:
    """``data`` with every record's padding zeroed (fastpack-split re-encodes each message, so
    non-zero pad bytes of the input come out as zeros); ``data`` itself when they already are."""
    p = (-sc.length) & 7
    has = p != 0
    if not has.any():
        return data
    last = (sc.offset[has] + sc.length[has] + p[has]) // 8 - 1     # the word holding the pad
    words = np.frombuffer(data, "<u8")
    mask = _PAD_MASK[p[has]]
    bad = (words[last] & mask) != 0
    if not bad.any():
        return data
    out = bytearray(data)
    w = np.frombuffer(out, "<u8")
    w[last[bad]] &= ~mask[bad]
    return out


def _frames(ar: Any) -> Iterator[Any]:
    """The source's FastPack stream, frame by frame, in stream order (what ``zstd -d`` gives)."""
    for e in sorted(ar.frames, key=lambda e: e.stream_offset):
        yield ar.frame_data(e)


def _check_limits(message_limit: int, byte_limit: int) -> None:
    for name, v in (("message_limit", message_limit), ("byte_limit", byte_limit)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise UsageError(f"{name} must be an integer >= 0 (0: no limit), not {v!r}")


def _next_set(tree: str) -> int:
    nums = [parse_name(n) for n in os.listdir(tree)]
    return max((n for n in nums if n is not None), default=-1) + 1


def _refuse_foreign(tree: str) -> None:
    for n in os.listdir(tree):
        if parse_name(n) is None or not os.path.isdir(os.path.join(tree, n)):
            raise FileExistsError(errno.EEXIST, f"{tree} holds {n!r}, which is not a JPack set directory; "
                                  "not replacing it (remove it yourself)", tree)


def write_tree(source: Union[str, "os.PathLike[str]", Any], root: Union[str, "os.PathLike[str]"], *,
               message_limit: int = DEFAULT_MESSAGE_LIMIT, byte_limit: int = DEFAULT_BYTE_LIMIT,
               compress: bool = False, force: bool = False, append: bool = False,
               html_container: Optional[str] = None) -> WriteReport:
    """Write the FastPack stream of ``source`` (a path :func:`fastodin.open` reads — archive, raw
    ``.fastpack``, any zstd FastPack file, JPack tree — or an open :class:`~fastodin.Archive`) as the
    JPack tree ``ROOT/data/jpack/<set>/<seq>.jpack`` that ``fastpack-split --html_container
    ROOT/index.html [--message_limit N] [--byte_limit B] SOURCE`` writes: same names, same cut
    points, same bytes with ``jpack_compression`` "none" (options in a fixed order).
    ``compress=True`` writes raw-deflate chunks (``jpack_compression`` "deflate").

    The tree is built under a temporary name in ``ROOT/data`` and renamed when complete.  An
    existing ``ROOT/data/jpack`` is refused (``FileExistsError``) unless ``force`` (replace it;
    only a directory of set directories is replaced) or ``append`` (add the next set, as
    fastpack-split does).  ``html_container`` overrides the value recorded in each chunk
    (default ``ROOT/index.html`` as given).  Other files in ``ROOT`` (an ``index.html``) are left
    alone; none is written.  A damaged source raises :class:`~fastodin.DataError`.
    """
    _check_limits(message_limit, byte_limit)
    if force and append:
        raise UsageError("force and append exclude each other")
    root = os.fspath(root)
    tree = os.path.join(root, PREFIX)
    exists = os.path.lexists(tree)
    if exists and not (force or append):
        raise FileExistsError(errno.EEXIST, f"{tree} exists (use force to replace it or append to add a set)", tree)
    if exists and not os.path.isdir(tree):
        raise FileExistsError(errno.EEXIST, f"{tree} exists and is not a directory", tree)
    if exists and force:
        _refuse_foreign(tree)
    html = container_of(root) if html_container is None else html_container
    compression = "deflate" if compress else "none"
    if isinstance(source, (str, bytes, os.PathLike)):
        from ..archive.reader import open_archive

        with open_archive(os.fsdecode(source)) as ar:
            return _write(ar, root, tree, exists and append, html, compression, message_limit, byte_limit)
    return _write(source, root, tree, exists and append, html, compression, message_limit, byte_limit)


def _write(ar: Any, root: str, tree: str, append: bool, html: str, compression: str,
           message_limit: int, byte_limit: int) -> WriteReport:
    if ar.damage:
        d = ar.damage[0]
        raise DataError(f"{ar.path} is damaged at offset {d.offset} ({d.reason}); only whole streams are "
                        f"exported (fastodin recover IN OUT saves the readable part)", offset=d.offset)
    set_index = _next_set(tree) if append else 0
    parent = tree if append else os.path.dirname(tree)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{dir_name(set_index)}.part-" if append else ".jpack.part-", dir=parent)
    set_tmp = tmp if append else os.path.join(tmp, dir_name(set_index))
    rep = WriteReport(tree, set_index, compression)
    head = header(compression, message_limit, byte_limit, html)
    try:
        _write_set(ar, set_tmp, head, compression == "deflate", Cutter(message_limit, byte_limit), rep)
        final_set = os.path.join(tree, dir_name(set_index))
        rep.files = [os.path.join(final_set, os.path.basename(f)) for f in rep.files]
        if append:
            if rep.files:
                os.rename(tmp, final_set)
            else:
                os.rmdir(tmp)
        else:
            _install(tmp, tree)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rep


def _install(tmp: str, tree: str) -> None:
    """Rename the finished tree ``tmp`` to ``tree``, replacing an old one."""
    old = None
    if os.path.lexists(tree):
        old = tempfile.mkdtemp(prefix=".jpack.old-", dir=os.path.dirname(tree))
        os.rename(tree, os.path.join(old, "jpack"))
    try:
        os.rename(tmp, tree)
    except BaseException:
        if old is not None:
            os.rename(os.path.join(old, "jpack"), tree)
            os.rmdir(old)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_set(ar: Any, set_dir: str, head: bytes, deflate: bool, cut: Cutter, rep: WriteReport) -> None:
    """Write the chunks of one set into ``set_dir`` (created on the first chunk)."""
    f: Optional[IO[bytes]] = None
    body: Optional[_Body] = None

    def close() -> None:
        if f is not None and body is not None:
            body.finish()
            f.write(FOOTER)
            rep.bytes_written += f.tell()
            f.close()

    try:
        for data in _frames(ar):
            sc = scan(data, max_record_size=_MAX_RECORD)
            if sc.end != len(data):
                raise DataError(f"{ar.path}: a frame of the stream does not hold whole FastPack records "
                                f"(record cut at stream byte {rep.stream_bytes + sc.end})")
            n = sc.count
            if n == 0:
                continue
            buf = memoryview(_zero_pads(data, sc))
            pos = (sc.offset - 16).tolist() + [len(data)]
            starts = cut.split(16 + sc.length.astype(np.int64) + ((-sc.length) & 7))
            edges = sorted(set([0] + starts + [n]))
            new = set(starts)
            for a, b in zip(edges[:-1], edges[1:]):
                if a in new:
                    close()
                    if not rep.files:
                        os.makedirs(set_dir, exist_ok=True)
                    path = os.path.join(set_dir, file_name(len(rep.files)))
                    f = open(path, "wb")
                    f.write(head)
                    body = _Body(f, deflate)
                    rep.files.append(path)
                assert body is not None
                body.write(buf[pos[a]:pos[b]])
            rep.records += n
            rep.stream_bytes += len(data)
            del buf
        close()
        f = None
    finally:
        if f is not None and not f.closed:
            f.close()
