"""Reading archives (and raw ``.fastpack`` files): index, selective decompression, typed arrays.

:func:`open_archive` (exported as ``fastodin.open``) recognises the file by content: zstd or
skippable-frame magic -> archive, anything else -> raw FastPack stream.  For archives only the
tail is read at open (seek table + consolidated index); a file without them (a killed writer) is
indexed by hopping over its frames' headers.

>>> import os, tempfile
>>> from fastodin.archive.writer import Writer
>>> path = os.path.join(tempfile.mkdtemp(), "r.fastpack.zst")
>>> with Writer(path) as w:
...     for i in range(10):
...         w.write(i * 0.1, "a" if i % 2 else "b", bytes([i]) * 8)
>>> with open_archive(path) as ar:
...     [r.name for r in ar.records(channels="a")][:2], ar.info()["channels"]["b"]["count"]
(['a', 'a'], 5)
"""
from __future__ import annotations

import collections
import concurrent.futures
import errno
import fnmatch
import heapq
import math
import mmap
import os
import stat
import struct
import threading
from itertools import chain, repeat
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import zstandard

from ..codec import Record
from ..columns import scan
from ..errors import (ChecksumError, CorruptFrameError, DataError, LimitError, NotSeekableError, TruncatedError,
                      UsageError)
from ..metadata import decode_meta
from ..namespace import name_from_bytes
from ..timebase import TIME_KEY, TimeBase
from .index import (INDEX_TAG, KIND_CONSOLIDATED, KIND_FAILED, KIND_FRAME, ChannelTable, FrameEntry,
                    channel_stat_columns, check_counts, parse_failure, parse_index_payload)
from .layout import Layout
from .seekable import (INDEX_MAGIC, SEEKABLE_FOOTER_MAGIC, ZSTD_MAGIC, is_skippable, parse_footer,
                       parse_seek_table, seek_table_size, zstd_frame_header, zstd_frame_size)

__all__ = ["open_archive", "Archive", "DEFAULT_MAX_FRAME_SIZE", "Damage", "channel_matches"]

#: Largest decompressed zstd frame accepted: a header, index entry or seek table claiming more,
#: or a frame without declared size decompressing to more, is a LimitError.
DEFAULT_MAX_FRAME_SIZE = 1 << 30
_TAIL = 1 << 16
#: Bytes per virtual frame of a raw .fastpack file, and per entry cut from a zstd frame without
#: index entry (such frames are decoded block by block, never whole: a block is <= 128 KiB).
RAW_CHUNK = 1 << 22
#: zstd's largest expansion: a 4-byte RLE block gives at most one 128 KiB block of content.
_MAX_RATIO = 1 << 15
#: Largest index or seek-table frame read into memory (a bigger one is treated as damaged).
MAX_INDEX_FRAME = 1 << 28
#: A rebuilt entry of this many channels or more keeps them as a ChannelTable (numpy columns).
_TABLE_CHANNELS = 1024
_U32x2 = struct.Struct("<II")
_U32 = struct.Struct("<I")
_META_TAG = b'{"fastodin":'


class Damage:
    """A region of the file that could not be used: ``offset``, ``length``, ``reason``, the lost
    frame's ``entry`` (records, time range) when its index entry survived, and what recovery
    saved of that frame: its first ``kept`` records (of any kind) decoded whole, ``salvaged`` of
    them data records.  ``min_lost``: records certainly lost where no entry says how many (a
    record or frame the damage cut).

    >>> d = Damage(10, 5, "cut", min_lost=1)
    >>> d.reason, d.records, d.at_least
    ('cut', None, 1)
    """

    __slots__ = ("offset", "length", "reason", "entry", "kept", "salvaged", "min_lost", "lost")

    def __init__(self, offset: int, length: int, reason: str, entry: Optional[FrameEntry] = None,
                 kept: int = 0, salvaged: int = 0, min_lost: int = 0, lost: Optional[int] = None) -> None:
        self.offset = offset
        self.length = length
        self.reason = reason
        self.entry = entry
        self.kept = kept
        self.salvaged = salvaged
        self.min_lost = min_lost
        self.lost = lost   # a failed writer's own count (its failure frame), where no entry says

    def __repr__(self) -> str:
        return f"Damage(offset={self.offset}, length={self.length}, reason={self.reason!r})"

    @property
    def records(self) -> Optional[int]:
        """Data records lost, exact when the index entry survived or a failed writer said (else None)."""
        if self.entry is None:
            return self.lost
        return max(0, self.entry.data_records - self.salvaged)

    @property
    def at_least(self) -> int:
        """Data records certainly lost: exact from the index, else ``min_lost``."""
        r = self.records
        return self.min_lost if r is None else r


class _ScanState:
    """What the scan carries from frame to frame: ``entries`` so far, the stream offset ``soff``,
    the namespace in force (``bound``: file id -> reader id), whether a fastodin index frame was
    seen (``indexed``) and, for zstd frames without index entry, the bytes of a record that a
    frame boundary cut (``carry``, starting ``lead`` bytes into the content of the zstd frame at
    file offset ``frame``), compressed bytes not yet counted in an entry (``owed``) and whether
    damage broke a stream that has no index to resynchronise on (``broken``)."""

    __slots__ = ("entries", "soff", "bound", "indexed", "carry", "frame", "lead", "owed", "broken")

    def __init__(self) -> None:
        self.entries: List[FrameEntry] = []
        self.soff = 0
        self.bound: Dict[int, int] = {}
        self.indexed = False
        self.carry = bytearray()
        self.frame = 0
        self.lead = 0
        self.owed = 0
        self.broken = False


class _PieceReader:
    """``read(n)`` over an iterator of byte pieces: a decoder is pulled only as far as asked, so
    an error past the bytes read is never raised."""

    __slots__ = ("_it", "_buf")

    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it
        self._buf = bytearray()

    def read(self, n: int) -> bytes:
        buf = self._buf
        while len(buf) < n:
            piece = next(self._it, None)
            if piece is None:
                break
            buf += piece
        out = bytes(buf[:n])
        del buf[:n]
        return out


def open_archive(path: Union[str, "os.PathLike[str]"], *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 raw_time: bool = False, namespace: bool = True) -> "Archive":
    """Open an archive or a raw ``.fastpack`` file (decided by content), or a JPack tree (a
    directory, a ``.jpack`` file: :func:`fastodin.jpack.open_tree`).

    A crashed archive (no seek table) opens with every complete frame; a partial last frame is
    reported in ``Archive.damage``.  A frame that cannot be decoded *and* has no index entry raises
    CorruptFrameError (use :func:`fastodin.archive.recover`).

    A file that declares a time base (``Archive.time_base``, spec/fastpack.md §6.1) is read in
    seconds (times, bounds and index statistics); ``raw_time=True`` gives the stored raw times.

    ``namespace=False`` reads a stream written without a namespace (Perl ``encode_fastpack``
    without ``$ns``; ``fastodin.decode(..., namespace=False)``): every record is data, ids carry
    no names, nothing is hidden.  It applies to raw files and zstd frames without a fastodin index;
    an archive written by fastodin (always named) raises UsageError.

    >>> import os, tempfile, fastodin
    >>> p = os.path.join(tempfile.mkdtemp(), "plain.fastpack")
    >>> _ = open(p, "wb").write(fastodin.encode([(0.0, 1, b"x"), (1.0, 1, b"y")]))
    >>> [bytes(r.payload) for r in open_archive(p).records()]                 # as named: a definition
    [b'y']
    >>> [bytes(r.payload) for r in open_archive(p, namespace=False).records()]
    [b'x', b'y']
    """
    from ..jpack import is_jpack, open_tree

    p = os.fspath(path)
    check_random_access(p)
    if is_jpack(path):
        if not namespace:
            raise UsageError(f"{p}: namespace=False is for raw FastPack streams, not JPack trees")
        return open_tree(path, max_frame_size=max_frame_size)
    return Archive(path, max_frame_size=max_frame_size, raw_time=raw_time, namespace=namespace)


def _rows(data: Any, offs: np.ndarray, L: int) -> np.ndarray:
    """Payloads of ``L`` bytes at ``offs`` as a 1-d array of ``V{L}`` items (a view of ``data``
    when evenly spaced, else a copy gathered without per-byte index arrays for big payloads)."""
    n = int(offs.shape[0])
    vt = np.dtype((np.void, L)) if L else np.dtype("V0")
    if L == 0:
        return np.zeros(n, vt)
    if n == 1:
        return np.ndarray((1,), vt, buffer=data, offset=int(offs[0]))
    st = int(offs[1] - offs[0]) if n > 1 else 0
    if n > 1 and st >= L and bool((offs[1:] - offs[:-1] == st).all()):
        return np.ndarray((n,), vt, buffer=data, offset=int(offs[0]), strides=(st,))
    out = np.empty(n, vt)
    ob = out.view(np.uint8).reshape(n, L)
    u8 = np.frombuffer(data, np.uint8)
    if L >= 256:
        for k, o in enumerate(offs.tolist()):
            ob[k] = u8[o:o + L]
        return out
    step = max(1, (1 << 20) // L)
    ar = np.arange(L)
    for a in range(0, n, step):
        ob[a:a + step] = u8[offs[a:a + step, None] + ar]
    return out


_V16 = np.dtype((np.void, 16))
#: reader ids above this are virtual (raw files: an id re-bound to another name after a reset);
#: the file's own id is ``vid & _ID_MASK``
_ID_MASK = 0xFFFFFFFF


def _fmin(a: np.ndarray) -> float:
    """Smallest time ignoring NaN (NaN only if every time is NaN)."""
    return float(np.fmin.reduce(a)) if a.shape[0] else math.nan


def _fmax(a: np.ndarray) -> float:
    return float(np.fmax.reduce(a)) if a.shape[0] else math.nan


def _lo(a: float, b: float) -> float:
    return b if a != a else (a if b != b else min(a, b))


def _hi(a: float, b: float) -> float:
    return b if a != a else (a if b != b else max(a, b))


def _tkey(t: float) -> float:
    """Sort key of a time: NaN first (it has no place in time; never lost)."""
    return t if t == t else -math.inf


def _what(what: Any) -> str:
    return what.describe() if isinstance(what, FrameEntry) else str(what)


def _name_matches(name: str, pattern: str) -> bool:
    """Does channel ``name`` match glob ``pattern``?  Case-sensitive, except that ODIN channels
    (``odin/...``) match whatever the case, their set ids being hex numbers (``0x98A8`` = ``0x98a8``).

    >>> _name_matches("odin/set/0x98A8", "odin/set/0x98a8"), _name_matches("odin/set/0xabcd", "*/0xABCD")
    (True, True)
    >>> _name_matches("imu", "IMU")
    False
    """
    if fnmatch.fnmatchcase(name, pattern):
        return True
    return name.startswith("odin/") and fnmatch.fnmatchcase(name.lower(), pattern.lower())


#: Notes kept about ignored metadata records (then a count).
_MAX_META_NOTES = 20


def _is_map(v: Any, values: Any = object) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, values) for k, x in v.items())


def meta_problem(m: Dict[str, Any]) -> Optional[str]:
    """What is wrong with the JSON types of a writer metadata record (spec/archive.md §3), or
    None.  Unknown kinds are not checked (readers skip what they do not know).

    >>> meta_problem({"fastodin": "file", "tags": [1, 2]})
    "'tags' is list, expected a map of names"
    >>> meta_problem({"fastodin": "stream", "id": "s", "channels": {"data": "s"}}) is None
    True
    """
    kind = m.get("fastodin")
    opt_str = (str, type(None))
    if kind == "file":
        checks = [("tags", _is_map(m.get("tags") or {}), "a map of names"),
                  ("preset", isinstance(m.get("preset"), (str, int, type(None))) and not isinstance(m.get("preset"), bool),
                   "a preset name or level")]
    elif kind == "stream":
        checks = [("id", isinstance(m.get("id"), str), "a str"),
                  ("tags", _is_map(m.get("tags") or {}), "a map of names"),
                  ("channels", _is_map(m.get("channels") or {}, str), "a map of role -> channel name"),
                  ("layouts", _is_map(m.get("layouts") or {}, dict), "a map of role -> layout")]
        checks += [(k, isinstance(m.get(k), opt_str), "a str") for k in ("name", "flavor", "compression")]
    elif kind == "channel":
        checks = [("name", isinstance(m.get("name"), str), "a str"), ("layout", isinstance(m.get("layout"), dict),
                                                                    "a layout map")]
    else:
        return None
    for key, ok, want in checks:
        if not ok:
            return f"{key!r} is {type(m.get(key)).__name__}, expected {want}"
    return None


def _channel_stats(t: np.ndarray, i: np.ndarray, ln: np.ndarray) -> Any:
    """``FrameEntry.channels`` of data records with times ``t``, reader ids ``i``, payload
    lengths ``ln``: a dict, or a :class:`ChannelTable` for many channels.

    >>> _channel_stats(np.array([1.0, 0.5, 2.0]), np.array([3, 3, 4]), np.array([8, 8, 2]))
    {3: (2, 16, 0.5, 1.0), 4: (1, 2, 2.0, 2.0)}
    """
    channels: Any = {}
    if not t.shape[0]:
        return channels
    order = np.argsort(i, kind="stable")
    si = i[order]
    starts = np.flatnonzero(np.concatenate(([True], si[1:] != si[:-1])))
    st = t[order]
    counts = np.diff(np.append(starts, si.shape[0]))
    nbytes = np.add.reduceat(ln[order].astype(np.int64), starts)
    lo = np.fmin.reduceat(st, starts)     # NaN times ignored (NaN only if all are NaN)
    hi = np.fmax.reduceat(st, starts)
    if starts.shape[0] >= _TABLE_CHANNELS:
        return ChannelTable(si[starts], counts, nbytes, lo, hi)
    for k, cid in enumerate(si[starts].tolist()):
        channels[cid] = (int(counts[k]), int(nbytes[k]), float(lo[k]), float(hi[k]))
    return channels


def _remap_ids(ids: np.ndarray, remap: Tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Reader ids of a frame's records (``FrameEntry.remap`` of a raw chunk: reset positions,
    sorted ``segment << 32 | file id`` keys and the reader ids they map to; segment = resets before
    the record).

    >>> _remap_ids(np.array([1, 0, 1], np.uint32), (np.array([1]), np.array([1 << 32 | 1]), np.array([7])))
    array([1, 0, 7])
    """
    rpos, keys, vals = remap
    n = ids.shape[0]
    key = ids.astype(np.int64)
    if rpos.shape[0]:
        step = np.zeros(n + 1, np.int64)
        step[rpos + 1] = 1
        key |= np.cumsum(step[:n]) << 32
    j = np.minimum(np.searchsorted(keys, key), keys.shape[0] - 1)
    hit = keys[j] == key
    out = ids.astype(np.int64)
    out[hit] = vals[j[hit]]
    return out


_NOT_REGULAR = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def regular_file_size(fd: int, path: str) -> int:
    """Size of the open file ``fd``, or :class:`~fastodin.errors.NotSeekableError` when it is not a
    regular file whose size can be trusted: a FIFO, device, socket or directory, or a pseudo-file
    (``/proc``: 0 bytes that read as text; ``/sys``: 4096 bytes that hold less).  A file that
    grows meanwhile (a recording) is fine.

    >>> import tempfile
    >>> with tempfile.TemporaryFile() as f:
    ...     _ = f.write(b"abc"); f.flush(); regular_file_size(f.fileno(), f.name)
    3
    """
    st = os.fstat(fd)
    for test, kind in _NOT_REGULAR:
        if test(st.st_mode):
            raise NotSeekableError(f"{path}: is {kind}, not a regular file (reading an archive or FastPack "
                                   "file needs random access; copy the stream to a file first)", filename=path,
                                   errno=errno.EISDIR if kind == "a directory" else errno.ESPIPE)
    if not stat.S_ISREG(st.st_mode):    # pragma: no cover - an unknown file type
        raise NotSeekableError(f"{path}: is not a regular file", filename=path)
    size = st.st_size
    if size == 0:
        if _pread(fd, 1, 0) and os.fstat(fd).st_size == 0:
            raise NotSeekableError(f"{path}: its size says 0 bytes yet it reads as data: a pseudo-file "
                                   "(/proc?), not a regular file", filename=path)
    elif not _pread(fd, 1, size - 1) and os.fstat(fd).st_size == size:
        raise NotSeekableError(f"{path}: holds less than its size of {size} bytes: a pseudo-file (/sys?), "
                               "not a regular file", filename=path)
    return os.fstat(fd).st_size


def check_random_access(path: str) -> None:
    """Refuse (NotSeekableError) a path that is neither a directory (a JPack tree) nor a regular
    file whose size can be trusted -- before anything opens it blocking (a FIFO).

    >>> check_random_access(".")
    """
    if not os.path.isdir(path):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            regular_file_size(fd, path)
        finally:
            os.close(fd)


def channel_matches(name: str, pattern: str) -> bool:
    """Does channel ``name`` match selector ``pattern`` (a name or glob) as :meth:`Archive.channel_ids`
    decides (for callers that hold channel names without an open archive, e.g. a dataset catalog).

    >>> channel_matches("odin/set/0x98A8", "odin/set/0x98a8"), channel_matches("imu", "i*")
    (True, True)
    >>> channel_matches("imu", "IMU")
    False
    """
    return _name_matches(name, pattern)


def _pread(fd: int, n: int, off: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, n, off)
    os.lseek(fd, off, 0)  # pragma: no cover - non-POSIX
    return os.read(fd, n)


class Archive:
    """An open archive or raw FastPack file.  Use :func:`open_archive`.

    Attributes: ``path``, ``size``, ``format`` ("archive", "zstd" for a zstd-compressed FastPack
    stream without fastodin index, or "fastpack"), ``complete`` (archive: seek table and
    consolidated index present and consistent; zstd and fastpack: the stream is whole, no damage),
    ``frames`` (index entries), ``names``
    (reader id -> channel name; in a raw file an id that a namespace reset re-bound to another
    name also has a virtual reader id ``(k << 32) | id``), ``ids`` (name -> its first id), ``tags`` (file tags), ``streams`` (stream definitions), ``layouts``
    (channel name -> :class:`Layout`), ``damage`` (unusable regions found while opening),
    ``container`` (``"jpack"`` when the stream was decoded from a JPack tree, else None),
    ``frames_decompressed`` (data frames this reader has decompressed so far: 0 after opening a
    complete archive, whose index is read from its tail).
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 _lenient: bool = False, raw_time: bool = False,
                 namespace: bool = True) -> None:
        self.path = os.fspath(path)
        self._max = max_frame_size
        #: False: ids are not names (a stream written without a namespace): every record is data
        self.namespace = bool(namespace)
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just after)
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
        self._tls = threading.local()   # one zstd decompressor per thread (they are not thread-safe)
        self.frames_decompressed = 0
        self._count_lock = threading.Lock()
        self._raw: Optional[Any] = None
        self.frames: List[FrameEntry] = []
        self.names: Dict[int, str] = {}
        self.ids: Dict[str, int] = {}
        self.tags: Dict[str, Any] = {}
        self.streams: Dict[str, Dict[str, Any]] = {}
        self.layouts: Dict[str, Layout] = {}
        self.channel_stream: Dict[str, Tuple[str, str]] = {}
        self.damage: List[Damage] = []
        self.notes: List[str] = []
        #: writer metadata records (and layouts) that were unreadable or of the wrong JSON types,
        #: ignored with a note: the data they describe still reads, as untyped channels
        self.meta_ignored = 0
        self._more_note = -1
        self.complete = False
        self.container: Optional[str] = None   # "jpack": the stream was decoded from a JPack tree
        self.file_meta: Dict[str, Any] = {}
        #: the declared time base (None: times are seconds); applied unless ``raw_time``
        self.time_base: Optional[TimeBase] = None
        self.raw_time = raw_time
        self._seconds: Optional[TimeBase] = None
        self._by_channel: Dict[frozenset, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._name_table: Optional[np.ndarray] = None
        self._name_more: Dict[str, Dict[int, int]] = {}   # name on several ids -> {file id: reader id}
        self._real_ids: Dict[int, List[int]] = {}     # file id -> its virtual ids (raw files)
        self._vid_next = 0
        #: a foreign seek table (no consolidated index): frame offsets, compressed and decompressed sizes
        self._seek: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None
        #: decoder left where the last segment ended (segments are read in order): [reader, stream offset]
        self._cursor: Optional[List[Any]] = None
        self._cursor_lock = threading.Lock()
        try:
            self.size = regular_file_size(self._fd, self.path)
            head = _pread(self._fd, 12, 0)
            magic = _U32.unpack(head[:4])[0] if len(head) >= 4 else None
            foot = _pread(self._fd, 4, self.size - 4) if self.size >= 12 else b""
            # an archive by its first frame's magic, or (damaged first magic) by our index tag
            # right after it, or by the seekable footer magic at the very end
            if magic is not None and (magic == ZSTD_MAGIC or is_skippable(magic) or head[8:12] == INDEX_TAG
                                      or foot == _U32.pack(SEEKABLE_FOOTER_MAGIC)):
                self.format = "archive"
                n_notes = len(self.notes)
                ok = self._open_tail()
                n_tail = len(self.notes) - n_notes
                # recover (lenient) always scans: it trusts no index, so nothing an entry hides is missed
                if not ok or _lenient:
                    self.frames, self.complete = [], False
                    self._scan(lenient=_lenient)
                    if self.format == "zstd":
                        del self.notes[n_notes:n_notes + n_tail]   # not a crashed writer: a stream without index
                        self.notes.insert(n_notes, "zstd FastPack stream without fastodin index: indexed by decompressing "
                                          f"every frame{' (its seek table checked)' if self._seek is not None else ''}")
                        self.complete = not self.damage
                if not self.namespace and self.format == "archive":
                    raise UsageError(f"{self.path}: namespace=False is for streams written without a namespace "
                                     "(raw FastPack, zstd without fastodin index); this archive was written by "
                                     "fastodin, with named channels")
            else:
                self.format = "fastpack"
                self._open_raw()
            self._apply_index()
            self._apply_time_base()
        except BaseException:
            os.close(self._fd)
            self._fd = -1      # __del__ must not close the number again (another file may have it by then)
            raise

    # ---- context ------------------------------------------------------------------------------
    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort when not closed explicitly
        try:
            if getattr(self, "_fd", -1) >= 0:
                os.close(self._fd)
                self._fd = -1
        except Exception:
            pass

    def close(self) -> None:
        """Close the file."""
        self._cursor = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._raw is not None:
            try:
                self._raw.close()
            except BufferError:  # pragma: no cover - views still alive
                pass
            self._raw = None

    # ---- opening ------------------------------------------------------------------------------
    def _open_tail(self) -> bool:
        size = self.size
        if size < 17:
            self.notes.append("no seek table (file too short): scanned")
            return False
        tail_off = max(0, size - _TAIL)
        tail = _pread(self._fd, size - tail_off, tail_off)
        ft = parse_footer(tail[-9:])
        if ft is None:
            self.notes.append("no seek table: the writer did not close the file; index rebuilt by scanning")
            return False
        n, desc = ft
        st = seek_table_size(n, desc)
        if st > MAX_INDEX_FRAME:
            self.notes.append(f"seek table of {st} bytes exceeds MAX_INDEX_FRAME={MAX_INDEX_FRAME}: scanned")
            return False
        if st > size:
            self.notes.append("seek table larger than the file: scanned")
            return False
        st_off = size - st
        frame = tail[st_off - tail_off:] if st_off >= tail_off else _pread(self._fd, st, st_off)
        try:
            seek = parse_seek_table(frame, n, desc)
        except DataError as exc:
            self.notes.append(f"{exc}: scanned")
            return False
        if not seek or sum(c for c, _ in seek) != st_off:
            self.notes.append("seek table does not add up to the file size: scanned")
            return False
        sizes = np.array(seek, np.int64).reshape(-1, 2)
        self._seek = (np.cumsum(sizes[:, 0]) - sizes[:, 0], sizes[:, 0], sizes[:, 1])
        idx_size = seek[-1][0]
        idx_off = st_off - idx_size
        if idx_size < 8 or seek[-1][1] != 0 or idx_size > MAX_INDEX_FRAME:
            self.notes.append("no consolidated index before the seek table: scanned")
            return False
        raw = tail[idx_off - tail_off:st_off - tail_off] if idx_off >= tail_off else _pread(self._fd, idx_size, idx_off)
        magic, ln = _U32x2.unpack_from(raw, 0)
        if magic != INDEX_MAGIC or ln != idx_size - 8:
            self.notes.append("last frame is not a fastodin index: scanned")
            return False
        try:
            kind, entries = parse_index_payload(raw[8:])
        except DataError as exc:
            self.notes.append(f"consolidated index unreadable ({exc}): scanned")
            return False
        if kind != KIND_CONSOLIDATED or len(seek) != 2 * len(entries) + 1:
            self.notes.append("consolidated index does not match the seek table: scanned")
            return False
        pos = 0
        soff = 0
        for i, e in enumerate(entries):
            ic, idc = seek[2 * i]
            dc, dd = seek[2 * i + 1]
            if (idc != 0 or e.frame_no != i or e.data_offset != pos + ic or e.compressed_size != dc
                    or e.decompressed_size != dd or e.stream_offset != soff):
                self.notes.append(f"consolidated index entry {i} does not match the seek table: scanned")
                return False
            why = self._implausible(e)
            if why:
                self.notes.append(f"consolidated index entry {i}: {why}: scanned")
                return False
            pos += ic + dc
            soff += dd
        self.frames = entries
        self.complete = True
        self._seek = None
        return True

    @staticmethod
    def _implausible(e: FrameEntry) -> Optional[str]:
        """Why the counts and sizes of a parsed index entry cannot be true (None if they can):
        they must add up (:func:`check_counts`) and zstd cannot expand more than 32768 times."""
        try:
            check_counts(e)
        except DataError as exc:
            return str(exc)
        if e.decompressed_size > _MAX_RATIO * e.compressed_size:
            return (f"{e.decompressed_size} decompressed bytes from a frame of {e.compressed_size} bytes "
                    f"(zstd expands at most {_MAX_RATIO} times)")
        return None

    def _scan(self, lenient: bool) -> None:
        """Index the file by hopping over its frames from offset 0 (crashed, damaged or foreign files).

        A data frame with a usable index entry is sized by its block headers (it must end exactly
        where its entry says) and not decompressed.  A zstd frame without one is decompressed in
        pieces and its records, joined to the piece of a record that the previous frame cut, are
        cut into entries (segments, when records cross frames).  ``lenient`` (recover) trusts no
        entry: every frame is rebuilt from its data, an entry only says what a damaged frame lost,
        and the whole records a torn or damaged frame still decodes to are kept.
        """
        fd, size = self._fd, self.size
        pos = 0
        pending: Optional[FrameEntry] = None   # index entry waiting for its data frame
        st = _ScanState()
        failed: Optional[Tuple[int, int, bytes]] = None   # a failed writer's failure frame
        while pos < size:
            if pos + 8 > size:
                self._lose(st, pos, size, "file ends inside a frame header (cut or crashed writer)", pending, False)
                pending = None
                break
            magic, ln = _U32x2.unpack(_pread(fd, 8, pos))
            if is_skippable(magic):
                end = pos + 8 + ln
                if magic == INDEX_MAGIC:
                    st.indexed = True
                if end > size:
                    nxt = self._cut_or_corrupt(st, pos, "an index frame runs past the end of the file", pending, lenient)
                    pending = None
                    if nxt is None:
                        break
                    pos = nxt
                    continue
                if magic == INDEX_MAGIC and ln > MAX_INDEX_FRAME:
                    nxt = self._resync(pos + 1)
                    if not lenient:
                        raise CorruptFrameError(f"index frame at offset {pos} claims {ln} bytes > MAX_INDEX_FRAME="
                                                f"{MAX_INDEX_FRAME}; use fastodin.archive.recover()", offset=pos,
                                                length=ln, limit=MAX_INDEX_FRAME)
                    self._lose(st, pos, nxt, "oversized index frame", pending, False)
                    pending = None
                    pos = nxt
                    continue
                if magic == INDEX_MAGIC:
                    if pending is not None:
                        if not lenient:
                            raise CorruptFrameError(f"index frame at offset {pos} follows another one: the data frame "
                                                    f"of {pending.describe()} is missing; use fastodin.archive.recover()",
                                                    offset=pos)
                        self.damage.append(Damage(pending.data_offset, 0, "index entry without its data frame", pending))
                        pending = None
                    payload = _pread(fd, ln, pos + 8)
                    try:
                        kind, got = parse_index_payload(payload)
                    except DataError as exc:
                        self.notes.append(f"index frame at offset {pos} unreadable ({exc}); its frame is rebuilt from data")
                        kind, got = 0, []
                    if kind == KIND_FAILED:
                        failed = (pos, end - pos, payload)   # the last one counts
                    elif kind == KIND_FRAME:
                        why = self._implausible(got[0])
                        if why:
                            self.notes.append(f"index frame at offset {pos}: {why}; its frame is rebuilt from data")
                        elif got[0].data_offset != end:
                            self.notes.append(f"index frame at offset {pos} points elsewhere; ignored")
                        else:
                            pending = got[0]
                pos = end
                continue
            if magic == ZSTD_MAGIC:
                e, pending = pending, None
                try:
                    csize = zstd_frame_size(lambda o, n: _pread(fd, n, o), pos, size)
                    content = zstd_frame_header(_pread(fd, 18, pos))[1]
                except TruncatedError:
                    nxt = self._cut_or_corrupt(st, pos, "a data frame runs past the end of the file", e, lenient)
                    if nxt is None:
                        break
                    pos = nxt
                    continue
                except DataError as exc:
                    if not lenient:
                        raise CorruptFrameError(f"data frame at offset {pos} ({'no index entry, time range unknown' if e is None else e.describe()}) "
                                                f"is corrupt: {exc}; use fastodin.archive.recover()", offset=pos) from None
                    nxt = self._resync(pos + 1)
                    self._lose(st, pos, nxt, f"corrupt data frame: {exc}", e, True)
                    pos = nxt
                    continue
                if e is not None and (e.compressed_size != csize or (content is not None and content != e.decompressed_size)):
                    self.notes.append(f"index entry of the data frame at offset {pos} says {e.compressed_size} compressed / "
                                      f"{e.decompressed_size} bytes, the frame has {csize} / "
                                      f"{'?' if content is None else content}: entry ignored, frame rebuilt from its data")
                    e = None
                if e is not None:   # a fastodin data frame starts at a record boundary
                    self._stream_break(st, pos, f"the data frame at offset {pos}")
                    problem = self._check_frame(pos, csize, e) if lenient else None
                    if problem is None:
                        e.frame_no = len(st.entries)
                        e.stream_offset = st.soff
                        st.soff += e.decompressed_size
                        st.entries.append(e)
                    else:      # recover: keep what decodes, the entry says what is lost
                        self._lose(st, pos, pos + csize, problem, e, True)
                    self._bind(st, e)
                elif st.broken:
                    self._lose(st, pos, pos + csize, "follows damage in a zstd stream without fastodin index "
                               "(where its records start is unknown)", e, False)
                else:
                    # recover checks the whole frame first: what it saves of a damaged one, _lose decides
                    _good, problem, _ck = self._decodable(pos, pos + csize) if lenient else (0, None, False)
                    n0 = len(st.entries)
                    try:
                        if problem is not None:
                            raise CorruptFrameError(f"zstd frame at offset {pos} (no index entry) is corrupt: {problem}",
                                                    offset=pos)
                        self._stream_frame(st, pos, csize, content)
                    except DataError as exc:
                        if not lenient:
                            if isinstance(exc, LimitError):
                                raise
                            raise CorruptFrameError(f"{exc}; use fastodin.archive.recover()", offset=pos) from None
                        if problem is None:     # decoded up to a limit: what it gave so far is kept
                            self._lose(st, pos, pos + csize, str(exc), e, False, n0)
                        else:
                            self._lose(st, pos, pos + csize, str(exc), e, True)
                pos += csize
                continue
            # neither zstd nor skippable
            if not lenient:
                raise CorruptFrameError(f"unknown bytes at offset {pos} (magic {magic:#010x}: not a zstd or "
                                        f"skippable frame); use fastodin.archive.recover()", offset=pos)
            nxt = self._resync(pos + 1)
            self._lose(st, pos, nxt, f"unknown bytes (magic {magic:#010x})", pending, False)
            pending = None
            pos = nxt
        self._stream_break(st, size, "the end of the file")
        if pending is not None:
            self.damage.append(Damage(pending.data_offset, 0, "index entry without its data frame", pending))
        if failed is not None:
            self._writer_failed(*failed)
        self.frames = st.entries
        if not st.indexed:
            self.format = "zstd"

    def _writer_failed(self, pos: int, length: int, payload: bytes) -> None:
        """The failure frame a writer leaves when its background thread failed: what it lost is damage."""
        try:
            f = parse_failure(payload)
        except DataError:
            f = {"error": "unreadable failure frame", "records_lost": None}
        self.damage.append(Damage(pos, length, f"the writer failed and did not finish the file: {f['error']}",
                                  lost=f["records_lost"], min_lost=f["records_lost"] or 0))

    def _bind(self, st: _ScanState, e: FrameEntry) -> None:
        """The ids of a writer's index entry are bound from its frame on (even if the frame is lost)."""
        for cid, _p, nm in e.names:
            st.bound.setdefault(cid, cid)
            self._bind_name(cid, nm, latest=True)
        for cid in e.channels:
            st.bound.setdefault(cid, cid)

    def _decodable(self, pos: int, end: int) -> Tuple[int, Optional[str], bool]:
        """``(bytes, problem, bad checksum)``: how much of the zstd frame at ``pos`` decodes from its
        start (block by block, within ``end``, at most max_frame_size + 1) and why it stops (None:
        it is whole and its checksum good)."""
        good = 0
        try:
            for piece in self._block_pieces(pos, end):
                good += len(piece)
                if good > self._max:
                    return good, f"decompresses to more than max_frame_size={self._max} bytes", False
        except zstandard.ZstdError as exc:
            return good, f"{exc} (after {good} decompressed bytes)", "checksum" in str(exc).lower()
        except DataError as exc:
            return good, str(exc), False
        try:
            zstd_frame_size(lambda o, n: _pread(self._fd, n, o), pos, end)
        except DataError as exc:
            return good, f"{exc} (after {good} decompressed bytes)", False
        return good, None, False

    def _check_frame(self, pos: int, csize: int, e: FrameEntry) -> Optional[str]:
        """Why the data frame of entry ``e`` does not decode whole to its ``decompressed_size``
        bytes with a good checksum (None: it does)."""
        good, problem, _ck = self._decodable(pos, pos + csize)
        if problem is not None:
            return f"{e.describe()} is corrupt: {problem}"
        if good != e.decompressed_size:
            return f"{e.describe()}: decompressed to {good} bytes, its index entry says {e.decompressed_size}"
        return None

    def _cut_or_corrupt(self, st: _ScanState, pos: int, what: str, entry: Optional[FrameEntry],
                        lenient: bool) -> Optional[int]:
        """A frame runs past the end of the file: a cut (crashed writer) if no index frame follows,
        else a damaged header.  Returns where to continue (None: stop)."""
        nxt = self._resync(pos + 1)
        if nxt >= self.size:
            self._lose(st, pos, self.size, f"{what} (cut or crashed writer)", entry, lenient)
            return None
        if not lenient:
            raise CorruptFrameError(f"frame header at offset {pos} is damaged: {what}, yet frames follow at offset "
                                    f"{nxt}; use fastodin.archive.recover()", offset=pos)
        self._lose(st, pos, nxt, f"damaged frame header: {what}", entry, True)
        return nxt

    def _lose(self, st: _ScanState, pos: int, end: int, reason: str, entry: Optional[FrameEntry],
              salvage: bool, n0: Optional[int] = None) -> None:
        """Record ``[pos, end)`` as damage.  With ``salvage`` (recover) the whole records that a zstd
        frame there decodes to from its start are kept first — all that precedes a torn or broken
        block; nothing of a frame whose content checksum fails (which bytes are wrong is unknown).
        ``n0``: the frame was decoded already, ``st.entries[n0:]`` is what it kept.  A record left
        cut in ``st.carry`` is lost with it."""
        zstd = end - pos >= 4 and _pread(self._fd, 4, pos) == _U32.pack(ZSTD_MAGIC)
        if entry is not None:       # a fastodin data frame starts at a record boundary
            self._stream_break(st, pos, f"the data frame at offset {pos}")
        whole = False
        if n0 is None:
            n0 = len(st.entries)
            if salvage and zstd and not st.broken:
                good, problem, bad_checksum = self._decodable(pos, end)
                whole = problem is None
                if not bad_checksum and good:
                    try:
                        self._stream_frame(st, pos, end - pos, None, limit=good)
                    except DataError as exc:
                        reason = f"{reason}; {exc}"
        kept = st.entries[n0:]
        if entry is not None:
            self._bind(st, entry)
        min_lost = int(bool(st.carry) or (zstd and not whole))
        st.carry.clear()
        self.damage.append(Damage(pos, end - pos, reason, entry, kept=sum(x.n_records for x in kept),
                                  salvaged=sum(x.data_records for x in kept), min_lost=min_lost))
        if not st.indexed:
            st.broken = True

    def _stream_break(self, st: _ScanState, pos: int, what: str) -> None:
        """The zstd stream without index entries stops before ``pos``: a record it left cut is damage."""
        if st.carry:
            self.damage.append(Damage(st.frame, pos - st.frame, f"the stream ends inside a record at {what} "
                                      f"({len(st.carry)} bytes of it decoded)", min_lost=1))
            st.carry.clear()

    def _seek_size(self, pos: int, csize: int, content: Optional[int]) -> Optional[int]:
        """Decompressed size the seek table (without consolidated index) gives the zstd frame at
        ``pos``, the output cap of a frame without declared size; None without a table or entry.
        The frame describes itself: a table that sizes it otherwise is noted and no longer used."""
        if self._seek is None:
            return None
        starts, csizes, dsizes = self._seek
        k = int(np.searchsorted(starts, pos))
        if k >= starts.shape[0] or int(starts[k]) != pos:
            return None
        if int(csizes[k]) != csize or (content is not None and int(dsizes[k]) != content):
            self.notes.append(f"the seek table sizes the zstd frame at offset {pos} as {int(csizes[k])} / "
                              f"{int(dsizes[k])} bytes, the frame says {csize} / {'?' if content is None else content}: "
                              "seek table ignored")
            self._seek = None
            return None
        return int(dsizes[k])

    def _stream_frame(self, st: _ScanState, pos: int, csize: int, content: Optional[int],
                      limit: Optional[int] = None) -> int:
        """Decode the zstd frame at ``pos`` (``csize`` bytes, no usable index entry) block by block,
        never whole, cutting its records into entries of about RAW_CHUNK bytes; returns its
        decompressed size.  Output is capped at min(declared size, seek-table size, max_frame_size)
        (LimitError / CorruptFrameError past it).  ``limit`` (salvage of a torn or damaged frame):
        use only its first ``limit`` bytes, which are known to decode."""
        what = f"zstd frame at offset {pos} (no index entry)"
        salvage = limit is not None
        if content is not None and content > self._max and not salvage:
            raise LimitError(f"{what}: its header says {content} bytes > max_frame_size={self._max} "
                             "(open(path, max_frame_size=N) reads bigger frames)", offset=pos, length=content, limit=self._max)
        seek = None if salvage else self._seek_size(pos, csize, content)
        expect = content if content is not None else seek
        cap = min(self._max, expect) if expect is not None else self._max
        if limit is not None:
            cap = expect = limit
        st.owed += csize
        got = 0
        carried = len(st.carry)
        n0 = len(st.entries)
        try:
            for piece in self._block_pieces(pos, pos + csize):
                if got + len(piece) > cap:
                    if salvage:
                        piece = piece[:cap - got]
                    elif cap == self._max:
                        raise LimitError(f"{what}: decompresses to more than max_frame_size={self._max} bytes "
                                         "(open(path, max_frame_size=N) reads bigger frames)", offset=pos, limit=self._max)
                    else:
                        raise CorruptFrameError(f"{what}: decompresses to more than the {cap} bytes its "
                                                f"{'header' if content is not None else 'seek table'} says", offset=pos)
                if not st.carry:
                    st.frame, st.lead = pos, got
                st.carry += piece
                got += len(piece)
                if len(st.carry) >= RAW_CHUNK:
                    self._stream_cut(st, pos, got)
                if salvage and got >= cap:
                    break
        except zstandard.ZstdError as exc:
            self._stream_cut(st, pos, got)     # the whole records decoded before the error
            cls = ChecksumError if "checksum" in str(exc).lower() else CorruptFrameError
            raise cls(f"{what} is corrupt after {got} decompressed bytes: {exc}", offset=pos) from None
        self._stream_cut(st, pos, got)
        if expect is not None and got != expect:
            raise CorruptFrameError(f"{what}: decompressed to {got} bytes, its "
                                    f"{'header' if content is not None else 'seek table'} says {expect}", offset=pos)
        if not salvage and not carried and not st.carry and len(st.entries) == n0 + 1:
            e = st.entries[n0]
            if e.lead == 0 and e.decompressed_size == got and e.compressed_size == csize:
                e.lead = None    # a frame of whole records: an ordinary frame
        return got

    def _block_pieces(self, pos: int, end: int, across: bool = False) -> Iterator[bytes]:
        """Content of the zstd frame at ``pos`` block by block (at most 128 KiB each), for as long as
        it decodes: the frame header and then each whole block before ``end`` are fed to the
        decoder one at a time, so everything before a torn or broken block is delivered and a
        content-checksum mismatch raises only after the content.  ``across``: go on through the
        frames (and skippable frames) that follow, up to ``end`` or anything else."""
        while pos + 8 <= end:
            magic, ln = _U32x2.unpack(_pread(self._fd, 8, pos))
            if is_skippable(magic) and across:
                pos += 8 + ln
                continue
            if magic != ZSTD_MAGIC:
                return
            hsize, _content, checksum = zstd_frame_header(_pread(self._fd, 18, pos))
            dobj = zstandard.ZstdDecompressor().decompressobj()
            dobj.decompress(_pread(self._fd, hsize, pos))
            p = pos + hsize
            last = False
            while not last:
                if p + 3 > end:
                    return
                bh = int.from_bytes(_pread(self._fd, 3, p), "little")
                btype, bsize, last = (bh >> 1) & 3, bh >> 3, bool(bh & 1)
                n = 3 + (1 if btype == 1 else bsize)
                if btype == 3 or bsize > (1 << 17) or p + n > end:
                    return
                piece = dobj.decompress(_pread(self._fd, n, p))
                if piece:
                    yield piece
                p += n
            if checksum:
                if p + 4 > end:
                    return
                dobj.decompress(_pread(self._fd, 4, p))     # a mismatch raises here
                p += 4
            if not across:
                return
            pos = p

    def _stream_cut(self, st: _ScanState, pos: int, got: int) -> None:
        """Cut the whole records in ``st.carry`` into one entry; keep the cut record's bytes."""
        buf = st.carry
        if not buf:
            return
        try:
            s = scan(buf, max_record_size=self._max)
        except LimitError as exc:
            raise LimitError(f"zstd frame at offset {pos} (stream offset {st.soff + (exc.offset or 0)}): {exc}",
                             offset=pos, length=exc.length, limit=exc.limit) from None
        if not s.count:
            return
        if self.namespace and not s.id.any() and not s.length.any():
            # resets only (a zero-filled frame): all hidden, and the namespace is cleared; the same
            # as _chunk_entry, without a Python object per record
            e = FrameEntry(len(st.entries), s.count, 0, 0, 0, 0, _fmin(s.time), _fmax(s.time))
            e.skip = range(s.count)
            st.bound.clear()
        else:
            e, bound = self._chunk_entry(buf, s, len(st.entries), st.bound)
            st.bound = bound if bound is not None else {}
        e.data_offset, e.lead, e.decompressed_size, e.stream_offset = st.frame, st.lead, s.end, st.soff
        e.compressed_size, st.owed = st.owed, 0
        st.entries.append(e)
        st.soff += s.end
        del buf[:s.end]
        if buf:
            st.frame, st.lead = pos, got - len(buf)

    def _resync(self, pos: int) -> int:
        """Offset of the next fastodin index frame at or after ``pos`` (or the file size)."""
        pat = _U32.pack(INDEX_MAGIC)
        step = 1 << 20
        while pos < self.size:
            chunk = _pread(self._fd, step + 16, pos)
            k = chunk.find(pat)
            while k >= 0 and k < step:
                if chunk[k + 8:k + 12] == INDEX_TAG or len(chunk) < k + 12:
                    return pos + k
                k = chunk.find(pat, k + 1)
            pos += step
        return self.size

    def _open_raw(self) -> None:
        """Index a raw FastPack file as virtual frames of about RAW_CHUNK bytes (vectorised scan,
        namespace rules applied per chunk), so reads stay selective and memory bounded."""
        if self.size:
            self._raw = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        data = self._raw if self._raw is not None else b""
        size = len(data)
        # file id -> reader id, for the namespace in force; None until the first reset (then every
        # id named so far is bound to itself: no second table of every name)
        bound: Optional[Dict[int, int]] = None
        pos = 0
        entries: List[FrameEntry] = []
        while pos < size:
            sc = scan(data, pos, min(size, pos + RAW_CHUNK), max_record_size=self._max)
            if sc.count == 0:   # a record bigger than the chunk, or a cut record at the end
                sc = scan(data, pos, None, max_record_size=self._max, max_records=1)
                if sc.count == 0:
                    break
            e, bound = self._chunk_entry(data, sc, len(entries), bound)
            e.data_offset = e.stream_offset = pos
            e.compressed_size = e.decompressed_size = sc.end - pos
            e.names = []        # bound while scanning: the per-definition tuples are not kept
            entries.append(e)
            pos = sc.end
        if pos < size:
            self.damage.append(Damage(pos, size - pos, "file ends inside a record (cut or crashed writer)"))
        self.frames = entries
        self.complete = pos == size

    def _raw_vid(self, cid: int, name: str) -> int:
        """Reader id of file id ``cid`` bound to ``name`` (and bound now): the id itself for its
        first name, a virtual id ``(k << 32) | cid`` for each other name a reset gave it."""
        vid = self.ids.get(name)
        if vid is not None and vid & _ID_MASK == cid:
            return vid
        more = self._name_more.get(name)
        if more is not None and cid in more:
            return more[cid]
        if cid in self.names:
            self._vid_next += 1
            vid = (self._vid_next << 32) | cid
        else:
            vid = cid
        self._bind_name(vid, name)
        return vid

    def _chunk_entry(self, data: Any, sc: Any, frame_no: int,
                     bound: Optional[Dict[int, int]]) -> Tuple[FrameEntry, Optional[Dict[int, int]]]:
        """Index entry (without offsets and sizes) of the records ``sc`` (a scan of ``data``) of a
        raw stream or of a data frame without index entry, under the namespace rules: definitions
        (first record of an unbound id; one named ``""`` or ``"0"`` binds nothing and is hidden, as
        in Perl), resets (id 0 with b"" or b"0": hidden, they clear ``bound``) and writer metadata.
        An id that a reset re-bound to another name gets a virtual reader id (``e.remap``).
        ``bound`` is the namespace in force (file id -> reader id; None: no reset yet, every id in
        ``names`` is bound to itself); returns the entry and the namespace after the chunk.

        Vectorised: the Python work is one step per definition, never per record or reset."""
        if not self.namespace:
            return self._plain_entry(sc, frame_no), bound
        ids, lens, offs = sc.id, sc.length, sc.offset
        n = ids.shape[0]
        falsy = lens == 0                          # payload b"" or b"0"
        one = np.flatnonzero(lens == 1)
        if one.shape[0]:
            falsy[one] = np.frombuffer(data, np.uint8)[offs[one]] == 0x30
        zero = ids == 0
        reset = zero & falsy
        rpos = np.flatnonzero(reset)
        nres = int(rpos.shape[0])
        user = ~zero
        # records before the first reset whose id is bound from the previous chunk: data
        end0 = int(rpos[0]) if nres else n
        carried: List[int] = []
        table = self.names if bound is None else bound
        if table:
            head = ids[:end0]
            carried = [c for c in np.unique(head[head != 0]).tolist() if c in table]
        if carried:
            ca = np.array(carried, np.int64)
            user[:end0] &= ~np.isin(ids[:end0], ca)
        # every other user record, grouped by (segment between resets, id), in file order
        seg = (np.cumsum(reset) - reset) if nres else None
        pos = np.flatnonzero(user)
        key = ids[pos].astype(np.int64)
        if seg is not None:
            key |= seg[pos].astype(np.int64) << 32
        order = np.argsort(key, kind="stable")
        skey, spos = key[order], pos[order]
        m = int(spos.shape[0])
        first = np.ones(m, bool)
        first[1:] = skey[1:] != skey[:-1]
        gid = np.cumsum(first) - 1
        # rank: truthy records so far in the group; 0 = swallowed (a definition binding nothing),
        # the first truthy one is the definition, every later record is data
        truthy = ~falsy[spos]
        ct = np.cumsum(truthy)
        rank = ct - (ct - truthy)[first][gid]
        is_def = truthy & (rank == 1)
        dpos = spos[is_def]
        dcid = ids[dpos]
        names: List[Tuple[int, int, str]] = []
        dvid: List[int] = []
        by_id, by_name = self.names, self.ids
        for cid, p, o, ln in zip(dcid.tolist(), dpos.tolist(), offs[dpos].tolist(), lens[dpos].tolist()):
            name = name_from_bytes(data[o:o + ln])
            vid = by_name.get(name)
            if vid is None and cid not in by_id:    # fast path of _raw_vid: a new id, a new name
                by_id[cid] = name
                by_name[name] = vid = cid
            elif vid is None or vid & _ID_MASK != cid:
                vid = self._raw_vid(cid, name)
            names.append((vid, p, name))
            dvid.append(vid)
        # remap: (reset positions, sorted (segment << 32 | id) keys, reader ids) where they differ
        dv = np.array(dvid, np.int64)
        moved = dv != dcid
        rkeys = [skey[is_def][moved]]
        rvals = [dv[moved]]
        if carried and bound is not None:
            cv = np.array([bound[c] for c in carried], np.int64)
            mv_ = cv != ca
            rkeys.append(ca[mv_])
            rvals.append(cv[mv_])
        rk = np.concatenate(rkeys)
        remap = None
        if rk.shape[0]:
            ro = np.argsort(rk, kind="stable")
            remap = (rpos, rk[ro], np.concatenate(rvals)[ro])
        # the namespace in force after the chunk
        if seg is not None:     # resets: the namespace is what the last segment defined
            last = seg[dpos] == nres
            bound = dict(zip(dcid[last].tolist(), dv[last].tolist()))
        elif bound is not None:
            bound.update(zip(dcid.tolist(), dvid))
        # writer metadata: id-0 records (not resets) starting with {"fastodin":
        meta: List[Tuple[float, int, bytes]] = []
        tl = len(_META_TAG)
        mk = np.flatnonzero(zero & (lens >= tl))
        if mk.shape[0]:
            mk = mk[np.frombuffer(data, np.uint8)[offs[mk]] == _META_TAG[0]]
            for k, o, ln in zip(mk.tolist(), offs[mk].tolist(), lens[mk].tolist()):
                if data[o:o + tl] == _META_TAG:
                    meta.append((float(sc.time[k]), k, bytes(data[o:o + ln])))
        hidden = [rpos, spos[rank == 0], dpos]
        if meta:
            hidden.append(np.array([k for _t, k, _p in meta], np.int64))
        skip = np.sort(np.concatenate(hidden)).astype(np.int32)
        keep = np.ones(n, bool)
        keep[skip] = False
        i = ids if remap is None else _remap_ids(ids, remap)
        channels = _channel_stats(sc.time[keep], i[keep], lens[keep])
        e = FrameEntry(frame_no, n, 0, 0, 0, 0,
                       _fmin(sc.time) if n else 0.0, _fmax(sc.time) if n else 0.0,
                       0, channels, names, meta)
        e.skip = skip
        e.remap = remap
        return e, bound

    def _plain_entry(self, sc: Any, frame_no: int) -> FrameEntry:
        """Index entry of records read without a namespace: every record is data."""
        n = sc.count
        e = FrameEntry(frame_no, n, 0, 0, 0, 0, _fmin(sc.time) if n else 0.0, _fmax(sc.time) if n else 0.0, 0,
                       _channel_stats(sc.time, sc.id, sc.length), [], [])
        return e

    def _bind_name(self, cid: int, name: str, latest: bool = False) -> None:
        """Bind reader id ``cid`` to ``name``: ``names``, ``ids`` (a name's first id; with ``latest``,
        as for a writer's index, its latest), ``_name_more`` (every id of a name bound to several),
        ``_real_ids``."""
        names, ids = self.names, self.ids
        if cid > _ID_MASK and cid not in names:
            fid = cid & _ID_MASK
            real = self._real_ids.get(fid)
            if real is None:
                real = self._real_ids[fid] = [fid]
            real.append(cid)
        names[cid] = name
        cur = ids.get(name)
        if cur is None:
            ids[name] = cid
        elif cur != cid:
            every = self._name_more.get(name)
            if every is None:
                every = self._name_more[name] = {cur & _ID_MASK: cur}
            every.setdefault(cid & _ID_MASK, cid)
            if latest and cid <= _ID_MASK:
                ids[name] = cid

    def _apply_index(self) -> None:
        metas = []
        lost_entries = [d.entry for d in self.damage if d.entry is not None]
        for e in chain(self.frames, lost_entries):   # a lost frame's entry still names its ids
            for cid, _p, name in e.names:
                self._bind_name(cid, name, latest=self.format == "archive")
        # the writer's metadata of the frames, and the copies that the index entry of a lost
        # frame keeps of the metadata records not saved from it (tags, stream definitions)
        lost = [(d.entry, d.kept) for d in self.damage if d.entry is not None]
        for e, first in chain(((e, 0) for e in self.frames), lost):   # type: ignore[misc]
            for _t, pos, payload in e.meta:
                if pos < first:
                    continue
                try:
                    m = decode_meta(payload)
                except DataError:
                    self._meta_note(f"unreadable metadata in {e.describe()}")
                    continue
                if not isinstance(m, dict):
                    continue
                bad = meta_problem(m)
                if bad is not None:
                    self._meta_note(f"writer metadata record {pos} of {e.describe()} ignored: {bad}")
                    continue
                metas.append((m, e, pos))
        # definitions are re-emitted when they change; "seq" orders them (frames of different
        # groups may hold them out of order)
        metas.sort(key=lambda x: x[0].get("seq", 0) if isinstance(x[0].get("seq", 0), int) else 0)
        for m, e, pos in metas:
            kind = m.get("fastodin")
            if kind == "file":
                self.file_meta = m
                try:
                    self.time_base = TimeBase.from_meta(m.get(TIME_KEY))
                except DataError as exc:
                    self.notes.append(f"file metadata: {exc}; times read as stored")
                    self.time_base = None
                self.tags = dict(m.get("tags") or {})
            elif kind == "stream":
                self.streams[m["id"]] = m
                for role, ch in (m.get("channels") or {}).items():
                    self.channel_stream[ch] = (m["id"], role)
                    lay = (m.get("layouts") or {}).get(role)
                    if lay and lay.get("fields"):
                        try:
                            self.layouts[ch] = Layout.from_json(lay)
                        except DataError as exc:
                            self._meta_note(f"stream {m['id']!r} (record {pos} of {e.describe()}), "
                                            f"{role} layout ignored: {exc}")
            elif kind == "channel":
                try:
                    self.layouts[m["name"]] = Layout.from_json(m["layout"])
                except DataError as exc:
                    self._meta_note(f"channel {m['name']!r} (record {pos} of {e.describe()}): layout ignored: {exc}")

    def _meta_note(self, note: str) -> None:
        """Note a metadata record the reader could not use (the data still reads): the first
        ``_MAX_META_NOTES`` in full, then one running count."""
        self.meta_ignored += 1
        more = self.meta_ignored - _MAX_META_NOTES
        if more <= 0:
            self.notes.append(note)
            return
        if more == 1:
            self._more_note = len(self.notes)
            self.notes.append("")
        self.notes[self._more_note] = f"... and {more} more metadata records ignored"

    # ---- frame access ---------------------------------------------------------------------------
    def _dctx(self) -> Any:
        """This thread's zstd decompressor (they are not thread-safe)."""
        dctx = getattr(self._tls, "d", None)
        if dctx is None:
            dctx = self._tls.d = zstandard.ZstdDecompressor()
        return dctx

    def _decompress(self, raw: bytes, what: Any, offset: int, expect: int) -> bytes:
        """Content of the one zstd frame that fills ``raw`` exactly (bytes after its end are
        damage) and must decompress to ``expect`` bytes.  The output never exceeds
        min(declared size, ``expect``, max_frame_size): a bomb stops at the cap."""
        try:
            content = zstd_frame_header(raw[:18])[1]
            used = zstd_frame_size(lambda o, n: raw[o:o + n], 0, len(raw))
        except DataError as exc:
            raise CorruptFrameError(f"{_what(what)}: {exc}", offset=offset) from None
        if used != len(raw):
            raise CorruptFrameError(f"{_what(what)}: its zstd frame ends after {used} of the {len(raw)} bytes its "
                                    f"index entry gives it ({len(raw) - used} bytes unaccounted for)",
                                    offset=offset, length=len(raw))
        for size, src in ((content, "its header"), (expect, "its index entry")):
            if size is not None and size > self._max:
                raise LimitError(f"{_what(what)}: {src} says {size} bytes > max_frame_size={self._max} "
                                 "(open(path, max_frame_size=N) reads bigger frames)",
                                 offset=offset, length=size, limit=self._max)
        if content is not None and content != expect:
            raise CorruptFrameError(f"{_what(what)}: its header says {content} bytes, its index entry {expect}",
                                    offset=offset)
        try:
            if content is not None:
                data = self._dctx().decompress(raw)     # allocates exactly `content` bytes
            else:
                data = self._dctx().stream_reader(raw, read_across_frames=False).read(expect + 1)
        except zstandard.ZstdError as exc:
            cls = ChecksumError if "checksum" in str(exc).lower() else CorruptFrameError
            raise cls(f"{_what(what)} is corrupt: {exc}", offset=offset) from None
        if len(data) != expect:
            got = f"more than {expect}" if len(data) > expect else str(len(data))
            raise CorruptFrameError(f"{_what(what)}: decompressed to {got} bytes, its index entry says {expect}",
                                    offset=offset)
        return data

    def frame_data(self, e: FrameEntry) -> bytes:
        """Decompressed FastPack bytes of one frame (zstd checksum verified)."""
        if self.format == "fastpack":
            if self._raw is None:
                return b""
            return self._raw[e.data_offset:e.data_offset + e.decompressed_size]
        if self._fd < 0:
            raise UsageError("archive is closed")
        with self._count_lock:
            self.frames_decompressed += 1
        if e.lead is not None:
            return self._segment_data(e)
        raw = _pread(self._fd, e.compressed_size, e.data_offset)
        if len(raw) != e.compressed_size:
            raise TruncatedError(f"{e.describe()}: file ends inside the frame", offset=e.data_offset)
        return self._decompress(raw, e, e.data_offset, e.decompressed_size)

    def _segment_data(self, e: FrameEntry) -> bytes:
        """Bytes of a segment: decoded from the start of its zstd frame (on into the next frames
        when its records run on), continuing where the previous segment ended when segments are
        read in order (one decoder per archive, under a lock)."""
        start = e.stream_offset
        want = e.decompressed_size
        with self._cursor_lock:
            cur, self._cursor = self._cursor, None
            if cur is None or not start - (e.lead or 0) <= cur[1] <= start:
                cur = [_PieceReader(self._block_pieces(e.data_offset, self.size, across=True)), start - (e.lead or 0)]
            parts: List[bytes] = []
            got = 0
            try:
                skip = start - cur[1]
                while skip > 0:
                    x = cur[0].read(min(skip, RAW_CHUNK))
                    if not x:
                        break
                    skip -= len(x)
                while not skip and got < want:
                    x = cur[0].read(want - got)
                    if not x:
                        break
                    parts.append(x)
                    got += len(x)
            except zstandard.ZstdError as exc:
                cls = ChecksumError if "checksum" in str(exc).lower() else CorruptFrameError
                raise cls(f"{e.describe()} is corrupt: {exc}", offset=e.data_offset) from None
            if got != want:
                raise CorruptFrameError(f"{e.describe()}: the zstd stream ends {want - got} bytes before the end of "
                                        "the segment", offset=e.data_offset)
            cur[1] = start + want
            self._cursor = cur
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _frames_data(self, frames: List[FrameEntry], ahead: int = 2) -> Iterator[Tuple[FrameEntry, bytes]]:
        """``(entry, data)`` in order; the next ``ahead`` frames are read and decompressed on
        helper threads meanwhile (zstd releases the GIL), so memory stays bounded."""
        if len(frames) < 2 or self.format == "fastpack" or any(e.lead is not None for e in frames):
            for e in frames:     # segments: one decoder reads them in order
                yield e, self.frame_data(e)
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="fastodin-unzstd")
        pending: "collections.deque[Tuple[FrameEntry, Any]]" = collections.deque()
        it = iter(frames)
        try:
            for e in it:
                pending.append((e, self._pool.submit(self.frame_data, e)))
                if len(pending) > ahead:
                    e0, f0 = pending.popleft()
                    yield e0, f0.result()
            while pending:
                e0, f0 = pending.popleft()
                yield e0, f0.result()
        finally:
            for _e, f in pending:
                f.cancel()

    def _apply_time_base(self) -> None:
        """Index time statistics in seconds (the conversion is monotonic, so pruning, ``info``
        and ``at`` agree with the converted record times)."""
        tb = self._seconds = self.time_base if not self.raw_time else None
        if tb is None:
            return
        for e in self.frames:
            e.t_min, e.t_max = tb.seconds(e.t_min), tb.seconds(e.t_max)
            e.channels = {c: (v[0], v[1], tb.seconds(v[2]), tb.seconds(v[3])) for c, v in e.channels.items()}

    def frame_columns(self, entry: FrameEntry, data: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(time, id, payload offset, payload length)`` arrays of the user records of one frame
        (definitions and the writer's metadata removed), ``data`` being :meth:`frame_data`.
        Times are seconds when the file declares a time base (unless opened ``raw_time``).
        Raises CorruptFrameError if the frame does not hold exactly the records its index says.
        Ids are reader ids (``names`` keys); in a raw file an id that a namespace reset re-bound
        to another name has a virtual id above 2**32 (its file id is ``id & 0xFFFFFFFF``).

        >>> import os, tempfile
        >>> from fastodin.archive.writer import Writer
        >>> path = os.path.join(tempfile.mkdtemp(), "c.fastpack.zst")
        >>> with Writer(path) as w:
        ...     w.write(1.5, "x", b"abcd")
        >>> with open_archive(path) as ar:
        ...     t, i, o, n = ar.frame_columns(ar.frames[0], ar.frame_data(ar.frames[0]))
        >>> t.tolist(), [ar.names[k] for k in i.tolist()], n.tolist()
        ([1.5], ['x'], [4])
        """
        t, i, o, n = self._frame_columns_raw(entry, data)
        if self._seconds is not None:
            t = self._seconds.seconds(t)
        return t, i, o, n

    def _frame_columns_raw(self, entry: FrameEntry, data: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`frame_columns` with the times as stored."""
        e = entry
        remap = e.remap
        fast = self._uniform_columns(e, data) if remap is None else None
        if fast is not None:
            return fast
        try:
            s = scan(data, max_record_size=self._max)
        except DataError as exc:
            raise CorruptFrameError(f"{e.describe()}: {exc}", offset=e.data_offset) from None
        if s.end != len(data) or s.count != e.n_records:
            raise CorruptFrameError(f"{e.describe()}: holds {s.count} records ({len(data) - s.end} stray bytes), "
                                    f"index says {e.n_records}", offset=e.data_offset)
        t, i, o, n = s.time, s.id, s.offset, s.length
        if remap is not None:
            i = _remap_ids(i, remap)
        if len(e.skip):
            keep = np.ones(t.shape[0], bool)
            keep[e.skip] = False
            return t[keep], i[keep], o[keep], n[keep]
        return t, i, o, n

    def _uniform_columns(self, e: FrameEntry, data: Any) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Fast path when the index says every data record of the frame has one payload size and
        the hidden records (definitions, metadata) open the frame: read the headers through one
        strided view and verify every length; None (use the scanner) if anything differs."""
        skip = e.skip
        k = len(skip)
        if k and skip[-1] != k - 1:
            return None
        L = -1
        for cnt, nb, _a, _b in e.channels.values():
            if cnt <= 0 or nb % cnt:
                return None
            if L < 0:
                L = nb // cnt
            elif nb // cnt != L:
                return None
        if L < 0:
            return None
        pos = 0
        size = len(data)
        for _ in range(k):
            if pos + 16 > size:
                return None
            ln = _U32.unpack_from(data, pos + 12)[0]
            pos += 16 + ln + (-ln & 7)
        stride = 16 + L + (-L & 7)
        n = e.n_records - k
        if n <= 0 or pos + n * stride != size:
            return None
        # one strided pass copies every 16-byte header; the checks then run on the compact copy
        hdr = np.ndarray((n,), dtype=_V16, buffer=data, offset=pos, strides=(stride,)).copy()
        u4 = hdr.view(np.uint32).reshape(n, 4)
        if not bool((u4[:, 3] == L).all()):
            return None
        o = np.arange(pos + 16, pos + 16 + n * stride, stride, dtype=np.int64)
        return hdr.view("<f8").reshape(n, 2)[:, 0].copy(), u4[:, 2].copy(), o, np.full(n, L, np.uint32)

    _columns = frame_columns   # the name older callers use

    # ---- selection ------------------------------------------------------------------------------
    def channel_ids(self, channels: Union[None, str, int, Iterable[Union[str, int]]]) -> Optional[set]:
        """Reader ids selected by names/globs (every id a name was bound to) or file ids (ints);
        None = every channel; unknown names select nothing."""
        if channels is None:
            return None
        if isinstance(channels, (str, int)):
            channels = [channels]
        out = set()
        for c in channels:
            if isinstance(c, int) and not isinstance(c, bool):
                out.update(self._real_ids.get(c, (c,)))
                continue
            if not isinstance(c, str):
                raise UsageError(f"channel selectors are names, globs or ids, not {type(c).__name__}")
            cid = self.ids.get(c)
            if cid is not None:
                out.update(self._ids_of(c, cid))
                continue
            for n, cid in self.ids.items():
                if _name_matches(n, c):
                    out.update(self._ids_of(n, cid))
        return out

    def _ids_of(self, name: str, cid: int) -> Iterable[int]:
        """Every reader id of ``name`` (``cid`` = ``ids[name]``)."""
        more = self._name_more.get(name)
        return (cid,) if more is None else more.values()

    def _frames_for(self, ids: Optional[set], start: Optional[float], end: Optional[float],
                    among: Optional[Iterable[int]] = None) -> List[FrameEntry]:
        """Frames holding records of ``ids`` (None: any) that may lie in ``[start, end)``, among
        frame numbers ``among`` (None: every frame).  An open bound prunes nothing (records at
        +-inf and NaN included); a channel whose time stats are NaN (only NaN times) is never pruned."""
        out = []
        pool = self.frames
        if among is not None:
            nf = len(pool)
            got = sorted(set(int(k) for k in among))
            bad = [k for k in got[:1] + got[-1:] if not 0 <= k < nf]
            if bad:
                raise UsageError(f"frames: {self.path} has frames 0..{nf - 1}, not {bad[0]}")
            pool = [pool[k] for k in got]
        if start is None and end is None:
            for e in pool:
                chans = e.channels
                if chans and (ids is None or (any(c in ids for c in chans) if len(ids) > len(chans)
                                              else any(cid in chans for cid in ids))):
                    out.append(e)
            return out
        for e in pool:
            chans = e.channels
            if ids is None:
                sel: Iterable[Tuple[int, int, float, float]] = chans.values()
            elif len(ids) > len(chans):    # loop over the smaller side
                sel = [v for c, v in chans.items() if c in ids]
            else:
                sel = [chans[c] for c in ids if c in chans]
            for c in sel:
                # "not (x < y)": a NaN statistic keeps the frame
                if (start is None or not c[3] < start) and (end is None or not c[2] >= end):
                    out.append(e)
                    break
        return out

    @staticmethod
    def _mask(t: np.ndarray, i: np.ndarray, ids: Optional[set], start: Optional[float], end: Optional[float]) -> Optional[np.ndarray]:
        m = None
        if ids is not None:
            if len(ids) == 1:
                m = i == next(iter(ids))
            else:
                m = np.isin(i, np.fromiter(ids, np.int64))
        if start is not None:
            m = (t >= start) if m is None else (m & (t >= start))
        if end is not None:
            m = (t < end) if m is None else (m & (t < end))
        return m

    def _one_channel(self, channel: Union[str, int], what: str) -> set:
        """Ids of exactly one channel (several ids when one name is bound to several)."""
        ids = self.channel_ids(channel)
        if ids and len(ids) > 1:
            names = {self.names.get(c) for c in ids}
            if len(names) == 1 and None not in names:
                return ids
        if not ids or len(ids) != 1:
            raise UsageError(f"{what}: {channel!r} must name exactly one channel "
                             f"(known: {sorted(self.ids)[:20]})")
        return ids

    # ---- public reading -------------------------------------------------------------------------
    def records(self, channels: Union[None, str, Iterable[str]] = None, start: Optional[float] = None,
                end: Optional[float] = None, order: str = "file") -> Iterator[Record]:
        """Records (``fastodin.codec.Record`` with ``name``) of the selected channels (names or
        globs) with ``start <= time < end``.  Only frames that overlap are decompressed, one
        at a time in file order (``order="time"``: merged by time, frames opened lazily).
        """
        if order not in ("file", "time"):
            raise UsageError(f"order must be 'file' or 'time', not {order!r}")
        ids = self.channel_ids(channels)
        if ids is not None and not ids:
            return iter(())
        frames = self._frames_for(ids, start, end)
        if order == "file" or len(frames) <= 1:
            return self._iter_file(frames, ids, start, end)
        return self._iter_time(frames, ids, start, end)

    def _frame_records(self, e: FrameEntry, ids: Optional[set], start: Optional[float],
                       end: Optional[float], data: Any = None) -> Iterator[Record]:
        """Records of one frame as a C-level iterator (no Python frame per record)."""
        if data is None:
            data = self.frame_data(e)
        t, i, o, n = self.frame_columns(e, data)
        m = self._mask(t, i, ids, start, end)
        if m is not None:
            t, i, o, n = t[m], i[m], o[m], n[m]
        names = self.names
        top = max(names, default=0)
        hi = int(i.max(initial=0))
        il = i.tolist()
        if hi > _ID_MASK:       # virtual ids (raw file, id re-bound after a reset)
            nl = [names.get(k) for k in il]
            il = (i & _ID_MASK).tolist()
        elif top < 65536 and hi < 65536:
            table = self._name_table
            if table is None or table.shape[0] <= max(top, hi):
                table = np.empty(max(top, hi) + 1, object)
                table[:] = [names.get(k) for k in range(table.shape[0])]
                self._name_table = table
            nl = table[i].tolist()
        else:
            nl = [names.get(k) for k in il]
        payloads = map(memoryview(data).__getitem__, map(slice, o.tolist(), (o + n).tolist()))
        return map(tuple.__new__, repeat(Record), zip(t.tolist(), il, payloads, nl))

    def _iter_file(self, frames: List[FrameEntry], ids: Optional[set], start: Optional[float],
                   end: Optional[float]) -> Iterator[Record]:
        return chain.from_iterable(self._frame_records(e, ids, start, end, data)
                                   for e, data in self._frames_data(frames))

    def _iter_time(self, frames: List[FrameEntry], ids: Optional[set], start: Optional[float],
                   end: Optional[float]) -> Iterator[Record]:
        order = sorted(frames, key=lambda e: (_tkey(e.t_min), e.frame_no))
        tmin = [_tkey(e.t_min) for e in order]
        if all(tmin[k] > order[k - 1].t_max for k in range(1, len(order))):
            # disjoint frames (each sorted): their concatenation is in time order
            yield from self._iter_file(order, ids, start, end)
            return
        heap: List[Tuple[float, int, int, Record, Iterator[Record]]] = []
        nxt = 0
        seq = 0

        def push(it: Iterator[Record], fno: int) -> None:
            nonlocal seq
            r = next(it, None)
            if r is not None:
                heapq.heappush(heap, (_tkey(r.time), fno, seq, r, it))
                seq += 1

        while nxt < len(order) or heap:
            while nxt < len(order) and (not heap or tmin[nxt] <= heap[0][0]):
                e = order[nxt]
                nxt += 1
                push(self._frame_records(e, ids, start, end), e.frame_no)
            if not heap:
                continue
            _t, fno, _s, r, it = heapq.heappop(heap)
            yield r
            push(it, fno)

    def _odin_set(self, channel: Any) -> Optional[int]:
        """The ODIN set ``channel`` names -- its DATA channel ``odin/set/0xSSSS``, or, when no channel
        has that name or id, the set id as a hex string ``"0xSSSS"`` or an int -- if the recording
        holds that set; else None."""
        from ..odin.mapping import set_channel, set_of_channel

        sid = set_of_channel(channel)
        if sid is None and channel not in self.ids and channel not in self.names:
            if isinstance(channel, str) and channel[:2] in ("0x", "0X") and 2 < len(channel) <= 6:
                try:
                    sid = int(channel, 16)
                except ValueError:
                    sid = None
            elif isinstance(channel, int) and not isinstance(channel, bool) and 0 <= channel <= 0xFFFF \
                    and channel not in self._real_ids:
                sid = channel
        return sid if sid is not None and set_channel(sid) in self.ids else None

    def read_set(self, set: Union[str, int], start: Optional[float] = None, end: Optional[float] = None,
                 odin_db: Any = None) -> Any:
        """One ODIN set's DATA records with ``start <= time < end`` decoded: the
        :class:`~fastodin.odin.table.SetTable` that :func:`fastodin.odin.decode` gives for them.
        ``set``: its channel ``"odin/set/0x98A8"``, the hex string ``"0x98A8"`` or the int ``0x98A8``;
        ``odin_db`` as in decode (else the recording's stored definitions and identifier packets).
        DataError when no definition types the set (``read(..., dtype="u1")`` gives its packets).

        >>> import fastodin, os, tempfile
        >>> from fastodin.odin import Simulator
        >>> from fastodin.odin.mapping import OdinToFastPack, WriterSink
        >>> p = os.path.join(tempfile.mkdtemp(), "o.fastpack.zst")
        >>> with fastodin.Writer(p) as w:
        ...     conv = OdinToFastPack(WriterSink(w))
        ...     conv.add_many(Simulator(seed=1).packets(duration=0.2))
        ...     _ = conv.close()
        >>> with fastodin.open(p) as ar:
        ...     tab = ar.read_set("0x98A8")
        ...     t, v = ar.read(0x98A8, start=0.1)         # a structured array, the same decoding
        >>> tab["sensors.counter"][:3].tolist(), v["sensors.counter"][:1].tolist(), t[:1].tolist()
        ([2000, 2003, 2006], [2030], [0.1])
        """
        return self._read_set(set, start, end, odin_db)[1]

    def _read_set(self, set: Any, start: Optional[float], end: Optional[float], odin_db: Any = None) -> Tuple[np.ndarray, Any]:
        from ..odin.decode import decode_archive_set

        sid = self._odin_set(set)
        if sid is None:
            raise UsageError(f"{set!r} is not an ODIN set of this recording (sets: "
                             f"{sorted(n[9:] for n in self.ids if n.startswith('odin/set/') and n.count('/') == 2)})")
        t, tab = decode_archive_set(self, sid, start, end, odin_db)
        if tab is None:
            raise DataError(f"ODIN set 0x{sid:04X}: no definition types it (no identifier packets, stored "
                            "definitions or odin_db); read(..., dtype='u1') gives the raw packets", channel=set)
        return t, tab

    def read(self, channel: Union[str, int], start: Optional[float] = None, end: Optional[float] = None,
             dtype: Any = None, *, frames: Optional[Iterable[int]] = None) -> Tuple[np.ndarray, Any]:
        """``(times, values)`` of one channel with ``start <= time < end`` as numpy arrays.

        ``values`` is typed by the channel's layout (a structured array, or the plain array given
        to ``write_many``), by ``dtype`` if given, else an ``(n, size)`` uint8 array (an object
        array of bytes when sizes differ).  An ODIN set (``"odin/set/0x98A8"``, ``"0x98A8"`` or
        ``0x98A8``) is decoded as :func:`fastodin.odin.decode` does: a structured array with
        ``timestamp``, ``ticks``, ``time``, ``sequence`` and one field per entry (``read_set``
        gives the SetTable).  An empty selection is an empty array of the same dtype.  ``frames``: read only these frame
        numbers (positions in ``frames``, e.g. a ``range``; a dataset partition), None = all.
        """
        sid = self._odin_set(channel)
        if sid is not None:
            from ..odin.mapping import set_channel

            if dtype is None:
                from ..odin.decode import decode_archive_set

                t, tab = decode_archive_set(self, sid, start, end, frames=frames)
                if tab is not None:
                    return t, tab.to_numpy()
            channel = set_channel(sid)       # untyped (no definition) or an explicit dtype: the packets
        ids = self._one_channel(channel, "read()")
        name = self.names.get(next(iter(ids)))
        layout = self.layouts.get(name) if name is not None else None
        times: List[np.ndarray] = []
        chunks: List[np.ndarray] = []
        objs: List[Any] = []
        width = -1
        for e, data in self._frames_data(self._frames_for(ids, start, end, frames)):
            t, i, o, n = self.frame_columns(e, data)
            m = self._mask(t, i, ids, start, end)
            t, o, n = t[m], o[m], n[m]
            if not t.shape[0]:
                continue
            times.append(t)
            L = int(n[0])
            if width != -2 and bool((n == L).all()) and (width in (-1, L)):
                width = L
                v = _rows(data, o, L).copy().view(np.uint8).reshape(t.shape[0], L)
                chunks.append(v)
            else:
                if width >= 0:
                    objs = [bytes(row) for c in chunks for row in c]
                    chunks = []
                width = -2
                mv = memoryview(data)
                objs.extend(bytes(mv[a:a + b]) for a, b in zip(o.tolist(), n.tolist()))
        tt = np.concatenate(times) if times else np.empty(0, np.float64)
        if width == -2:
            vals = np.empty(len(objs), object)
            vals[:] = objs
            if layout is not None:
                out = np.empty(len(objs), object)
                out[:] = [layout.unpack(b) for b in objs]
                return tt, out
            return tt, vals
        target = np.dtype(dtype) if dtype is not None else None
        if width == -1:   # nothing selected: empty columns of the payload size the index knows
            width = self._index_width(ids)
            if width < 0:
                width = layout.dtype.itemsize if layout is not None and layout.fixed and target is None else \
                    (target.itemsize if target is not None else 0)
        raw = np.concatenate(chunks) if chunks else np.empty((0, width), np.uint8)
        if target is None and layout is not None and layout.fixed:
            target = layout.dtype
            if raw.shape[0] and raw.shape[1] != target.itemsize:   # (no records: an empty typed array)
                raise DataError(f"channel {name!r}: payloads of {raw.shape[1]} bytes, its layout says "
                                f"{target.itemsize}; read it with dtype=... or as raw bytes", channel=name)
            arr = raw.reshape(-1).view(target) if raw.size else np.empty(0, target)
            if target.names == ("value",):
                return tt, arr["value"]
            return tt, arr
        if target is None and layout is not None:
            out = np.empty(raw.shape[0], object)
            out[:] = [layout.unpack(row.tobytes()) for row in raw]
            return tt, out
        if target is None:
            return tt, raw
        if raw.shape[1] % target.itemsize:
            raise UsageError(f"read(): payloads of {raw.shape[1]} bytes do not divide into {target}")
        arr = raw.reshape(-1).view(target) if raw.size else np.empty(0, target)
        per = raw.shape[1] // target.itemsize
        return tt, (arr.reshape(raw.shape[0], per) if per != 1 else arr)

    def _index_width(self, ids: set) -> int:
        """The one payload size of channel ``ids`` per the index, or -1 (unknown or several)."""
        sizes = set()
        for e in self.frames:
            for cid in ids:
                c = e.channels.get(cid)
                if c is not None:
                    if not c[0] or c[1] % c[0]:
                        return -1
                    sizes.add(c[1] // c[0])
        return sizes.pop() if len(sizes) == 1 else -1

    def columns(self, channels: Union[None, str, Iterable[str]] = None, start: Optional[float] = None,
                end: Optional[float] = None) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
        """Every selected channel as ``{name: (times, payloads)}``, each frame decompressed once.

        ``payloads`` is an ``(n, size)`` uint8 array for a channel whose payloads all have one
        size (view it with ``.view(dtype)``), else an object array of bytes.  Typed values per
        layout come from :meth:`read`.
        """
        ids = self.channel_ids(channels)
        frames = self._frames_for(ids, start, end)
        # output key per id: its name (ids that share a name share one output, in file order)
        key_of: Dict[int, str] = {}

        def key(cid: int) -> str:
            k = key_of.get(cid)
            if k is None:
                k = key_of[cid] = self.names.get(cid, "0" if cid == 0 else f"#{cid}")
            return k

        # exact sizes from the index when no time range is given: fill preallocated arrays
        total: Dict[str, int] = {}
        if start is None and end is None:
            for e in frames:
                for cid, c in e.channels.items():
                    if ids is None or cid in ids:
                        total[key(cid)] = total.get(key(cid), 0) + c[0]
        filled: Dict[str, int] = {}
        outs: Dict[str, List[Any]] = {}      # name -> [times, values or None, list of pieces]
        for e, data in self._frames_data(frames):
            t, i, o, n = self.frame_columns(e, data)
            m = self._mask(t, i, None, start, end)
            if m is not None:
                t, i, o, n = t[m], i[m], o[m], n[m]
            if not t.shape[0]:
                continue
            groups: Dict[str, List[int]] = {}
            for c in e.channels:
                if ids is None or c in ids:
                    groups.setdefault(key(c), []).append(c)
            # round-robin frames (ids repeat with a short period): channel k is a strided slice
            per = None
            nch = len(e.channels)
            if 1 < nch <= 64 and m is None and t.shape[0] >= nch:
                head = i[:nch].tolist()
                if len(set(head)) == nch and bool((i[nch:] == i[:-nch]).all()):
                    per = {c: k for k, c in enumerate(head)}
            for gk, gids in groups.items():
                cid = gids[0]
                if len(gids) > 1:
                    sel = np.flatnonzero(np.isin(i, np.array(gids, np.int64)))
                    ct, co, cn = t[sel], o[sel], n[sel]
                elif nch == 1:
                    ct, co, cn = t, o, n
                elif per is not None and cid in per:
                    k = per[cid]
                    ct, co, cn = t[k::nch], o[k::nch], n[k::nch]
                else:
                    sel = np.flatnonzero(i == cid)
                    ct, co, cn = t[sel], o[sel], n[sel]
                cnt = ct.shape[0]
                if not cnt:
                    continue
                L = int(cn[0])
                if bool((cn == L).all()):
                    v = _rows(data, co, L)
                else:
                    mv = memoryview(data)
                    v = np.empty(cnt, object)
                    v[:] = [bytes(mv[a:a + b]) for a, b in zip(co.tolist(), cn.tolist())]
                slot = outs.get(gk)
                if slot is None:
                    tot = total.get(gk)
                    if tot is not None and v.dtype != object:
                        slot = outs[gk] = [np.empty(tot, np.float64), np.empty(tot, v.dtype), None]
                    else:
                        slot = outs[gk] = [None, None, []]
                    filled[gk] = 0
                if slot[2] is None and (v.dtype != slot[1].dtype or filled[gk] + cnt > slot[0].shape[0]):
                    k = filled[gk]
                    slot[2] = [(slot[0][:k], slot[1][:k])]
                if slot[2] is None:
                    k = filled[gk]
                    slot[0][k:k + cnt] = ct
                    slot[1][k:k + cnt] = v
                    filled[gk] = k + cnt
                else:
                    slot[2].append((ct, v))
        out: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        for name, (tt, vv, pieces) in outs.items():
            if pieces is not None:
                tt = np.concatenate([p[0] for p in pieces]) if pieces else np.empty(0)
                vs = [p[1] for p in pieces]
                if len({v.dtype for v in vs}) == 1 and vs[0].dtype != object:
                    vv = np.concatenate(vs)
                else:
                    vv = np.empty(tt.shape[0], object)
                    vv[:] = [row if isinstance(row, bytes) else bytes(row) for v in vs for row in v]
            else:
                k = filled[name]
                tt, vv = tt[:k], vv[:k]
            if vv.dtype != object:
                vv = vv.view(np.uint8).reshape(vv.shape[0], vv.dtype.itemsize)
            out[name] = (tt, vv)
        return out

    def chunks(self, channels: Union[None, str, Iterable[str]] = None, start: Optional[float] = None,
               end: Optional[float] = None, *, frames: Optional[Iterable[FrameEntry]] = None
               ) -> Iterator[Tuple[FrameEntry, Dict[str, Tuple[np.ndarray, np.ndarray]]]]:
        """:meth:`columns`, one frame at a time: memory stays bounded by a few frames, whatever the file.

        Yields ``(entry, {name: (times, payloads)})`` for each frame holding a selected channel
        (file order; the next frames are decompressed on helper threads meanwhile), with that
        frame's records of ``start <= time < end``; frames without such records are skipped.
        ``payloads`` is an ``(n, size)`` uint8 array when the channel's payloads in the frame
        have one size (a read-only view of the frame's data when evenly spaced), else an object
        array of bytes.  ``frames``: look only at these entries (e.g. the ones a growing file
        gained since the last look).

        >>> import os, tempfile
        >>> from fastodin.archive.writer import Writer
        >>> path = os.path.join(tempfile.mkdtemp(), "k.fastpack.zst")
        >>> with Writer(path) as w:
        ...     w.write_many([0.0, 1.0, 2.0], "x", [b"ab", b"cd", b"ef"])
        >>> with open_archive(path) as ar:
        ...     [(e.frame_no, t.tolist(), p.tobytes()) for e, c in ar.chunks("x", start=1.0) for t, p in c.values()]
        [(0, [1.0, 2.0], b'cdef')]
        """
        ids = self.channel_ids(channels)
        if ids is not None and not ids:
            return
        sel = self._frames_for(ids, start, end, None if frames is None else [e.frame_no for e in frames])
        for e, data in self._frames_data(sel):
            fast = self._uniform_columns(e, data) if e.remap is None else None    # as frame_columns
            t, i, o, n = fast if fast is not None else self._frame_columns_raw(e, data)
            if self._seconds is not None:
                t = self._seconds.seconds(t)
            m = self._mask(t, i, None, start, end)
            if m is not None:
                t, i, o, n = t[m], i[m], o[m], n[m]
            groups: Dict[str, List[int]] = {}
            for cid in e.channels:
                if ids is None or cid in ids:
                    groups.setdefault(self.names.get(cid, "0" if cid == 0 else f"#{cid}"), []).append(cid)
            out: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
            runs: Optional[Dict[int, List[Tuple[int, int]]]] = None
            if len(e.channels) > 1 and t.shape[0]:
                # channels written in batches lie in a few runs: find them in one pass
                cut = np.flatnonzero(i[1:] != i[:-1]) + 1
                if cut.shape[0] < 256:
                    bounds = [0] + cut.tolist() + [t.shape[0]]
                    runs = {}
                    for a, b, cid in zip(bounds[:-1], bounds[1:], i[bounds[:-1]].tolist()):
                        runs.setdefault(cid, []).append((a, b))
            for name, gids in groups.items():
                spans = None if runs is None else sorted(r for g in gids for r in runs.get(g, ()))
                if len(groups) == 1 and len(e.channels) == len(gids):
                    ct, co, cn = t, o, n
                elif spans is not None and len(spans) == 1:
                    a, b = spans[0]
                    ct, co, cn = t[a:b], o[a:b], n[a:b]
                    if fast is not None and m is None and b > a:
                        # one size, evenly spaced (the fast path checked every header): a view
                        L = int(cn[0])
                        st = int(co[1] - co[0]) if b - a > 1 else L + (-L & 7) + 16
                        base = np.frombuffer(data, np.uint8)
                        out[name] = (ct, np.lib.stride_tricks.as_strided(base[int(co[0]):], shape=(b - a, L),
                                                                         strides=(st, 1), writeable=False))
                        continue
                else:
                    if spans is not None:
                        w = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.empty(0, np.int64)
                    else:
                        w = np.flatnonzero(i == gids[0]) if len(gids) == 1 else np.flatnonzero(np.isin(i, gids))
                    ct, co, cn = t[w], o[w], n[w]
                k = ct.shape[0]
                if not k:
                    continue
                L = int(cn[0])
                if bool((cn == L).all()):
                    st = int(co[1] - co[0]) if k > 1 else L
                    if L and st >= L and (k == 1 or bool((co[1:] - co[:-1] == st).all())):
                        base = np.frombuffer(data, np.uint8)
                        v = np.lib.stride_tricks.as_strided(base[int(co[0]):], shape=(k, L), strides=(st, 1),
                                                            writeable=False)
                    else:
                        v = _rows(data, co, L).view(np.uint8).reshape(k, L) if L else np.zeros((k, 0), np.uint8)
                else:
                    mv = memoryview(data)
                    v = np.empty(k, object)
                    v[:] = [bytes(mv[a:a + b]) for a, b in zip(co.tolist(), cn.tolist())]
                out[name] = (ct, v)
            if out:
                yield e, out

    def _channel_frames(self, ids: set) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frame numbers, t_min, t_max) of the frames holding ``ids`` (NaN-only stats are NaN)."""
        key = frozenset(ids)
        got = self._by_channel.get(key)
        if got is None:
            idx: List[int] = []
            lo: List[float] = []
            hi: List[float] = []
            for k, e in enumerate(self.frames):
                a, b, hit = math.nan, math.nan, False
                for cid in ids:
                    c = e.channels.get(cid)
                    if c is not None:
                        a, b, hit = _lo(a, c[2]), _hi(b, c[3]), True
                if hit:
                    idx.append(k)
                    lo.append(a)
                    hi.append(b)
            got = (np.array(idx, np.int64), np.array(lo, np.float64), np.array(hi, np.float64))
            self._by_channel[key] = got
        return got

    def at(self, t: float, channel: Union[str, int], mode: str = "nearest") -> Optional[Record]:
        """The record of ``channel`` nearest to time ``t`` (``mode="before"``: latest at or before
        ``t``; ``"after"``: earliest at or after).  None if there is none.  Ties go to the earlier.
        Records with a NaN time are never returned (they are nowhere in time).
        """
        if mode not in ("nearest", "before", "after"):
            raise UsageError(f"mode must be 'nearest', 'before' or 'after', not {mode!r}")
        ids = self._one_channel(channel, "at()")
        idx, lo, hi = self._channel_frames(ids)
        if not idx.shape[0]:
            return None
        # lower bound of |record time - t| in each frame; visit frames by that bound and stop
        # once the bound exceeds the best distance found (correct with overlapping frames).
        with np.errstate(invalid="ignore"):
            if mode == "before":
                ok = lo <= t
                bound = np.maximum(0.0, t - hi)
            elif mode == "after":
                ok = hi >= t
                bound = np.maximum(0.0, lo - t)
            else:
                ok = ~np.isnan(lo)
                bound = np.maximum(0.0, np.maximum(lo - t, t - hi))
        bound[np.isnan(bound)] = 0.0        # inf - inf: no useful bound, visit the frame
        cand = np.flatnonzero(ok)
        cand = cand[np.argsort(bound[cand], kind="stable")]
        best = None
        one = next(iter(ids)) if len(ids) == 1 else None
        for k in cand.tolist():
            if best is not None and bound[k] > best[0][0]:
                break
            e = self.frames[int(idx[k])]
            data = self.frame_data(e)
            tt, ii, oo, nn = self.frame_columns(e, data)
            w = np.flatnonzero(ii == one) if one is not None else np.flatnonzero(np.isin(ii, np.fromiter(ids, np.int64)))
            ct = tt.take(w)
            if mode == "nearest":
                if not ct.shape[0]:
                    continue
                if math.isinf(t):
                    with np.errstate(invalid="ignore"):
                        d = np.abs(ct - t)
                    d[ct == t] = 0.0
                else:
                    d = np.abs(ct - t)
                j = int(np.argmin(d))
                dj = float(d[j])
                if dj != dj:                  # NaN times: they are nowhere in time
                    keep = ~np.isnan(ct)
                    if not keep.any():
                        continue
                    w, ct, d = w[keep], ct[keep], d[keep]
                    j = int(np.argmin(d))
                    dj = float(d[j])
                js = np.flatnonzero(d == dj)
                if js.shape[0] > 1:
                    j = int(js[np.argmin(ct.take(js))])
                key = (dj, float(ct[j]))
            else:
                sel = np.flatnonzero(ct <= t) if mode == "before" else np.flatnonzero(ct >= t)
                if not sel.shape[0]:
                    continue
                if mode == "before":
                    j = int(sel[np.argmax(ct[sel])])
                    key = (0.0 if ct[j] == t else t - float(ct[j]), -float(ct[j]))
                else:
                    j = int(sel[np.argmin(ct[sel])])
                    key = (0.0 if ct[j] == t else float(ct[j]) - t, float(ct[j]))
            if best is None or key < best[0]:
                r = int(w[j])
                o = int(oo[r])
                n = int(nn[r])
                cid = int(ii[r])
                best = (key, Record(float(ct[j]), cid & _ID_MASK, memoryview(data)[o:o + n], self.names.get(cid)))
        return None if best is None else best[1]

    # ---- summaries ------------------------------------------------------------------------------
    def _channel_totals(self) -> Iterator[Tuple[str, int, int, int, float, float, int]]:
        """``(name, id, count, bytes, first, last, frames)`` of every channel from the index, in id
        order; ids that share a name (raw files: re-bound after a reset) are one channel.
        Vectorised over every frame's channel table: no Python object per (frame, channel)."""
        cols = [channel_stat_columns(e.channels) + (np.full(len(e.channels), k, np.int64),)
                for k, e in enumerate(self.frames) if len(e.channels)]
        if not cols:
            return
        cid, cnt, nb, lo, hi, fno = (np.concatenate(c) for c in zip(*cols))
        del cols
        uid, inv = np.unique(cid, return_inverse=True)
        label_of: Dict[str, int] = {}      # name -> label number, numbered by smallest id
        names = self.names
        lab = np.empty(uid.shape[0], np.int64)
        for k, c in enumerate(uid.tolist()):
            nm = names.get(c)
            if nm is None:
                nm = "0" if c == 0 else f"#{c}"
            lab[k] = label_of.setdefault(nm, len(label_of))
        labels = list(label_of)
        del label_of
        row = lab[inv.reshape(-1)]
        order = np.argsort(row, kind="stable")
        srow = row[order]
        starts = np.flatnonzero(np.concatenate(([True], srow[1:] != srow[:-1])))
        first_id = np.minimum.reduceat(cid[order], starts)
        counts = np.add.reduceat(cnt[order], starts)
        nbytes = np.add.reduceat(nb[order], starts)
        t0 = np.fmin.reduceat(lo[order], starts)     # NaN (a channel of NaN times only) never wins
        t1 = np.fmax.reduceat(hi[order], starts)
        # frames: distinct (channel, frame) pairs
        nfr = np.bincount(np.unique(row * len(self.frames) + fno) // len(self.frames), minlength=len(labels))
        del cid, cnt, nb, lo, hi, fno, uid, inv, lab, row, order, srow, starts
        first_id &= _ID_MASK
        step = 4096     # Python objects for a few thousand channels at a time
        for a in range(0, len(labels), step):
            b = a + step
            yield from zip(labels[a:b], first_id[a:b].tolist(), counts[a:b].tolist(), nbytes[a:b].tolist(),
                           t0[a:b].tolist(), t1[a:b].tolist(), nfr[a:b].tolist())

    def info(self) -> Dict[str, Any]:
        """Summary from the index only (no data frame is decompressed)."""
        channels: Dict[str, Any] = {}
        for name, cid, cnt, nb, t0, t1, nfr in self._channel_totals():
            s = self.channel_stream.get(name)
            lay = self.layouts.get(name)
            span = t1 - t0 if t1 == t1 and t0 == t0 else math.nan
            if span == 0.0 and t0 != 0.0:
                t1 = t0     # one float object for both (a million one-record channels add up)
            channels[name] = {
                "id": cid, "count": cnt, "bytes": nb, "first": t0, "last": t1,
                "rate": (cnt - 1) / span if cnt > 1 and 0 < span < math.inf else None, "frames": nfr,
                "stream": s[0] if s else None, "role": s[1] if s else None,
                "layout": lay.to_json() if lay is not None else None,
            }
        comp = sum(e.compressed_size for e in self.frames)
        raw = sum(e.decompressed_size for e in self.frames)
        tmin = min((c["first"] for c in channels.values() if c["first"] == c["first"]), default=None)
        tmax = max((c["last"] for c in channels.values() if c["last"] == c["last"]), default=None)
        streams = {}
        for sid, m in self.streams.items():
            streams[sid] = {"name": m.get("name"), "flavor": m.get("flavor"), "tags": m.get("tags") or {},
                            "compression": m.get("compression"),
                            "channels": {r: c for r, c in (m.get("channels") or {}).items() if c in channels},
                            "count": sum(channels[c]["count"] for c in (m.get("channels") or {}).values() if c in channels)}
        return {
            "path": self.path, "format": self.format, **({"container": self.container} if self.container else {}),
            "complete": self.complete, "size": self.size,
            "tags": dict(self.tags), "streams": streams, "channels": channels,
            "records": sum(c["count"] for c in channels.values()),
            "time": [tmin, tmax], "frames": len(self.frames) if self.format != "fastpack" else 0,
            "uncompressed_bytes": raw, "compressed_bytes": comp,
            "compression_ratio": (raw / comp) if comp and self.format != "fastpack" else None,
            "preset": self.file_meta.get("preset"),
            "damage": [{"offset": d.offset, "length": d.length, "reason": d.reason, "records": d.records}
                       for d in self.damage],
            "notes": list(self.notes),
        }

    def to_pandas(self, channel: Optional[str] = None, start: Optional[float] = None, end: Optional[float] = None,
                  dtype: Any = None) -> Any:
        """A pandas DataFrame: one channel's typed values (one column per field, ``time`` index),
        or (no channel) every record with ``time``, ``channel`` and ``payload`` columns.  An ODIN
        set (as :meth:`read` takes it) has the columns of ``SetTable.to_pandas`` (structs and
        arrays flattened: ``imu.accel.x``, ``system.axis[0]``), its ``time`` as the index."""
        import pandas as pd  # optional dependency

        sid = self._odin_set(channel) if channel is not None and dtype is None else None
        if sid is not None:
            from ..odin.decode import decode_archive_set

            t, tab = decode_archive_set(self, sid, start, end)
            if tab is not None:
                df = tab.to_pandas().drop(columns="time")
                df.index = pd.Index(t, name="time")
                return df
        if channel is None:
            rows = [(r.time, r.name if r.name is not None else r.id, bytes(r.payload))
                    for r in self.records(start=start, end=end)]
            return pd.DataFrame(rows, columns=["time", "channel", "payload"])
        t, v = self.read(channel, start, end, dtype=dtype)
        cols: Dict[str, Any] = {}
        if isinstance(v, np.ndarray) and v.dtype.names:
            for n in v.dtype.names:
                col = v[n]
                if col.ndim == 1:
                    cols[n] = col
                else:
                    flat = col.reshape(col.shape[0], int(np.prod(col.shape[1:])))   # 0 rows too
                    for k in range(flat.shape[1]):
                        cols[f"{n}[{k}]"] = flat[:, k]
        elif isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype != object:
            for k in range(v.shape[1]):
                cols[f"{channel}[{k}]"] = v[:, k]
        else:
            cols[str(channel)] = list(v)
        return pd.DataFrame(cols, index=pd.Index(t, name="time"))

    def __repr__(self) -> str:
        return f"<Archive {self.path!r} {self.format} frames={len(self.frames)} channels={len(self.ids)}>"
