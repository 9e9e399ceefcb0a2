"""fastodin's archive index: one entry per data frame, stored in skippable frames.

Every data frame is preceded by an *index frame* (skippable, magic ``0x184D2A5A``) holding its
entry; ``close()`` adds one *consolidated index frame* with all entries right before the seek
table.  The byte layout is in ``spec/archive.md``.

>>> e = FrameEntry(frame_no=0, n_records=3, data_offset=80, compressed_size=40,
...                decompressed_size=96, stream_offset=0, t_min=1.0, t_max=2.0, group=0,
...                channels={1: (2, 32, 1.0, 2.0)}, names=[(1, 1, "imu")], meta=[(1.0, 0, b"{}")])
>>> kind, entries = parse_index_payload(entry_payload(e))
>>> kind, entries[0] == e
(1, True)
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, Dict, Iterator, List, Mapping, Tuple

import numpy as np

from .._fmt import plural
from ..errors import CorruptFrameError, DataError
from ..metadata import decode_meta, encode_meta

__all__ = ["FrameEntry", "ChannelTable", "channel_stat_columns", "entry_payload", "consolidated_payload",
           "failure_payload", "parse_index_payload", "parse_failure", "check_counts", "INDEX_TAG", "INDEX_VERSION",
           "KIND_FRAME", "KIND_CONSOLIDATED", "KIND_FAILED"]

INDEX_TAG = b"FPAX"
INDEX_VERSION = 1
KIND_FRAME = 1
KIND_CONSOLIDATED = 2
#: the writer failed: the file ends here, without consolidated index and seek table
KIND_FAILED = 3

_HEAD = struct.Struct("<4sBBHI")          # tag, version, kind, reserved, crc32
_FIXED = struct.Struct("<IIQIIQddHHHH")   # 56 bytes
_CHAN = struct.Struct("<IIQdd")           # 32 bytes
_NAME = struct.Struct("<IIH")            # id, position, name length
_META = struct.Struct("<dII")            # time, position, payload length
_U32 = struct.Struct("<I")


class ChannelTable(Mapping[int, Tuple[int, int, float, float]]):
    """``FrameEntry.channels`` of a frame with many channels (a raw file's chunk): the same mapping
    id -> (count, payload_bytes, t_min, t_max), held as numpy columns sorted by id -- 40 bytes a
    channel instead of a dict of tuples (about 200).

    >>> t = ChannelTable(np.array([3, 9]), np.array([2, 1]), np.array([16, 8]), np.array([0.5, 1.0]),
    ...                  np.array([0.75, 1.0]))
    >>> t[9], 3 in t, 4 in t, dict(t) == {3: (2, 16, 0.5, 0.75), 9: (1, 8, 1.0, 1.0)}
    ((1, 8, 1.0, 1.0), True, False, True)
    """

    __slots__ = ("_ids", "_count", "_bytes", "_lo", "_hi")

    def __init__(self, ids: np.ndarray, count: np.ndarray, nbytes: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray) -> None:
        self._ids = np.asarray(ids, np.int64)
        self._count = np.asarray(count, np.int64)
        self._bytes = np.asarray(nbytes, np.int64)
        self._lo = np.asarray(lo, np.float64)
        self._hi = np.asarray(hi, np.float64)

    def _at(self, cid: Any) -> int:
        if not isinstance(cid, (int, np.integer)) or isinstance(cid, bool):
            return -1
        j = int(self._ids.searchsorted(cid))
        return j if j < self._ids.shape[0] and int(self._ids[j]) == cid else -1

    def __getitem__(self, cid: Any) -> Tuple[int, int, float, float]:
        j = self._at(cid)
        if j < 0:
            raise KeyError(cid)
        return (int(self._count[j]), int(self._bytes[j]), float(self._lo[j]), float(self._hi[j]))

    def __contains__(self, cid: object) -> bool:
        return self._at(cid) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def items(self) -> Any:
        return zip(self._ids.tolist(), self.values())

    def values(self) -> Any:
        return zip(self._count.tolist(), self._bytes.tolist(), self._lo.tolist(), self._hi.tolist())

    def __repr__(self) -> str:
        return f"ChannelTable({len(self)} channels)"


def channel_stat_columns(channels: Mapping[int, Tuple[int, int, float, float]]) -> Tuple[np.ndarray, ...]:
    """``(ids, counts, payload_bytes, t_min, t_max)`` numpy columns of a ``FrameEntry.channels``.

    >>> [a.tolist() for a in channel_stat_columns({4: (2, 16, 0.5, 1.0)})]
    [[4], [2], [16], [0.5], [1.0]]
    """
    if isinstance(channels, ChannelTable):
        return channels._ids, channels._count, channels._bytes, channels._lo, channels._hi
    n = len(channels)
    vals = list(channels.values())
    return (np.fromiter(channels.keys(), np.int64, n), np.fromiter((v[0] for v in vals), np.int64, n),
            np.fromiter((v[1] for v in vals), np.int64, n), np.fromiter((v[2] for v in vals), np.float64, n),
            np.fromiter((v[3] for v in vals), np.float64, n))


class FrameEntry:
    """Index entry of one data frame.

    ``channels``: id -> (count, payload_bytes, t_min, t_max) of the data records (definitions and
    the writer's own metadata records excluded; a dict, or a :class:`ChannelTable` for a raw
    chunk of many channels); ``names``: (id, position, name) of the definition
    records in this frame; ``meta``: (time, position, payload) of the writer's id-0 metadata
    records.  Positions are record numbers inside the frame.

    >>> FrameEntry(frame_no=1).n_records
    0
    """

    __slots__ = ("frame_no", "n_records", "data_offset", "compressed_size", "decompressed_size",
                 "stream_offset", "t_min", "t_max", "group", "channels", "names", "meta",
                 "skip", "remap", "lead")

    def __init__(self, frame_no: int = 0, n_records: int = 0, data_offset: int = 0,
                 compressed_size: int = 0, decompressed_size: int = 0, stream_offset: int = 0,
                 t_min: float = 0.0, t_max: float = 0.0, group: int = 0,
                 channels: "Mapping[int, Tuple[int, int, float, float]] | None" = None,
                 names: "List[Tuple[int, int, str]] | None" = None,
                 meta: "List[Tuple[float, int, bytes]] | None" = None) -> None:
        self.frame_no = frame_no
        self.n_records = n_records
        self.data_offset = data_offset
        self.compressed_size = compressed_size
        self.decompressed_size = decompressed_size
        self.stream_offset = stream_offset
        self.t_min = t_min
        self.t_max = t_max
        self.group = group
        self.channels = channels if channels is not None else {}
        self.names = names if names is not None else []
        self.meta = meta if meta is not None else []
        #: positions of the records readers hide (definitions and the writer's metadata), sorted;
        #: a list, or an int32 array for rebuilt entries (raw files)
        self.skip: Any = sorted([p for _, p, _ in self.names] + [p for _, p, _ in self.meta])
        #: frames without a writer's entry only (raw files), where a namespace reset re-bound an id
        #: to another name: (reset positions, sorted ``segment << 32 | id`` keys, reader ids) as
        #: numpy arrays (segment = resets before the record); None elsewhere
        self.remap: "Tuple[Any, Any, Any] | None" = None
        #: a *segment* of a zstd stream without fastodin index (records cut across zstd frames, or
        #: a frame too big to hold at once): its records start ``lead`` bytes into the content of
        #: the zstd frame at ``data_offset`` and may run on into the next frames; None for a
        #: whole frame (every fastodin data frame)
        self.lead: "int | None" = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameEntry):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__[:12])

    @property
    def data_records(self) -> int:
        """Records a reader returns from this frame."""
        return self.n_records - len(self.skip)

    def __repr__(self) -> str:
        return (f"FrameEntry(frame_no={self.frame_no}, offset={self.data_offset}, "
                f"records={self.n_records}, t={self.t_min!r}..{self.t_max!r})")

    def describe(self) -> str:
        """Human description used in error messages: frame number, offset, time range."""
        return (f"frame {self.frame_no} (file offset {self.data_offset}, {plural(self.n_records, 'record')}, "
                f"time {self.t_min!r}..{self.t_max!r})")


def _body(e: FrameEntry) -> bytes:
    parts = [_FIXED.pack(e.frame_no, e.n_records, e.data_offset, e.compressed_size,
                         e.decompressed_size, e.stream_offset, e.t_min, e.t_max, e.group,
                         len(e.channels), len(e.names), len(e.meta))]
    for cid, (cnt, nbytes, t0, t1) in e.channels.items():
        parts.append(_CHAN.pack(cid, cnt, nbytes, t0, t1))
    for cid, pos, name in e.names:
        raw = name.encode("utf-8", "surrogateescape")
        parts.append(_NAME.pack(cid, pos, len(raw)))
        parts.append(raw)
    for t, pos, payload in e.meta:
        parts.append(_META.pack(t, pos, len(payload)))
        parts.append(bytes(payload))
    return b"".join(parts)


def _wrap(kind: int, body: bytes) -> bytes:
    return _HEAD.pack(INDEX_TAG, INDEX_VERSION, kind, 0, zlib.crc32(body)) + body


def entry_payload(e: FrameEntry) -> bytes:
    """Payload of the index frame that precedes a data frame.

    >>> entry_payload(FrameEntry())[:4]
    b'FPAX'
    """
    return _wrap(KIND_FRAME, _body(e))


def consolidated_payload(entries: List[FrameEntry]) -> bytes:
    """Payload of the consolidated index frame written at close.

    >>> parse_index_payload(consolidated_payload([FrameEntry()]))[0]
    2
    """
    parts = [_U32.pack(len(entries))]
    for e in entries:
        b = _body(e)
        parts.append(_U32.pack(len(b)))
        parts.append(b)
    return _wrap(KIND_CONSOLIDATED, b"".join(parts))


def failure_payload(error: str, records_lost: int, frames: int) -> bytes:
    """Payload of the index frame a failed writer leaves at the end of its file.

    >>> parse_failure(failure_payload("OSError(28, 'No space left on device')", 12, 3))["records_lost"]
    12
    """
    return _wrap(KIND_FAILED, encode_meta({"error": error, "records_lost": int(records_lost), "frames": int(frames)}))


def parse_failure(buf: bytes) -> Dict[str, Any]:
    """``{"error": str, "records_lost": int, "frames": int}`` of a failure index frame's payload;
    CorruptFrameError when it is not one."""
    kind, _ = parse_index_payload(buf)
    if kind != KIND_FAILED:
        raise CorruptFrameError(f"index frame: kind {kind} is not a writer failure")
    try:
        d = decode_meta(bytes(buf[_HEAD.size:]))
    except DataError as exc:
        raise CorruptFrameError(f"writer failure frame: {exc}") from None
    if not isinstance(d, dict):
        raise CorruptFrameError("writer failure frame: not a JSON object")
    lost, frames = d.get("records_lost"), d.get("frames")
    return {"error": str(d.get("error", "")),
            "records_lost": lost if isinstance(lost, int) and not isinstance(lost, bool) and lost >= 0 else None,
            "frames": frames if isinstance(frames, int) and not isinstance(frames, bool) else None}



def _read_var(buf: Any, pos: int, end: int, st: struct.Struct, what: str) -> Tuple[Tuple[Any, ...], bytes, int]:
    """One table item: a fixed ``st`` header whose last field is the length of the bytes after it."""
    if pos + st.size > end:
        raise CorruptFrameError(f"index entry: {what} table runs past its end", offset=pos)
    head = st.unpack_from(buf, pos)
    pos += st.size
    ln = head[-1]
    if pos + ln > end:
        raise CorruptFrameError(f"index entry: {what} runs past its end", offset=pos)
    return head, bytes(buf[pos:pos + ln]), pos + ln

def _parse_body(buf: bytes, pos: int, end: int) -> FrameEntry:
    if end - pos < _FIXED.size:
        raise CorruptFrameError("index entry too short", offset=pos)
    (frame_no, n_records, data_offset, csize, dsize, soff, t0, t1, group,
     nch, nnames, nmeta) = _FIXED.unpack_from(buf, pos)
    pos += _FIXED.size
    if pos + nch * _CHAN.size > end:
        raise CorruptFrameError("index entry: channel table runs past its end", offset=pos)
    channels: Dict[int, Tuple[int, int, float, float]] = {}
    for _ in range(nch):
        cid, cnt, nbytes, c0, c1 = _CHAN.unpack_from(buf, pos)
        channels[cid] = (cnt, nbytes, c0, c1)
        pos += _CHAN.size
    names: List[Tuple[int, int, str]] = []
    for _ in range(nnames):
        (cid, rpos, _), raw, pos = _read_var(buf, pos, end, _NAME, "name")
        names.append((cid, rpos, raw.decode("utf-8", "surrogateescape")))
    meta: List[Tuple[float, int, bytes]] = []
    for _ in range(nmeta):
        (t, rpos, _), raw, pos = _read_var(buf, pos, end, _META, "metadata")
        meta.append((t, rpos, raw))
    if pos != end:
        raise CorruptFrameError("index entry: trailing bytes", offset=pos)
    if any(p >= n_records for _, p, _ in names) or any(p >= n_records for _, p, _ in meta):
        raise CorruptFrameError("index entry: a record position is past the frame's record count")
    return FrameEntry(frame_no, n_records, data_offset, csize, dsize, soff, t0, t1, group,
                      channels, names, meta)


def parse_index_payload(buf: bytes) -> Tuple[int, List[FrameEntry]]:
    """``(kind, entries)`` of an index-frame payload; CorruptFrameError on any inconsistency.

    >>> parse_index_payload(b"nope")
    Traceback (most recent call last):
    ...
    fastodin.errors.CorruptFrameError: index frame: too short (4 bytes)
    """
    if len(buf) < _HEAD.size:
        raise CorruptFrameError(f"index frame: too short ({len(buf)} bytes)", length=len(buf))
    tag, version, kind, _res, crc = _HEAD.unpack_from(buf, 0)
    if tag != INDEX_TAG:
        raise CorruptFrameError("index frame: bad tag", length=len(buf))
    if version != INDEX_VERSION:
        raise CorruptFrameError(f"index frame: unsupported version {version}", length=len(buf))
    body = memoryview(buf)[_HEAD.size:]
    if zlib.crc32(body) != crc:
        raise CorruptFrameError("index frame: CRC-32 mismatch", length=len(buf))
    if kind == KIND_FRAME:
        return kind, [_parse_body(body, 0, len(body))]
    if kind == KIND_CONSOLIDATED:
        if len(body) < 4:
            raise CorruptFrameError("consolidated index: too short")
        (n,) = _U32.unpack_from(body, 0)
        pos = 4
        out = []
        for _ in range(n):
            if pos + 4 > len(body):
                raise CorruptFrameError("consolidated index: cut short", offset=pos)
            (ln,) = _U32.unpack_from(body, pos)
            pos += 4
            if pos + ln > len(body):
                raise CorruptFrameError("consolidated index: entry runs past its end", offset=pos)
            out.append(_parse_body(body, pos, pos + ln))
            pos += ln
        if pos != len(body):
            raise CorruptFrameError("consolidated index: trailing bytes", offset=pos)
        return kind, out
    if kind == KIND_FAILED:
        return kind, []
    raise CorruptFrameError(f"index frame: unknown kind {kind}")


def check_counts(e: FrameEntry) -> None:
    """CorruptFrameError unless the counts of a parsed entry add up and fit its decompressed size.

    Every record of a frame is a data record of one channel, a definition or a writer-metadata
    record, and takes 16 header bytes, its payload and at most 7 padding bytes: a count is never
    trusted beyond what the frame's bytes allow.

    >>> check_counts(FrameEntry(n_records=1, decompressed_size=24, channels={1: (1, 8, 0.0, 0.0)}))
    >>> check_counts(FrameEntry(n_records=1, decompressed_size=24, channels={1: (0xFFFFFFFF, 8, 0.0, 0.0)}))
    Traceback (most recent call last):
    ...
    fastodin.errors.CorruptFrameError: index entry: channel counts (4294967295) + 0 definitions + 0 metadata records != n_records (1)
    """
    n = e.n_records
    counted = sum(c[0] for c in e.channels.values())
    if counted + len(e.names) + len(e.meta) != n:
        raise CorruptFrameError(f"index entry: channel counts ({counted}) + {len(e.names)} definitions + "
                                f"{len(e.meta)} metadata records != n_records ({n})")
    payload = (sum(c[1] for c in e.channels.values()) + sum(len(m[2]) for m in e.meta)
               + sum(len(nm.encode("utf-8", "surrogateescape")) for _, _, nm in e.names))
    if not 16 * n + payload <= e.decompressed_size <= 16 * n + payload + 7 * n:
        raise CorruptFrameError(f"index entry: {n} records of {payload} payload bytes cannot make a frame "
                                f"of {e.decompressed_size} decompressed bytes", length=e.decompressed_size)
