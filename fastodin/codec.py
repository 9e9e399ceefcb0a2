"""The FastPack record codec, byte-exact with Perl Data::FastPack.  Pure: no I/O.

Wire format (spec/fastpack.md): ``f64 time | u32 id | u32 len | payload | zero pad to 8``,
little-endian, records back to back, no file header.

* :class:`Encoder` appends records to a growing buffer (``take()`` hands the bytes out).
* :class:`Decoder` is fed bytes in any split (``feed()``) and iterated; an incomplete trailing
  record stays buffered.  It is built on the vectorised scanner :func:`fastodin.columns.scan`.
* :func:`encode` / :func:`decode` are the one-shot forms.

>>> data = encode([(0.5, "imu", b"\\x01" * 16), (1.5, "imu", b"\\x02" * 16)], namespace=True)
>>> [(r.time, r.name, bytes(r.payload[:1])) for r in decode(data, namespace=True)]
[(0.5, 'imu', b'\\x01'), (1.5, 'imu', b'\\x02')]
"""
from __future__ import annotations

import struct
from itertools import repeat
from operator import length_hint
from typing import Any, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from .errors import DataError, ExtraData, LimitError, TruncatedError, UsageError
from .metadata import decode_meta
from .namespace import Namespace, is_meta_key, name_from_bytes, name_to_bytes
from .wire import DEFAULT_MAX_RECORD_SIZE, HEADER, HEADER_SIZE, pad_len, record_size

__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "DEFAULT_MAX_RECORD_SIZE",
    "TIME_MODE_KEY",
    "pad_len",
    "record_size",
    "Record",
    "Encoder",
    "Decoder",
    "encode",
    "decode",
]

#: Key of the id-0 metadata map that declares how times are to be read (spec/fastpack.md).
TIME_MODE_KEY = "fastpack_time"
TIME_MODES = ("absolute", "multiple", "delta")

_FALSY_NAMES = ("", "0")
_ZPAD = tuple(bytes((-n) % 8) for n in range(8))
_tuple_new = tuple.__new__

Buffer = Union[bytes, bytearray, memoryview]
NamespaceArg = Union[Namespace, bool, None]


def _namespace(arg: NamespaceArg) -> Optional[Namespace]:
    if arg is None or arg is False:
        return None
    if arg is True:
        return Namespace()
    if isinstance(arg, Namespace):
        return arg
    raise UsageError(f"namespace must be a Namespace, True, False or None, not {type(arg).__name__}")


class Record(NamedTuple):
    """One decoded record.  ``payload`` is a zero-copy memoryview into the decoded buffer;
    ``name`` is the channel name in namespace mode (None for id-0 metadata and without a namespace).

    >>> r = Record(1.0, 0, memoryview(b'{"a":1}'), None)
    >>> r.meta()
    {'a': 1}
    """

    time: float
    id: int
    payload: memoryview
    name: Optional[str] = None

    @property
    def key(self) -> Union[str, int]:
        """The name if there is one, else the id."""
        return self.id if self.name is None else self.name

    def meta(self) -> Any:
        """Decode an id-0 payload as metadata (JSON or MessagePack).

        >>> Record(0.0, 0, memoryview(b"")).meta() is None
        True
        """
        return decode_meta(self.payload)


# ---------------------------------------------------------------------------------------------
# Encoding


class Encoder:
    """Appends FastPack records to a growing buffer.

    With a namespace (``namespace=True`` or a :class:`Namespace`), keys are names: the first use
    of a name allocates the next id and writes the definition record ``[time, id, name]``
    right before the message.  Keys ``0``, ``"0"`` and ``""`` are id 0 (metadata).
    Without a namespace, keys are integer ids.

    >>> enc = Encoder(namespace=True)
    >>> enc.add(1.0, "temp", b"\\x00" * 8)
    >>> len(enc.take())   # definition (24 bytes) + message (24 bytes)
    48
    """

    __slots__ = ("_buf", "namespace", "records")

    def __init__(self, namespace: NamespaceArg = None) -> None:
        self._buf = bytearray()
        self.namespace: Optional[Namespace] = _namespace(namespace)
        #: Records written (definitions and resets included).
        self.records = 0

    def __len__(self) -> int:
        return len(self._buf)

    def add(self, time: float, key: Union[str, bytes, int], payload: Buffer = b"") -> None:
        """Append one record.  ``payload`` is any bytes-like object.

        >>> enc = Encoder(); enc.add(0.0, 7, b"abc"); enc.take().hex()
        '000000000000000007000000030000006162630000000000'
        """
        ns = self.namespace
        if ns is None:
            id = key
        elif key.__class__ is str and key and key != "0":
            id = ns._by_name.get(key)
            if id is None:
                id = self._define(time, key)
        else:
            id = self._key_id(time, key, payload)
        if payload.__class__ is not bytes:
            payload = _as_bytes_view(payload)
        n = len(payload)
        buf = self._buf
        try:
            buf += HEADER.pack(time, id, n)
        except (struct.error, TypeError):
            raise _bad_record(time, key, id, n) from None
        buf += payload
        buf += _ZPAD[n & 7]
        self.records += 1

    def add_many(self, records: Iterable[Tuple[float, Union[str, bytes, int], Buffer]]) -> None:
        """Append ``(time, key, payload)`` records in order (definitions injected before each first use).

        >>> enc = Encoder(namespace=True)
        >>> enc.add_many([(0.0, "a", b"1"), (1.0, "b", b"2"), (2.0, "a", b"3")])
        >>> enc.namespace.names
        {1: 'a', 2: 'b'}
        """
        add = self.add
        for time, key, payload in records:
            add(time, key, payload)

    def add_meta(self, time: float, obj: Any, format: str = "json") -> None:
        """Append an id-0 metadata record (JSON by default, like the reference).

        >>> enc = Encoder(); enc.add_meta(0.0, {"a": 1}); len(enc)
        24
        """
        from .metadata import encode_meta

        self.add(time, 0, encode_meta(obj, format))

    def reset(self, time: float = 0.0) -> None:
        """Write the namespace reset (id 0, empty payload) and clear the encoder's namespace.

        >>> enc = Encoder(namespace=True); enc.add(0.0, "a", b""); enc.reset(); enc.namespace.names
        {}
        """
        self._buf += HEADER.pack(time, 0, 0)
        self.records += 1
        if self.namespace is not None:
            self.namespace.reset()

    def take(self) -> bytes:
        """Return the bytes appended since the last ``take()`` and empty the buffer.

        >>> enc = Encoder(); enc.add(0.0, 1, b""); len(enc.take()), len(enc.take())
        (16, 0)
        """
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def getbuffer(self) -> memoryview:
        """A read-only view of the pending bytes (valid until the next add/take)."""
        return memoryview(self._buf).toreadonly()

    # slow paths ----------------------------------------------------------------------------------
    def _define(self, time: float, name: str) -> int:
        ns = self.namespace
        assert ns is not None
        id = ns.allocate(name)
        raw = name_to_bytes(name)
        n = len(raw)
        try:
            self._buf += HEADER.pack(time, id, n)
        except (struct.error, TypeError):
            raise _bad_record(time, name, id, n) from None
        self._buf += raw
        self._buf += _ZPAD[n & 7]
        self.records += 1
        return id

    def _key_id(self, time: float, key: Any, payload: Buffer) -> int:
        ns = self.namespace
        assert ns is not None
        if isinstance(key, (bytes, bytearray)):
            key = name_from_bytes(key)
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            key = str(int(key))
        if not isinstance(key, str):
            raise UsageError(f"a record key must be a str name or an int id, not {type(key).__name__}")
        if is_meta_key(key):
            if bytes(payload[:2]) == b"0" and len(payload) == 1:
                raise UsageError(
                    "an id-0 record whose payload is the single byte b'0' would reset the namespace of a "
                    "Perl Data::FastPack decoder (reference quirk, spec/fastpack.md); refusing to write it"
                )
            if len(payload) == 0:
                ns.reset()  # id 0 with an empty payload is the namespace reset, as in the reference
            return 0
        id = ns._by_name.get(key)
        return self._define(time, key) if id is None else id


def _as_bytes_view(payload: Any) -> Any:
    if isinstance(payload, bytearray):
        return payload
    try:
        mv = memoryview(payload)
    except TypeError:
        raise UsageError(f"a payload must be bytes-like, not {type(payload).__name__}") from None
    if not mv.c_contiguous:
        return mv.tobytes()
    return mv.cast("B") if mv.ndim != 1 or mv.itemsize != 1 or mv.format != "B" else mv


def _bad_record(time: Any, key: Any, id: Any, n: int) -> UsageError:
    if not isinstance(time, (float, int, np.floating, np.integer)) or isinstance(time, bool):
        return UsageError(f"record {key!r}: time must be a number, not {type(time).__name__}")
    if n > 0xFFFFFFFF:
        return UsageError(f"record {key!r}: payload of {n} bytes exceeds the u32 length field (4 GiB - 1)")
    return UsageError(f"record {key!r}: id {id!r} is not an integer in 0..4294967295")


def encode(records: Iterable[Tuple[float, Union[str, bytes, int], Buffer]], namespace: NamespaceArg = None) -> bytes:
    """Encode ``(time, id_or_name, payload)`` records in one go.

    >>> encode([(1.5, 1, b"")]).hex()
    '000000000000f83f0100000000000000'
    """
    enc = Encoder(namespace)
    enc.add_many(records)
    return enc.take()


# ---------------------------------------------------------------------------------------------
# Decoding


class _TimeResolver:
    """State of the declared time mode (absolute / multiple of a base / delta)."""

    __slots__ = ("mode", "base", "origin", "acc")

    def __init__(self) -> None:
        self.mode = "absolute"
        self.base = 1.0
        self.origin = 0.0
        self.acc: Optional[float] = None

    def declare(self, meta: Any, offset: int) -> None:
        if not isinstance(meta, dict) or TIME_MODE_KEY not in meta:
            return
        spec = meta[TIME_MODE_KEY]
        if not isinstance(spec, dict):
            raise DataError(f"metadata at offset {offset}: {TIME_MODE_KEY!r} must be a map", offset=offset)
        mode = spec.get("mode", "absolute")
        base = spec.get("base", 1.0)
        origin = spec.get("origin", 0.0)
        if mode not in TIME_MODES or not isinstance(base, (int, float)) or not isinstance(origin, (int, float)):
            raise DataError(
                f"metadata at offset {offset}: bad {TIME_MODE_KEY!r} {spec!r}: mode must be one of {TIME_MODES}, "
                "base and origin numbers",
                offset=offset,
            )
        self.mode, self.base, self.origin, self.acc = mode, float(base), float(origin), None

    @property
    def identity(self) -> bool:
        return self.mode != "delta" and self.base == 1.0 and self.origin == 0.0

    def apply(self, t: np.ndarray) -> List[float]:
        if self.mode == "delta":
            steps = t * self.base
            start = self.origin if self.acc is None else self.acc
            out = np.cumsum(np.concatenate(([start], steps)))[1:]
            if len(out):
                self.acc = float(out[-1])
            return out.tolist()
        return (t * self.base + self.origin).tolist()


class Decoder:
    """Streaming FastPack decoder: ``feed()`` bytes in any split, iterate :class:`Record` s.

    Any split of the input (a byte at a time included) gives the same records.  An incomplete
    trailing record stays buffered (``buffered``) until more data comes.  With a namespace,
    definition records and resets are swallowed and records carry their ``name``.
    A header that claims a payload larger than ``max_record_size`` raises :class:`LimitError`
    (the reference would wait forever).  ``resolve_time=True`` turns delta / time-base times
    (declared in id-0 metadata, spec/fastpack.md) into absolute seconds; by default times
    pass through raw.

    >>> dec = Decoder(namespace=True)
    >>> data = encode([(1.0, "a", b"x")], namespace=True)
    >>> dec.feed(data[:30]); list(dec)
    []
    >>> dec.feed(data[30:]); [(r.name, bytes(r.payload)) for r in dec]
    [('a', b'x')]
    """

    BATCH = 65536

    def __init__(
        self,
        namespace: NamespaceArg = None,
        *,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        resolve_time: bool = False,
    ) -> None:
        if not isinstance(max_record_size, int) or max_record_size < 0:
            raise UsageError("max_record_size must be a non-negative int")
        self.namespace: Optional[Namespace] = _namespace(namespace)
        self.max_record_size = max_record_size
        self._time = _TimeResolver() if resolve_time else None
        self._buf: bytes = b""
        self._pos = 0  # offset in _buf of the first unscanned record
        self._base = 0  # stream offset of _buf[0]
        self._pending: List[bytes] = []
        self._pending_len = 0
        self._need = 0  # bytes needed from _pos before another record can complete
        self._it: Iterator[Record] = iter(())  # records of the current batch (often a lazy map)
        self._left: Iterator[Any] = iter(())  # advances with _it; its length_hint = records left
        self._n = 0  # records in the current batch
        self._batch_ends: Optional[np.ndarray] = None  # stream offset after each output record
        self._batch_start = 0
        self._batch_stop = 0
        self._yielded_before = 0
        self._consumed_records = 0  # records consumed from the stream (incl. definitions/resets)
        self._more = False  # the last scan stopped at BATCH records: more may be complete

    # feeding ---------------------------------------------------------------------------------
    def feed(self, data: Buffer) -> None:
        """Add bytes to the stream (copied if not ``bytes``).

        >>> dec = Decoder(); dec.feed(b"\\x00" * 8); dec.buffered
        8
        """
        if data.__class__ is not bytes:
            data = bytes(data)
        if not data:
            return
        self._pending.append(data)
        self._pending_len += len(data)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into records."""
        return len(self._buf) - self._pos + self._pending_len

    @property
    def records(self) -> int:
        """Records yielded so far."""
        return self._yielded_before + self._n - length_hint(self._left)

    def tell(self) -> int:
        """Stream offset just after the last record yielded (where the next one starts).

        >>> dec = Decoder(); dec.feed(encode([(0.0, 1, b"ab")])); next(dec).id, dec.tell()
        (1, 24)
        """
        done = self._n - length_hint(self._left)
        if done == self._n:
            return self._batch_stop
        if done == 0:
            return self._batch_start
        assert self._batch_ends is not None
        return int(self._batch_ends[done - 1])

    # iterating -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Record]:
        if length_hint(self._left) == 0:
            self._next_batch()
        if self._more:
            return self._chain()
        return self._it  # everything complete is in this batch: iterate the list directly

    def _chain(self) -> Iterator[Record]:
        while True:
            yield from self._it
            if not self._next_batch():
                return

    def __next__(self) -> Record:
        for rec in self._it:
            return rec
        if not self._next_batch():
            raise StopIteration
        return next(self._it)

    def _join(self) -> bool:
        """Merge pending chunks into the scan buffer once enough bytes are there."""
        avail = len(self._buf) - self._pos
        if self._pending_len == 0 or avail + self._pending_len < self._need:
            return False
        self._base += self._pos
        if avail:
            self._pending.insert(0, self._buf[self._pos :])
        self._buf = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pos = 0
        self._pending = []
        self._pending_len = 0
        return True

    def _next_batch(self) -> bool:
        from .columns import scan

        while True:
            self._yielded_before += self._n
            self._set_batch(iter(()), iter(()), 0)
            if len(self._buf) - self._pos < max(self._need, HEADER_SIZE) and not self._join():
                return False
            buf, pos = self._buf, self._pos
            try:
                s = scan(buf, pos, max_record_size=self.max_record_size, max_records=self.BATCH)
            except LimitError as e:
                raise LimitError(
                    f"record {self._consumed_records + (e.record or 0)} at stream offset {self._base + (e.offset or 0)} "
                    f"claims a payload of {e.length} bytes, over max_record_size={self.max_record_size}",
                    offset=self._base + (e.offset or 0),
                    length=e.length,
                    limit=self.max_record_size,
                    record=self._consumed_records + (e.record or 0),
                ) from None
            n = len(s.time)
            self._more = n == self.BATCH
            self._batch_start = self._base + pos
            self._batch_stop = self._base + s.end
            self._pos = s.end
            self._consumed_records += n
            rest = len(buf) - s.end
            if rest >= HEADER_SIZE:
                self._need = record_size(HEADER.unpack_from(buf, s.end)[2])
            else:
                self._need = HEADER_SIZE if rest or not n else 0
            if n == 0:
                if not self._join():
                    return False
                continue
            self._build(s, buf)
            if self._n:
                return True

    def _set_batch(self, it: Iterator[Record], left: Iterator[Any], n: int) -> None:
        self._it, self._left, self._n = it, left, n

    def _build(self, s: Any, buf: bytes) -> None:
        ns = self.namespace
        ids = s.id.tolist()
        starts = s.offset.tolist()
        ends = (s.offset + s.length).tolist()
        mv = memoryview(buf)
        n = len(ids)
        payloads: Any = map(mv.__getitem__, map(slice, starts, ends))  # lazy: views made as consumed
        rec_ends = s.offset + s.length.astype(np.int64)
        rec_ends += (-rec_ends) % 8
        rec_ends += self._base
        tm = self._time
        if ns is None and tm is None:
            left = iter(ids)
            self._set_batch(map(_tuple_new, repeat(Record), zip(s.time.tolist(), left, payloads, repeat(None))), left, n)
            self._batch_ends = rec_ends
            return
        if ns is not None and tm is None:
            names = list(map(ns._by_id.get, ids))
            if None not in names:  # the common case: every id known, no metadata in this batch
                left = iter(ids)
                self._set_batch(map(_tuple_new, repeat(Record), zip(s.time.tolist(), left, payloads, names)), left, n)
                self._batch_ends = rec_ends
                return
        payloads = list(payloads)
        out: List[Record] = []
        keep: List[int] = []
        times = s.time
        table = ns._by_id if ns is not None else {}
        i = 0
        window = 256
        while i < n:
            stop = min(n, i + window)
            if ns is not None:
                names: List[Optional[str]] = list(map(table.get, ids[i:stop]))
                try:
                    j = i + names.index(None)
                except ValueError:
                    j = stop
            else:
                try:
                    j = ids.index(0, i, stop)
                except ValueError:
                    j = stop
            if j == stop:
                window *= 2
            if j > i:
                seg_names: Iterable[Optional[str]] = repeat(None) if ns is None else names[: j - i]
                seg_t = times[i:j].tolist() if tm is None or tm.identity else tm.apply(times[i:j])
                out.extend(map(_tuple_new, repeat(Record), zip(seg_t, ids[i:j], payloads[i:j], seg_names)))
                keep.extend(range(i, j))
            if j == stop:
                i = j
                continue
            # j is a special record: id 0 (reset or metadata) or, with a namespace, an unknown id
            id = ids[j]
            p = payloads[j]
            if id != 0:
                name = name_from_bytes(p)
                if name not in _FALSY_NAMES:  # the reference binds only names Perl holds true
                    ns.define(id, name)  # type: ignore[union-attr]
            elif ns is not None and (len(p) == 0 or (len(p) == 1 and p[0] == 0x30)):
                ns.reset()  # the reference also resets on the 1-byte payload "0" (spec/fastpack.md)
            else:
                if tm is not None:
                    offset = self._base + starts[j] - HEADER_SIZE
                    try:
                        meta = decode_meta(p, offset=offset)
                    except DataError:
                        meta = None
                    tm.declare(meta, offset)
                out.append(_tuple_new(Record, (float(times[j]), 0, p, None)))
                keep.append(j)
            i = j + 1
            window = 256
        it = iter(out)
        self._set_batch(it, it, len(out))
        self._batch_ends = rec_ends[keep] if len(keep) != n else rec_ends

    # closing -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Declare the end of the stream: raises :class:`TruncatedError` if bytes are left over.

        >>> dec = Decoder(); dec.feed(b"\\x00" * 28); [r.id for r in dec]
        [0]
        >>> dec.close()
        Traceback (most recent call last):
        ...
        fastodin.errors.TruncatedError: stream ends inside a record: 12 bytes at offset 16 after 1 good records (only 12 of the 16 header bytes)
        """
        for _ in self:
            raise UsageError("close() called with records not yet iterated")
        left = self.buffered
        if left:
            raise self._truncated()

    def _truncated(self) -> TruncatedError:
        self._join()
        offset = self._base + self._pos
        rest = self._buf[self._pos :]
        left = len(rest) + self._pending_len
        if len(rest) >= HEADER_SIZE:
            n = HEADER.unpack_from(rest)[2]
            what = f"the header at offset {offset} claims {n} payload bytes, a record of {record_size(n)} bytes"
        else:
            what = f"only {left} of the {HEADER_SIZE} header bytes"
        return TruncatedError(
            f"stream ends inside a record: {left} bytes at offset {offset} after {self._consumed_records} good records ({what})",
            offset=offset,
            length=left,
            record=self._consumed_records,
        )


def decode(
    data: Buffer,
    namespace: NamespaceArg = None,
    *,
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
    resolve_time: bool = False,
) -> List[Record]:
    """Decode a whole buffer; a truncated record or trailing bytes raise :class:`ExtraData` (a
    :class:`TruncatedError`): ``unpacked`` holds the good records, ``extra`` the bytes after them,
    ``offset`` where they start, ``record`` how many good records came before.

    >>> [tuple(r[:2]) for r in decode(encode([(1.0, 3, b"a"), (2.0, 4, b"b")]))]
    [(1.0, 3), (2.0, 4)]
    """
    dec = Decoder(namespace, max_record_size=max_record_size, resolve_time=resolve_time)
    dec.feed(data)
    out = list(dec)
    if dec.buffered:
        err = dec._truncated()
        raise ExtraData(
            str(err),
            unpacked=out,
            extra=bytes(memoryview(data)[err.offset :]) if err.offset is not None else b"",
            offset=err.offset,
            length=err.length,
            record=err.record,
        )
    return out
