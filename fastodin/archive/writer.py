"""Writing archives: a VRS-style multi-stream :class:`Writer` over seekable zstd FastPack files.

Records are encoded on the calling thread into per-group buffers (one shared group for small
channels, one group per large-payload or differently compressed stream), cut into frames of about
``frame_size`` bytes, and compressed and written by a background thread.  Each data frame is
preceded by an index frame; ``close()`` writes the consolidated index and the standard seek table.
The byte layout is in ``spec/archive.md``.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "demo.fastpack.zst")
>>> with Writer(path) as w:
...     w.set_tag("site", "lab")
...     w.write(0.0, "imu", b"\\x00" * 16)
...     w.write_many([0.001, 0.002], "imu", [b"\\x01" * 16, b"\\x02" * 16])
>>> os.path.getsize(path) > 0
True
"""
from __future__ import annotations

import collections
import concurrent.futures
import math
import os
import queue
import stat
import struct
import threading
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import zstandard

from ..columns import encode_columns, scan
from ..wire import DEFAULT_MAX_RECORD_SIZE, HEADER as _HDR
from ..errors import (ArchiveLockedError, LimitError, OutputExistsError, TimestampOrderError, UsageError,
                      WriterError)
from ..metadata import encode_meta
from ..namespace import Namespace, name_to_bytes
from ..timebase import TIME_KEY, TimeBase
from .index import FrameEntry, consolidated_payload, entry_payload, failure_payload
from .layout import Layout
from .lock import lock_for_writing, writer_alive
from .seekable import INDEX_MAGIC, build_seek_table, skippable_frame

__all__ = ["Writer", "Stream", "PRESETS", "DEFAULT_PRESET", "FORMAT_VERSION", "WriterError"]

#: compression preset -> zstd level ("none" is zstd's fastest level, which stores nearly raw).
PRESETS: Dict[str, int] = {
    "none": -131072,
    "fast": 1,
    "light": 3,
    "medium": 6,
    "heavy": 9,
    "tight": 15,
    "max": 19,
}
DEFAULT_PRESET = "fast"
FORMAT_VERSION = 1
DEFAULT_FRAME_SIZE = 1 << 20
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_LARGE_PAYLOAD = 4096
#: largest payload the writer takes (bytes): what the readers take by default
MAX_RECORD_SIZE = DEFAULT_MAX_RECORD_SIZE

_PAD = [b"", b"\0" * 7, b"\0" * 6, b"\0" * 5, b"\0" * 4, b"\0" * 3, b"\0" * 2, b"\0"]
_INF = math.inf
#: records per frame at most (keeps the index's u16 channel/name/metadata counts in range)
_MAX_FRAME_RECORDS = 0xFFFF
_META_TAG = b'{"fastodin":' 


def _level(preset: Union[str, int, None], default: int) -> Tuple[str, int]:
    if preset is None:
        return "", default
    if isinstance(preset, str):
        key = preset.lower()
        if key.startswith("z") and key[1:] in PRESETS:   # VRS spellings: Zfast, Zmedium, ...
            key = key[1:]
        if key not in PRESETS:
            raise UsageError(f"unknown compression preset {preset!r}; known: {', '.join(PRESETS)}")
        return key, PRESETS[key]
    if isinstance(preset, int) and not isinstance(preset, bool) and -131072 <= preset <= 22:
        return str(preset), int(preset)
    raise UsageError(f"compression must be a preset name or a zstd level, not {preset!r}")


def _record(t: float, cid: int, payload: bytes) -> bytes:
    n = len(payload)
    return _HDR.pack(t, cid, n) + payload + _PAD[n & 7]


def _gather(data: bytes, starts: np.ndarray, sizes: np.ndarray) -> bytes:
    """Concatenate ``data[starts[k]:starts[k] + sizes[k]]`` for every k, vectorised.

    >>> _gather(b"abcdef", np.array([4, 0]), np.array([2, 3]))
    b'efabc'
    """
    sizes = sizes.astype(np.int64)
    total = int(sizes.sum())
    if not total:
        return b""
    first = np.cumsum(sizes) - sizes
    idx = np.repeat(starts.astype(np.int64) - first, sizes)
    idx += np.arange(total, dtype=np.int64)
    return np.frombuffer(data, np.uint8)[idx].tobytes()


def _as_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, np.ndarray):
        return np.ascontiguousarray(payload).tobytes()
    try:
        return bytes(memoryview(payload).cast("B"))
    except TypeError:
        raise UsageError(f"a payload must be bytes-like, not {type(payload).__name__}") from None


def _open_locked(path: str, overwrite: bool) -> int:
    """Open ``path`` for writing under the writer's exclusive lock; truncate it only once locked."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags if overwrite else flags | os.O_EXCL, 0o644)
    except FileExistsError:
        try:
            alive = writer_alive(path)
        except OSError:
            alive = False
        raise (ArchiveLockedError(path) if alive else OutputExistsError(path)) from None
    try:
        lock_for_writing(fd, path)
        if overwrite and stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _records_in(data: Optional[bytes], cols: Any = None) -> int:
    """FastPack records in a worker item (counted only to report a loss)."""
    if cols is not None:
        return int(cols[0].shape[0])
    try:
        return scan(data or b"", max_record_size=1 << 62).count
    except Exception:  # pragma: no cover - our own encoding
        return 0


class _Group:
    """A frame buffer: records of the channels that share frames."""

    __slots__ = ("gid", "level", "buf", "dedicated")

    def __init__(self, gid: int, level: int, dedicated: bool) -> None:
        self.gid = gid
        self.level = level
        self.buf = bytearray()
        self.dedicated = dedicated

    def emit(self, t: float, cid: int, payload: bytes) -> None:
        """Append one whole record (one bytearray operation: never torn by a concurrent cut)."""
        self.buf += _record(t, cid, payload)


class _Channel:
    __slots__ = ("name", "id", "group", "buf", "n", "pack")

    def __init__(self, name: str, cid: int, group: _Group) -> None:
        self.name = name
        self.id = cid
        self.group = group
        self.buf = group.buf
        self.n = -1
        self.pack = _HDR.pack

    def size(self, n: int) -> None:
        self.n = n
        self.pack = struct.Struct(f"<dII{n + (-n & 7)}s").pack


class Writer:
    """Write an archive (``NAME.fastpack.zst``): a seekable zstd file of FastPack frames.

    ``preset``: none/fast/light/medium/heavy/tight/max (zstd levels in :data:`PRESETS`) or a zstd
    level.  ``frame_size``: target uncompressed bytes per frame.  ``flush_interval``: seconds after
    which pending records are cut into a frame and written even if the frame is not full (bounds
    what a crash can lose).  ``queue_frames``: frames waiting for the compression thread before
    writers block (backpressure).  ``large_payload``: payloads of at least this many bytes put a
    new channel in frames of its own.  ``compress_threads``: frames compressed at once (zstd releases
    the GIL; frames are still written in order).  ``time_base`` (a :class:`~fastodin.timebase.TimeBase`):
    record times are raw multiples of it (e.g. integer nanoseconds since an exact origin), declared
    in the file metadata; readers return seconds.  A Writer is used from one thread; its own
    threads compress, write and cut frames every ``flush_interval``.

    ``path`` must not exist unless ``overwrite=True`` (:class:`~fastodin.errors.OutputExistsError`);
    the writer holds an exclusive lock on it until :meth:`close`, so a second writer fails at once
    (:class:`~fastodin.errors.ArchiveLockedError`; :func:`fastodin.archive.lock.writer_alive` tests
    for a live writer).  A payload over :data:`MAX_RECORD_SIZE` is refused by the call that passes it
    (LimitError); if the background thread fails, every later call raises WriterError and the file is
    left without seek table, marked as failed (spec/archive.md, section 6).

    >>> import os, tempfile
    >>> w = Writer(os.path.join(tempfile.mkdtemp(), "x.fastpack.zst"), preset="fast")
    >>> cam = w.create_stream("camera", flavor="left")
    >>> _ = cam.data_layout.image("image", 4, 2, "grey8")
    >>> cam.config(0.0)
    >>> cam.data(0.0, np.zeros((2, 4), np.uint8))
    >>> w.close()
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], preset: Union[str, int] = DEFAULT_PRESET, *,
                 frame_size: int = DEFAULT_FRAME_SIZE, flush_interval: Optional[float] = DEFAULT_FLUSH_INTERVAL,
                 queue_frames: int = 4, large_payload: int = DEFAULT_LARGE_PAYLOAD,
                 compress_threads: int = 2, time_base: Optional[TimeBase] = None, overwrite: bool = False) -> None:
        self.preset, self.level = _level(preset, PRESETS[DEFAULT_PRESET])
        if not isinstance(frame_size, int) or frame_size < 1024:
            raise UsageError(f"frame_size must be an int >= 1024, not {frame_size!r}")
        if flush_interval is not None and not (flush_interval > 0):
            raise UsageError(f"flush_interval must be > 0 seconds or None, not {flush_interval!r}")
        if queue_frames < 1:
            raise UsageError("queue_frames must be >= 1")
        if time_base is not None and not isinstance(time_base, TimeBase):
            raise UsageError(f"time_base must be a fastodin.timebase.TimeBase, not {type(time_base).__name__}")
        self.time_base = time_base
        self.path = os.fspath(path)
        self._frame_size = frame_size
        self._large = large_payload
        self._fd = _open_locked(self.path, overwrite)
        self._ns = Namespace()
        self._chans: Dict[Any, _Channel] = {}
        self._get = self._chans.get
        self._groups: List[_Group] = [_Group(0, self.level, False)]
        self._floor = -_INF
        self._last_flush = -_INF
        self._error: Optional[BaseException] = None
        self._closed = False
        self._started = False
        self._tags: Dict[str, Any] = {}
        self._streams: Dict[str, "Stream"] = {}
        self._layouts: Dict[str, Layout] = {}
        self._t_hint = 0.0
        self._meta_seq = 0
        # worker state (touched by the worker thread only, until close)
        self._pos = 0
        self._stream_pos = 0
        self._entries: List[FrameEntry] = []
        self._seek: List[Tuple[int, int]] = []
        self._tls = threading.local()
        self._inflight: "collections.deque[Tuple[FrameEntry, Any]]" = collections.deque()
        self._pipeline = max(1, int(compress_threads))
        self._pool = (concurrent.futures.ThreadPoolExecutor(self._pipeline, thread_name_prefix="fastodin-zstd")
                      if compress_threads > 1 else None)
        self._known: set = set()
        self._n_taken = 0      # FastPack records the worker took from the queue
        self._n_written = 0    # ... and wrote in frames
        self._marked = -1      # records_lost in the failure frame written (-1: none)
        self._sent = 0         # uncompressed bytes handed to the worker (main thread)
        self._index_bytes = 0  # bytes of the index frames written (worker)
        # threads
        self._cut_lock = threading.Lock()
        self._slots = threading.Semaphore(queue_frames)
        self._q: "queue.Queue[Any]" = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="fastodin-archive-writer", daemon=True)
        self._worker.start()
        self._timer: Optional[threading.Thread] = None
        if flush_interval is not None:
            self._timer = threading.Thread(target=self._tick, args=(float(flush_interval),),
                                           name="fastodin-archive-timer", daemon=True)
            self._timer.start()

    # ---- context manager ----------------------------------------------------------------------
    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if not self._closed:
                self._stop.set()
        except Exception:
            pass

    # ---- tags and streams ---------------------------------------------------------------------
    def set_tag(self, name: str, value: Any) -> None:
        """Set a file tag (any JSON value); stored as id-0 metadata (re-emitted when changed).

        >>> import tempfile, os
        >>> with Writer(os.path.join(tempfile.mkdtemp(), "t.fastpack.zst")) as w:
        ...     w.set_tag("device", "rig-1")
        """
        self._check()
        if not isinstance(name, str):
            raise UsageError(f"tag names are str, not {type(name).__name__}")
        encode_meta({name: value})   # UsageError now if the value cannot be stored as JSON
        tags = dict(self._tags)
        tags[name] = value
        self._check_meta(self._file_meta(tags, self._meta_seq + 1), f"file tag {name!r}")
        self._tags[name] = value
        if self._started:
            self._groups[0].emit(self._meta_time(), 0, self._file_meta())

    def create_stream(self, name: str, flavor: Optional[str] = None, compression: Union[str, int, None] = None, *,
                      data: Optional[Layout] = None, config: Optional[Layout] = None,
                      state: Optional[Layout] = None) -> "Stream":
        """Create a stream (VRS's recordable): channels ``ID``, ``ID:config``, ``ID:state`` where
        ``ID`` is ``name`` or ``name/flavor``.

        >>> import tempfile, os
        >>> with Writer(os.path.join(tempfile.mkdtemp(), "s.fastpack.zst")) as w:
        ...     s = w.create_stream("imu", compression="fast")
        ...     s.id
        'imu'
        """
        self._check()
        if not isinstance(name, str) or not name or name == "0":
            raise UsageError(f"stream name must be a non-empty str, not {name!r}")
        sid = name if not flavor else f"{name}/{flavor}"
        if len(name_to_bytes(sid)) > 0xFFFF - 16:
            raise LimitError(f"stream id of {len(name_to_bytes(sid))} bytes is too long for the index (65519)",
                             length=len(name_to_bytes(sid)), limit=0xFFFF - 16)
        if sid in self._streams:
            raise UsageError(f"stream {sid!r} already exists (give it another flavor)")
        for ch in (sid, sid + ":config", sid + ":state"):
            if ch in self._chans:
                raise UsageError(f"channel {ch!r} is already in use by plain writes")
        comp, level = _level(compression, self.level)
        s = Stream(self, sid, name, flavor, comp or self.preset, level, data, config, state)
        self._streams[sid] = s
        return s

    # ---- plain channel API ----------------------------------------------------------------------
    def write(self, t: float, name: Union[str, int], payload: Any) -> None:
        """Write one record on channel ``name`` (a str; ``0`` for your own id-0 metadata).

        Raises TimestampOrderError if ``t`` is older than the last :meth:`flush`.
        """
        ch = self._get(name)
        if ch is None or not t >= self._floor or payload.__class__ is not bytes or len(payload) != ch.n:
            return self._write_slow(t, name, payload)
        b = ch.buf
        b += ch.pack(t, ch.id, ch.n, payload)
        if len(b) >= self._frame_size:
            self._cut(ch.group)

    def write_many(self, times: Any, name: Union[str, int], payloads: Any) -> None:
        """Write many records on one channel at once (vectorised).

        ``payloads``: a numpy array with one row per record (its row dtype becomes the channel's
        layout unless one is set, so :meth:`Archive.read` returns the same array), or a sequence
        of bytes-like payloads.
        """
        self._check()
        t = np.array(times, dtype=np.float64).reshape(-1)   # a copy: the worker reads it later
        n = t.shape[0]
        if isinstance(payloads, np.ndarray):
            arr = payloads
            if arr.ndim == 0 or arr.shape[0] != n:
                raise UsageError(f"write_many: {n} times for an array of shape {arr.shape}")
            if arr.dtype.hasobject:
                raise UsageError(f"write_many: object dtype {arr.dtype} (its bytes are pointers, not data)")
        else:
            rows = [_as_bytes(p) for p in payloads]
            if len(rows) != n:
                raise UsageError(f"write_many: {n} times for {len(rows)} payloads")
            if n and all(len(r) == len(rows[0]) for r in rows):
                arr = np.frombuffer(b"".join(rows), np.uint8).reshape(n, len(rows[0]))
            else:
                for ti, r in zip(t.tolist(), rows):
                    self.write(ti, name, r)
                return
        if n == 0:
            return
        if np.isnan(t).any():
            raise UsageError("write_many: a time is NaN")
        tmin = float(t.min())
        if tmin < self._floor:
            raise TimestampOrderError(f"write_many on {name!r}: time {tmin!r} is older than the last flush "
                                      f"({self._floor!r})")
        row_bytes = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
        if row_bytes > MAX_RECORD_SIZE:
            self._refuse_size(row_bytes, name)
        if name != 0 and name not in self._chans and isinstance(name, str) and name not in self._layouts \
                and arr.dtype != np.uint8:
            row = np.dtype((arr.dtype, arr.shape[1:])) if arr.ndim > 1 else arr.dtype
            self._layouts[name] = Layout.from_dtype(row)
        per = max(1, self._frame_size // (16 + row_bytes + (-row_bytes & 7)))
        old = self._chans.get(name)
        g0 = old.group if old is not None else (self._groups[0] if row_bytes < self._large else None)
        if g0 is not None and n >= per and len(g0.buf):
            # a batch that fills frames by itself: write out what is pending first, so frames
            # stay in time order without re-sorting
            self._cut(g0)
        ch = self._channel(name, float(t[0]), row_bytes)
        if name == 0 or name == "0" or name == "":
            rows = np.ascontiguousarray(arr).view(np.uint8).reshape(n, -1)
            tl = len(_META_TAG)
            if row_bytes == 0 or (row_bytes == 1 and bool((rows[:, 0] == 0x30).any())) or (
                    row_bytes >= tl and bool((rows[:, :tl] == np.frombuffer(_META_TAG, np.uint8)).all(axis=1).any())):
                raise UsageError("refusing id-0 payloads of b'', b'0' (they reset Perl namespaces) or starting with "
                                 "'{\"fastodin\":' (reserved for the writer's metadata)")
        b = ch.buf
        g = ch.group
        L = row_bytes
        for i in range(0, n, per):
            chunk = encode_columns(t[i:i + per], ch.id, arr[i:i + per])
            if not b and len(chunk) >= self._frame_size:
                with self._cut_lock:
                    if not b:   # nothing pending: the chunk is a frame, its columns known
                        k = min(per, n - i)
                        self._slots.acquire()
                        self._sent += len(chunk)
                        self._q.put((g, chunk, True, (t[i:i + k], ch.id, L)))
                        continue
            b += chunk
            if len(b) >= self._frame_size:
                self._cut(g)

    def define_channel(self, name: str, layout: Layout) -> None:
        """Attach a :class:`Layout` to a plain channel before its first record (typed reads)."""
        self._check()
        if name in self._chans:
            raise UsageError(f"channel {name!r} already has records; define its layout first")
        self._layouts[name] = layout

    # ---- flushing -------------------------------------------------------------------------------
    def flush(self, t: Optional[float] = None) -> int:
        """Write out every pending record (those older than ``t`` and, unlike VRS, the newer ones
        too), each frame in time order; afterwards a record older than ``t`` raises
        TimestampOrderError.  Returns the number of FastPack records written out (the writer's
        metadata and definition records included).
        Frames cut by a flush may overlap in time with later ones; readers merge by time.
        """
        self._check()
        if t is not None:
            t = float(t)
            if math.isnan(t):
                raise UsageError("flush time is NaN")
            if t < self._last_flush:
                raise TimestampOrderError(f"flush({t!r}) is older than the last flush ({self._last_flush!r})")
        total = 0
        with self._cut_lock:
            for g in self._groups:
                data = bytes(g.buf)
                del g.buf[:len(data)]
                if data:
                    total += scan(data).count
                    self._enqueue(g, data, True)
            if t is not None:
                self._last_flush = t
                self._floor = max(self._floor, t)
        return total

    def sync(self, fsync: bool = False) -> None:
        """Wait until every frame cut so far is written to the file (and fsync'ed if asked)."""
        self._check()
        self._q.join()
        self._check()
        if fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        """Write pending records, the consolidated index and the seek table; close the file.

        Raises :class:`WriterError` if the background thread failed (the file is then left as a
        crashed file: readable, index rebuilt by scanning).
        """
        if self._closed:
            return
        self._closed = True
        self._floor = _INF      # every later write takes the slow path, which raises
        try:
            if self._error is None:
                if not self._started:
                    self._start(self._groups[0], 0.0)
                with self._cut_lock:
                    for g in self._groups:
                        self._enqueue(g, None, True)
        finally:
            self._stop.set()
            if self._timer is not None:
                self._timer.join()
            self._q.put(None)
            self._worker.join()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            lost = 0
            try:
                if self._error is None:
                    tail = skippable_frame(consolidated_payload(self._entries), INDEX_MAGIC)
                    seek = self._seek + [(len(tail), 0)]
                    self._writev([tail, build_seek_table(seek)])
                else:
                    lost = self._mark_failed(sum(_records_in(bytes(g.buf)) for g in self._groups))
            finally:
                os.close(self._fd)
        if self._error is not None:
            raise WriterError(f"archive writer of {self.path} failed: {self._error!r}; {lost} records it had accepted "
                              "were not written; the file is left without seek table, marked as failed",
                              path=self.path, records_lost=lost) from self._error

    @property
    def frames(self) -> int:
        """Data frames written so far."""
        return len(self._entries)

    @property
    def size_ratio(self) -> Optional[float]:
        """File bytes per uncompressed byte of the frames written so far (None before the first)."""
        return self._pos / self._stream_pos if self._stream_pos else None

    @property
    def pending_bytes(self) -> int:
        """Uncompressed bytes of the records accepted and not yet in the file (buffered, queued or
        being compressed)."""
        return max(0, self._sent - self._stream_pos) + sum(len(g.buf) for g in self._groups)

    def estimated_size(self, ratio: Optional[float] = None) -> int:
        """The file's size if it were closed now: the bytes written, the pending records at the
        compression seen so far in this file (else ``ratio``, file bytes per uncompressed byte,
        default 1), and the consolidated index and seek table.  What ``record --rotate-size`` uses.

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "e.fastpack.zst")
        >>> with Writer(path) as w:
        ...     w.write(0.0, "a", bytes(1000))
        ...     guess = w.estimated_size(ratio=0.5)       # nothing written yet: 0.5 bytes per byte
        ...     _ = w.flush(); w.sync()
        ...     known = w.estimated_size()
        >>> guess > 500, abs(known - os.path.getsize(path)) < 32
        (True, True)
        """
        written = self._pos
        ratio = self.size_ratio or ratio or 1.0
        body = written + self.pending_bytes * ratio
        # consolidated index (the index frames' entries again: their bytes - 16 per frame + 24) and
        # seek table (16 per frame + 25): the index frames' bytes + 49
        tail = 49 + (self._index_bytes * body / written if written else 64)
        return int(body + tail)

    # ---- internals: main thread ---------------------------------------------------------------
    def _check(self) -> None:
        if self._error is not None:
            raise WriterError(f"archive writer of {self.path} failed: {self._error!r}", path=self.path) from self._error
        if self._closed:
            raise UsageError("the writer is closed")

    def _meta_time(self) -> float:
        return self._floor if self._floor > -_INF else self._t_hint

    def _seq(self) -> int:
        self._meta_seq += 1
        return self._meta_seq

    def _file_meta(self, tags: Optional[Dict[str, Any]] = None, seq: Optional[int] = None) -> bytes:
        m = {"fastodin": "file", "version": FORMAT_VERSION, "seq": self._seq() if seq is None else seq,
             "tags": self._tags if tags is None else tags, "preset": self.preset, "level": self.level}
        if self.time_base is not None:   # spec/fastpack.md §6: record times are raw multiples of a base
            m[TIME_KEY] = self.time_base.to_meta()
        return encode_meta(m)

    def _refuse_size(self, n: int, name: Any) -> None:
        raise LimitError(f"payload of {n} bytes on channel {name!r} exceeds the archive record limit of "
                         f"{MAX_RECORD_SIZE} bytes (fastodin.archive.writer.MAX_RECORD_SIZE); not written, the "
                         "writer goes on", length=n, limit=MAX_RECORD_SIZE, channel=name)

    def _check_meta(self, payload: bytes, what: str) -> None:
        """Refuse metadata that would make an id-0 record over the record limit (before any state changes)."""
        if len(payload) > MAX_RECORD_SIZE:
            raise LimitError(f"{what} would make a metadata record of {len(payload)} bytes, over the archive record "
                             f"limit of {MAX_RECORD_SIZE} bytes; not set", length=len(payload), limit=MAX_RECORD_SIZE,
                             channel=0)

    def _start(self, g: _Group, t: float) -> None:
        self._started = True
        g.emit(t, 0, self._file_meta())

    def _new_group(self, level: int) -> _Group:
        g = _Group(len(self._groups), level, True)
        self._groups.append(g)
        return g

    def _channel(self, name: Any, t: float, size: int, group: Optional[_Group] = None) -> _Channel:
        ch = self._chans.get(name)
        if ch is not None:
            return ch
        self._check()
        if name == 0 or name == "0" or name == "":
            g = self._groups[0]
            if not self._started:
                self._start(g, t)
            ch = _Channel("", 0, g)
            self._chans[0] = ch
            return ch
        if not isinstance(name, str):
            raise UsageError(f"channel names are str (or 0 for metadata), not {type(name).__name__}")
        if len(name_to_bytes(name)) > 0xFFFF:
            raise LimitError(f"channel name of {len(name_to_bytes(name))} bytes exceeds the index limit of 65535",
                             length=len(name_to_bytes(name)), limit=0xFFFF)
        if group is None:
            for s in self._streams.values():
                if name in (s.id, s.id + ":config", s.id + ":state"):
                    return s._channel(name, t)
            group = self._new_group(self.level) if size >= self._large else self._groups[0]
        if not self._started:
            self._start(group, t)
        lay = self._layouts.get(name)
        if lay is not None:
            lay.freeze()
            group.emit(t, 0, encode_meta({"fastodin": "channel", "version": FORMAT_VERSION,
                                          "name": name, "layout": lay.to_json()}))
        cid = self._ns.allocate(name)
        group.emit(t, cid, name_to_bytes(name))
        ch = _Channel(name, cid, group)
        self._chans[name] = ch
        return ch

    def _write_slow(self, t: Any, name: Any, payload: Any) -> None:
        self._check()
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise UsageError(f"record time must be a number, not {t!r}") from None
        if math.isnan(t):
            raise UsageError(f"record time on {name!r} is NaN")
        if t < self._floor:
            raise TimestampOrderError(f"record on {name!r} at time {t!r} is older than the last flush "
                                      f"({self._floor!r})")
        payload = _as_bytes(payload)
        n = len(payload)
        if n > MAX_RECORD_SIZE:
            self._refuse_size(n, name)
        self._t_hint = t
        ch = self._channel(name, t, n)
        if ch.id == 0 and (n == 0 or payload == b"0" or payload.startswith(_META_TAG)):
            raise UsageError("refusing an id-0 payload of b'' or b'0' (they reset Perl namespaces) or one "
                             "starting with '{\"fastodin\":' (reserved for the writer's own metadata)")
        if n != ch.n:
            ch.size(n)
        b = ch.buf
        b += ch.pack(t, ch.id, n, payload)
        if len(b) >= self._frame_size:
            self._cut(ch.group)

    def _cut(self, g: _Group) -> None:
        with self._cut_lock:
            self._enqueue(g, None, True)

    def _enqueue(self, g: _Group, data: Optional[bytes], blocking: bool) -> None:
        """Move a group's pending bytes (or ``data``) to the worker; caller holds _cut_lock."""
        if data is None:
            data = bytes(g.buf)
            del g.buf[:len(data)]
        if not data:
            return
        if blocking:
            self._slots.acquire()
        self._sent += len(data)
        self._q.put((g, data, blocking, None))

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                with self._cut_lock:
                    for g in list(self._groups):
                        self._enqueue(g, None, False)
            except BaseException as exc:  # pragma: no cover - defensive
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._floor = _INF   # every write now takes the slow path, which raises

    # ---- internals: worker thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                taken = self._n_taken
                if item is None:     # close: the last frames, then stop (also when they fail)
                    if self._error is None:
                        self._drain(0)
                elif self._error is None:
                    self._write_item(item[0], item[1], item[3])
                    if self._q.qsize() == 0:
                        self._drain(0)
                else:
                    self._n_taken += _records_in(item[1], item[3])
            except BaseException as exc:
                if item is not None and self._n_taken == taken:
                    self._n_taken += _records_in(item[1], item[3])
                self._fail(exc)
                self._mark_failed()
            finally:
                if item is not None and item[2]:
                    self._slots.release()
                self._q.task_done()
            if item is None:
                return

    def _mark_failed(self, pending: int = 0) -> int:
        """After a failure: end the file with a failure frame saying how many accepted records were not
        written (``pending``: records still in the buffers), unless its end is torn (a cut is damage by
        itself) or the frame cannot be written; an empty file that cannot take it is removed (it would
        read as a sound empty stream).  Returns the records lost."""
        lost = max(0, self._n_taken + pending - self._n_written)
        if lost == self._marked:
            return lost
        try:
            if os.fstat(self._fd).st_size != self._pos:
                return lost
            mark = memoryview(skippable_frame(failure_payload(repr(self._error), lost, len(self._entries)), INDEX_MAGIC))
            done = 0
            while done < len(mark):   # one small write of its own (a failed writev may have been the fault)
                done += os.write(self._fd, mark[done:])
            self._pos += done
            self._marked = lost
        except OSError:
            if self._pos == 0:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
        return lost

    def _writev(self, parts: List[bytes]) -> None:
        total = sum(len(p) for p in parts)
        done = os.writev(self._fd, parts) if hasattr(os, "writev") else os.write(self._fd, b"".join(parts))
        if done != total:   # short write: finish the rest
            rest = b"".join(parts)[done:]
            while rest:
                k = os.write(self._fd, rest)
                rest = rest[k:]

    def _write_item(self, g: _Group, data: bytes, cols: Any = None) -> None:
        if cols is not None:        # a write_many chunk: one channel, one payload size
            times, cid, L = cols
            n = times.shape[0]
            ids = np.full(n, cid, np.uint32)
            lens = np.full(n, L, np.uint32)
            offs = np.arange(n, dtype=np.int64) * (16 + L + (-L & 7)) + 16
        else:
            s = scan(data, max_record_size=MAX_RECORD_SIZE)
            if s.end != len(data):  # pragma: no cover - our own encoding
                raise AssertionError("writer produced a partial record")
            times, ids, offs, lens = s.time, s.id, s.offset, s.length
            n = times.shape[0]
        self._n_taken += n
        # definitions: first record of an id not defined before (the namespace rule); the
        # writer's metadata: id-0 records starting with {"fastodin":
        special = None
        known = self._known
        id0 = int(ids[0])
        if bool((ids == id0).all()):
            new = [(id0, 0)] if id0 and id0 not in known else []
            zero = np.arange(n) if id0 == 0 else None
        else:
            uid, first = np.unique(ids, return_index=True)
            new = [(c, k) for c, k in zip(uid.tolist(), first.tolist()) if c != 0 and c not in known]
            zero = np.flatnonzero(ids == 0) if uid[0] == 0 else None
        if new:
            special = np.zeros(n, bool)
            for c, k in new:
                special[k] = True
                known.add(c)
        if zero is not None and zero.shape[0]:
            mv = memoryview(data)
            tl = len(_META_TAG)
            for k in zero.tolist():
                o = int(offs[k])
                if bytes(mv[o:o + tl]) == _META_TAG:
                    if special is None:
                        special = np.zeros(n, bool)
                    special[k] = True
        if n > 1 and bool((times[1:] < times[:-1]).any()):
            sizes = 16 + lens.astype(np.int64) + (-lens.astype(np.int64) & 7)
            key = times if special is None else np.where(special, -np.inf, times)
            order = np.argsort(key, kind="stable")
            heads = offs - 16
            if bool((sizes == sizes[0]).all()):
                z = int(sizes[0])
                data = np.frombuffer(data, np.uint8).reshape(n, z)[order].tobytes()
            else:
                data = _gather(data, heads[order], sizes[order])
            times, ids, lens, sizes = times[order], ids[order], lens[order], sizes[order]
            if special is not None:
                special = special[order]
            offs = np.cumsum(sizes) - sizes + 16
        if (len(data) <= self._frame_size and n <= _MAX_FRAME_RECORDS) or n == 1:
            self._write_frame(g, data, times, ids, offs, lens, special)
            return
        ends = offs + lens.astype(np.int64) + (-lens.astype(np.int64) & 7)
        start_i = 0
        while start_i < n:
            base = int(ends[start_i - 1]) if start_i else 0
            stop_i = int(np.searchsorted(ends, base + self._frame_size, side="right"))
            stop_i = min(max(stop_i, start_i + 1), n, start_i + _MAX_FRAME_RECORDS)
            end_b = int(ends[stop_i - 1])
            sl = slice(start_i, stop_i)
            self._write_frame(g, data[base:end_b], times[sl], ids[sl], offs[sl] - base, lens[sl],
                              None if special is None else special[sl])
            start_i = stop_i

    def _write_frame(self, g: _Group, raw: bytes, times: np.ndarray, ids: np.ndarray, offs: np.ndarray,
                     lens: np.ndarray, special: Optional[np.ndarray]) -> None:
        names: List[Tuple[int, int, str]] = []
        meta: List[Tuple[float, int, bytes]] = []
        if special is not None and special.any():
            mv = memoryview(raw)
            for k in np.flatnonzero(special).tolist():
                o, ln, cid = int(offs[k]), int(lens[k]), int(ids[k])
                if cid == 0:
                    meta.append((float(times[k]), k, bytes(mv[o:o + ln])))
                else:
                    names.append((cid, k, bytes(mv[o:o + ln]).decode("utf-8", "surrogateescape")))
            keep = ~special
            dt, di, dl = times[keep], ids[keep], lens[keep]
        else:
            dt, di, dl = times, ids, lens
        channels: Dict[int, Tuple[int, int, float, float]] = {}
        if dt.shape[0]:
            c0 = int(di[0])
            if bool((di == c0).all()):
                channels[c0] = (int(dt.shape[0]), int(dl.sum(dtype=np.int64)), float(dt.min()), float(dt.max()))
            else:
                order = np.argsort(di, kind="stable")
                sid = di[order]
                starts = np.flatnonzero(np.concatenate(([True], sid[1:] != sid[:-1])))
                st = dt[order]
                counts = np.diff(np.append(starts, sid.shape[0]))
                nbytes = np.add.reduceat(dl[order].astype(np.int64), starts)
                ctmin = np.minimum.reduceat(st, starts)
                ctmax = np.maximum.reduceat(st, starts)
                for k, cid in enumerate(sid[starts].tolist()):
                    channels[cid] = (int(counts[k]), int(nbytes[k]), float(ctmin[k]), float(ctmax[k]))
        e = FrameEntry(frame_no=0, n_records=int(times.shape[0]), data_offset=0, compressed_size=0,
                       decompressed_size=len(raw), stream_offset=0, t_min=float(times.min()),
                       t_max=float(times.max()), group=g.gid & 0xFFFF, channels=channels, names=names, meta=meta)
        if self._pool is None:
            self._emit(e, self._compress(g.level, raw))
            return
        self._inflight.append((e, self._pool.submit(self._compress, g.level, raw)))
        self._drain(self._pipeline)

    def _compress(self, level: int, raw: bytes) -> bytes:
        """Compress one frame (on a pool thread: one compressor per thread and level)."""
        cache = getattr(self._tls, "c", None)
        if cache is None:
            cache = self._tls.c = {}
        cctx = cache.get(level)
        if cctx is None:
            cctx = cache[level] = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
        return cctx.compress(raw)

    def _drain(self, keep: int) -> None:
        """Write compressed frames in order until at most ``keep`` are in flight."""
        while len(self._inflight) > keep:
            e, fut = self._inflight.popleft()
            self._emit(e, fut.result())

    def _emit(self, e: FrameEntry, frame: bytes) -> None:
        e.frame_no = len(self._entries)
        e.compressed_size = len(frame)
        e.stream_offset = self._stream_pos
        head_len = 8 + len(entry_payload(e))
        e.data_offset = self._pos + head_len
        idx = skippable_frame(entry_payload(e), INDEX_MAGIC)
        self._writev([idx, frame])
        self._n_written += e.n_records
        self._index_bytes += len(idx)
        self._pos += len(idx) + len(frame)
        self._stream_pos += e.decompressed_size
        self._entries.append(e)
        self._seek.append((len(idx), 0))
        self._seek.append((len(frame), e.decompressed_size))


class Stream:
    """A stream of a :class:`Writer` (VRS's recordable): config, state and data records with
    layouts.  Create it with :meth:`Writer.create_stream`.

    Data records need a config record first, as in VRS: ``data()`` before any ``config()`` raises
    UsageError (``config(t)`` with no values writes an empty config record).

    >>> import tempfile, os
    >>> with Writer(os.path.join(tempfile.mkdtemp(), "v.fastpack.zst")) as w:
    ...     imu = w.create_stream("imu")
    ...     _ = imu.data_layout.vector3d("accel").vector3d("gyro")
    ...     imu.config(0.0)
    ...     imu.data(0.01, (0.0, 0.0, 9.8), (0.0, 0.0, 0.0))
    """

    def __init__(self, writer: Writer, sid: str, name: str, flavor: Optional[str], compression: str,
                 level: int, data: Optional[Layout], config: Optional[Layout], state: Optional[Layout]) -> None:
        self._w = writer
        self.id = sid
        self.name = name
        self.flavor = flavor
        self.compression = compression
        self.level = level
        self.data_layout = data if data is not None else Layout()
        self.config_layout = config if config is not None else Layout()
        self.state_layout = state if state is not None else Layout()
        self.tags: Dict[str, Any] = {}
        self._group: Optional[_Group] = None
        self._has_config = False
        self._chans: Dict[str, _Channel] = {}

    def get_data_record_metadata(self, index: int = 0) -> Layout:
        """VRS spelling: the data-record layout."""
        return self.data_layout

    def get_config_record_metadata(self, index: int = 0) -> Layout:
        """VRS spelling: the config-record layout."""
        return self.config_layout

    def get_state_record_metadata(self, index: int = 0) -> Layout:
        """VRS spelling: the state-record layout."""
        return self.state_layout

    def set_tag(self, name: str, value: Any) -> None:
        """Set a stream tag (re-emitted in the stream definition when changed after the start)."""
        self._w._check()
        if not isinstance(name, str):
            raise UsageError(f"tag names are str, not {type(name).__name__}")
        encode_meta({name: value})   # UsageError now if the value cannot be stored as JSON
        tags = dict(self.tags)
        tags[name] = value
        self._w._check_meta(self._definition(tags, self._w._meta_seq + 1), f"stream {self.id!r} tag {name!r}")
        self.tags[name] = value
        if self._group is not None:
            self._group.emit(self._w._meta_time(), 0, self._definition())

    def _definition(self, tags: Optional[Dict[str, Any]] = None, seq: Optional[int] = None) -> bytes:
        return encode_meta({
            "fastodin": "stream", "version": FORMAT_VERSION, "seq": self._w._seq() if seq is None else seq,
            "id": self.id, "name": self.name, "flavor": self.flavor, "tags": self.tags if tags is None else tags,
            "compression": self.compression, "level": self.level,
            "channels": {"data": self.id, "config": self.id + ":config", "state": self.id + ":state"},
            "layouts": {"data": self.data_layout.to_json(), "config": self.config_layout.to_json(),
                        "state": self.state_layout.to_json()},
        })

    def _define(self, t: float) -> _Group:
        w = self._w
        lays = (self.data_layout, self.config_layout, self.state_layout)
        big = any(f.get("kind") in ("image", "audio") for lay in lays for f in lay.fields) or \
            any(lay.dtype.itemsize >= w._large for lay in lays)
        if big or self.level != w.level:
            g = w._new_group(self.level)
        else:
            g = w._groups[0]
        for lay in lays:
            lay.freeze()
        if not w._started:
            w._start(g, t)
        g.emit(t, 0, self._definition())
        self._group = g
        return g

    def _channel(self, name: str, t: float) -> _Channel:
        ch = self._chans.get(name)
        if ch is None:
            g = self._group if self._group is not None else self._define(t)
            w = self._w
            cid = w._ns.allocate(name)
            g.emit(t, cid, name_to_bytes(name))
            ch = _Channel(name, cid, g)
            self._chans[name] = ch
            w._chans[name] = ch
        return ch

    def _payload(self, layout: Layout, values: Tuple[Any, ...], named: Dict[str, Any]) -> bytes:
        if len(values) == 1 and not named and isinstance(values[0], (bytes, bytearray, memoryview)):
            p = bytes(values[0])
            if layout.fixed and layout.fields and len(p) != layout.dtype.itemsize:
                raise UsageError(f"stream {self.id!r}: raw payload of {len(p)} bytes, layout needs "
                                 f"{layout.dtype.itemsize}")
            return p
        if len(values) == 1 and not named and isinstance(values[0], (np.ndarray, np.void)) \
                and values[0].dtype == layout.dtype and values[0].size == 1:
            return values[0].tobytes()
        return layout.pack(*values, **named)

    def _record(self, kind: str, t: float, values: Tuple[Any, ...], named: Dict[str, Any]) -> None:
        w = self._w
        if kind == "data" and not self._has_config:
            raise UsageError(f"stream {self.id!r}: data record at {t!r} before its config record "
                             "(VRS semantics); call stream.config(t, ...) first")
        layout = {"data": self.data_layout, "config": self.config_layout, "state": self.state_layout}[kind]
        payload = self._payload(layout, values, named)
        name = self.id if kind == "data" else f"{self.id}:{kind}"
        if name not in self._chans:
            w._check()
            if not float(t) >= w._floor:
                w._write_slow(t, name, payload)  # raises the right error
            self._channel(name, float(t))
        w._write_slow(t, name, payload)
        if kind == "config":
            self._has_config = True

    def config(self, t: float, *values: Any, **named: Any) -> None:
        """Write a configuration record (values in config-layout field order, or raw bytes)."""
        self._record("config", t, values, named)

    def state(self, t: float, *values: Any, **named: Any) -> None:
        """Write a state record."""
        self._record("state", t, values, named)

    def data(self, t: float, *values: Any, **named: Any) -> None:
        """Write a data record (needs a config record first)."""
        self._record("data", t, values, named)

    def data_many(self, times: Any, array: Any) -> None:
        """Write many data records from a structured array of the data layout's dtype (vectorised)."""
        if not self._has_config:
            raise UsageError(f"stream {self.id!r}: data records before its config record (VRS semantics)")
        arr = np.asarray(array)
        if arr.dtype != self.data_layout.dtype:
            arr = np.asarray(array, dtype=self.data_layout.dtype)
        self._channel(self.id, float(np.asarray(times, dtype=np.float64).reshape(-1)[0]))
        self._w.write_many(times, self.id, arr.view(np.uint8).reshape(arr.shape[0], -1))

    # VRS spellings
    def create_config_record(self, timestamp: float, *srcs: Any) -> None:
        """VRS spelling of :meth:`config`."""
        self.config(timestamp, *srcs)

    def create_state_record(self, timestamp: float, *srcs: Any) -> None:
        """VRS spelling of :meth:`state`."""
        self.state(timestamp, *srcs)

    def create_data_record(self, timestamp: float, *srcs: Any) -> None:
        """VRS spelling of :meth:`data`."""
        self.data(timestamp, *srcs)
