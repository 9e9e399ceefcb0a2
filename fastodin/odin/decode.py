"""Typed decoding of ODIN packets into per-set tables (the numpy fast path).

:func:`decode` accepts a list of packets, raw BURST bytes, a FastPack stream written by
:mod:`fastodin.odin.mapping` (bytes or a path), or any iterable of FastPack-style records
``(time, name, payload)`` / objects with ``.name`` and ``.payload`` (e.g. an archive reader's
records).  Definitions are learned from the identifier packets in the source (0x01 with an
OdinDB, or 0x03/0x04 alone); every DATA packet of a set is then decoded with one gather into a
structured array -- no Python loop per packet.

>>> import glob
>>> pk = [open(f, "rb").read() for f in sorted(glob.glob("tests/vectors/odin/0[1-2]_*.bin"))]
>>> r = decode(pk, odin_db="tests/vectors/odin/golden_od.odin.json")
>>> t = r[0x0996]; len(t), t["system.axis[1]"].tolist()
(4, [100, 200, 300, 400])
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from operator import itemgetter as _itemgetter

from ..errors import OdinError, UsageError
from .burst import BurstStats, burst_decode
from .odindb import OdinDB
from .schema import SetDef
from .sequence import unwrap_ticks
from .stream import OdinStream
from .table import DEFAULT_COUNTS_PER_SECOND, EventTable, SetTable

_HEAD3 = _itemgetter(slice(0, 3))

__all__ = ["decode", "decode_packets", "DecodeResult", "packets_from_fastpack", "detect_format"]


class DecodeResult(dict):
    """``{set_id: SetTable}`` plus ``events`` ``{event_id: EventTable}``, ``undefined``
    ``{set_id: [raw DATA packets]}`` (no definition ever matched), ``unknown`` (raw packets of
    unknown type), ``other_layouts`` (tables of earlier definitions of a set whose layout changed),
    ``report`` (counters, per-set sequence stats, errors) and ``stream`` (the :class:`OdinStream`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.events: Dict[int, EventTable] = {}
        self.undefined: Dict[int, List[bytes]] = {}
        self.unknown: List[bytes] = []
        self.other_layouts: List[SetTable] = []
        self.report: Dict[str, Any] = {}
        self.stream: Optional[OdinStream] = None

    def __repr__(self) -> str:
        return "DecodeResult(sets=%s, events=%s)" % (
            ["0x%04X:%d" % (k, len(v)) for k, v in self.items()], {k: len(v) for k, v in self.events.items()})


def _gather(a: np.ndarray, offs: np.ndarray, length: int) -> np.ndarray:
    """Rows ``a[o:o+length]`` for every o in offs, as a contiguous (n, length) uint8 array."""
    if len(offs) == 0:
        return np.empty((0, length), np.uint8)
    if length == 0:
        return np.empty((len(offs), 0), np.uint8)
    # evenly spaced rows: a strided view, one copy
    if len(offs) > 1:
        d = np.diff(offs)
        if d[0] >= length and (d == d[0]).all():
            st = int(d[0])
            base = int(offs[0])
            v = np.lib.stride_tricks.as_strided(a[base:], shape=(len(offs), length), strides=(st, 1), writeable=False)
            return np.ascontiguousarray(v)
    win = np.lib.stride_tricks.sliding_window_view(a, length)
    return win[offs]


class _BufferSource:
    """Packets as (offset, length) slices of one uint8 buffer."""

    def __init__(self, a: np.ndarray, offs: np.ndarray, lens: np.ndarray) -> None:
        self.a, self.offs, self.lens = a, offs, lens
        n = len(offs)
        h = np.zeros((n, 3), dtype=np.uint8)
        for k in range(3):
            m = lens > k
            h[m, k] = a[offs[m] + k]
        self.head = h

    def packet(self, i: int) -> bytes:
        o = int(self.offs[i])
        return self.a[o:o + int(self.lens[i])].tobytes()

    def rows(self, idx: np.ndarray, length: int) -> np.ndarray:
        return _gather(self.a, self.offs[idx], length)


class _ListSource:
    """Packets as a list of bytes objects (no big join: each set's rows are joined once)."""

    def __init__(self, pk: List[bytes]) -> None:
        self.pk = pk
        n = len(pk)
        self.lens = np.fromiter(map(len, pk), dtype=np.int64, count=n)
        heads = b"".join(map(_HEAD3, pk))
        if len(heads) == 3 * n:
            self.head = np.frombuffer(heads, dtype=np.uint8).reshape(n, 3)
        else:  # some packets shorter than 3 bytes
            h = np.zeros((n, 3), dtype=np.uint8)
            for i, p in enumerate(pk):
                h[i, :len(p[:3])] = list(p[:3])
            self.head = h

    def packet(self, i: int) -> bytes:
        return self.pk[i]

    def rows(self, idx: np.ndarray, length: int) -> np.ndarray:
        il = idx.tolist()
        if len(il) == 1:
            sel = [self.pk[il[0]]]
        else:
            sel = _itemgetter(*il)(self.pk)
        return np.frombuffer(b"".join(sel), dtype=np.uint8).reshape(len(il), length)


def _decode_source(src: Any, odin_db: Any, counts_per_second: float) -> DecodeResult:
    res = DecodeResult()
    stream = OdinStream(odin_db)
    res.stream = stream
    lens = src.lens
    n = len(lens)
    st = stream.stats
    if n == 0:
        res.report = stream.report()
        return res
    types = np.where(lens > 0, src.head[:, 0].astype(np.int16), -1)
    is_data = (types == 2) & (lens >= 10)
    # everything but well-formed-length DATA goes through the packet-by-packet state, in order
    others = np.flatnonzero(~is_data).tolist()
    ev: Dict[int, Tuple[list, list, list]] = {}
    for i in others:
        pkt = src.packet(i)
        info = stream.process(pkt)
        if info.kind == "event":
            e = ev.get(info.key)
            if e is None:
                e = ev[info.key] = ([], [], [])
            e[0].append(pkt)
            e[1].append(int.from_bytes(pkt[4:8], "little"))
            e[2].append(int.from_bytes(pkt[8:10], "little"))
        elif info.kind == "unknown":
            res.unknown.append(pkt)
    for eid, (pk, ts, sq) in ev.items():
        ticks = unwrap_ticks(np.asarray(ts, dtype=np.uint32))
        res.events[eid] = EventTable(eid, ts, ticks.tolist(), sq, [p[10:] for p in pk], counts_per_second)
    # DATA, vectorised per set
    di = np.flatnonzero(is_data)
    st.packets += len(di)
    st.data += len(di)
    if len(di):
        hd = src.head[di]
        keys = hd[:, 1].astype(np.int64) | (hd[:, 2].astype(np.int64) << 8)
        dlen = lens[di]
        ukeys = np.unique(keys)
        if len(ukeys) <= 16:
            groups = [(int(k), np.flatnonzero(keys == k)) for k in ukeys.tolist()]
        else:
            order = np.argsort(keys, kind="stable")
            sk = keys[order]
            bounds = np.flatnonzero(np.diff(sk)) + 1
            starts = np.concatenate(([0], bounds)).tolist()
            ends = np.concatenate((bounds, [len(sk)])).tolist()
            groups = [(int(sk[s]), order[s:e]) for s, e in zip(starts, ends)]
        for sid, sel in groups:
            sl = dlen[sel]
            hist = stream.history.get(sid, [])
            ulen = np.unique(sl)
            tables = []
            for L in ulen.tolist():
                m = sl == L
                rows_idx = di[sel[m] if len(ulen) > 1 else sel]
                defn = None
                for d in reversed(hist):
                    if d.packet_size == L:
                        defn = d
                        break
                if defn is None:
                    cnt = len(rows_idx)
                    if hist:
                        st.length_mismatches += cnt
                    else:
                        st.undefined_data += cnt
                    res.undefined.setdefault(sid, []).extend(src.packet(i) for i in rows_idx.tolist())
                    continue
                rows = src.rows(rows_idx, L)
                recs = rows.view(defn.packet_dtype()).reshape(-1)
                tables.append(SetTable(defn, recs, counts_per_second))
            if not tables:
                continue
            # the table of the newest definition is the set's table; earlier layouts are kept aside
            newest = max(tables, key=lambda t: hist.index(t.definition) if t.definition in hist else -1)
            res[sid] = newest
            for t in tables:
                if t is not newest:
                    res.other_layouts.append(t)
            stream.sequences[sid] = newest.sequence_stats
    res.report = stream.report()
    return res


def _decode_columns(a: np.ndarray, offs: np.ndarray, lens: np.ndarray, odin_db: Any,
                    counts_per_second: float) -> DecodeResult:
    return _decode_source(_BufferSource(a, offs, lens), odin_db, counts_per_second)


def decode_packets(packets: Sequence["bytes | bytearray | memoryview"], odin_db: Any = None,
                   counts_per_second: float = DEFAULT_COUNTS_PER_SECOND) -> DecodeResult:
    """Decode a list of packets (one bytes object per packet) into per-set tables.

    >>> decode_packets([]).report["stats"]["packets"]
    0
    """
    pk = packets if isinstance(packets, list) else list(packets)
    if set(map(type, pk)) - {bytes}:
        pk = [bytes(p) for p in pk]
    return _decode_source(_ListSource(pk), odin_db, counts_per_second)


# --------------------------------------------------------------------------------------------
# FastPack sources (written by fastodin.odin.mapping)

def _fastpack_packet_columns(buf: "bytes | bytearray | memoryview | np.ndarray") -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
    """(u8 array, packet offsets, packet lengths, record times, stream meta) of the ODIN packets
    in a FastPack stream written by the mapping, in file order."""
    from ..columns import scan
    from ..metadata import decode_meta
    from .mapping import PACKET_CHANNEL_PREFIX

    a = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
    s = scan(a)
    if s.end != len(a):
        raise OdinError("FastPack stream ends inside a record at offset %d (%d bytes) after %d good records"
                        % (s.end, len(a) - s.end, s.count), offset=s.end, length=len(a) - s.end, record=s.count)
    ids = s.id.astype(np.int64)
    offs = s.offset
    lens = s.length.astype(np.int64)
    z = np.flatnonzero(ids == 0)
    meta: Dict[str, Any] = {}
    resets = [int(i) for i in z.tolist() if lens[i] == 0 or (lens[i] == 1 and a[offs[i]] == 0x30)]
    if resets:
        return _fastpack_slow(a)
    for i in z.tolist():
        try:
            m = decode_meta(a[offs[i]:offs[i] + lens[i]].tobytes())
        except Exception:
            continue
        if isinstance(m, dict) and m.get("odin") == "stream":
            meta = m
    nz = np.flatnonzero(ids != 0)
    uk, first = np.unique(ids[nz], return_index=True)
    first = nz[first]
    names: Dict[int, str] = {}
    for k, f in zip(uk.tolist(), first.tolist()):
        names[k] = a[offs[f]:offs[f] + lens[f]].tobytes().decode("utf-8", "replace")
    pkt_ids = np.array([k for k, nm in names.items() if nm.startswith(PACKET_CHANNEL_PREFIX)], dtype=np.int64)
    is_pkt = np.isin(ids, pkt_ids)
    is_pkt[first] = False  # definition records
    sel = np.flatnonzero(is_pkt)
    return a, offs[sel], lens[sel], s.time[sel], meta


def _fastpack_slow(a: np.ndarray):
    from ..codec import Decoder
    from .mapping import PACKET_CHANNEL_PREFIX
    d = Decoder(namespace=True)
    d.feed(a.tobytes())
    pk: List[bytes] = []
    times: List[float] = []
    meta: Dict[str, Any] = {}
    for r in d:
        if r.id == 0:
            try:
                m = r.meta
            except Exception:
                m = None
            if isinstance(m, dict) and m.get("odin") == "stream":
                meta = m
            continue
        if r.name and r.name.startswith(PACKET_CHANNEL_PREFIX):
            pk.append(bytes(r.payload))
            times.append(r.time)
    d.close()
    lens_a = np.fromiter(map(len, pk), dtype=np.int64, count=len(pk))
    joined = np.frombuffer(b"".join(pk), dtype=np.uint8)
    o = np.zeros(len(pk), dtype=np.int64)
    if len(pk) > 1:
        np.cumsum(lens_a[:-1], out=o[1:])
    return joined, o, lens_a, np.asarray(times, dtype=np.float64), meta


def packets_from_fastpack(buf: "bytes | bytearray | memoryview") -> List[bytes]:
    """The ODIN packets stored in a FastPack stream written by the mapping, in file order.

    >>> packets_from_fastpack(b"")
    []
    """
    a, offs, lens, _, _ = _fastpack_packet_columns(buf)
    b = a.tobytes()
    return [b[o:o + l] for o, l in zip(offs.tolist(), lens.tolist())]


def detect_format(data: "bytes | bytearray | memoryview") -> str:
    """``fastpack`` when ``data`` starts like a FastPack stream of the mapping, else ``burst``.

    >>> detect_format(b"\\x02\\x01\\x02\\x00")
    'burst'
    """
    import struct
    mv = memoryview(data)
    if len(mv) >= 16:
        t, i, ln = struct.unpack_from("<dII", mv, 0)
        end = 16 + ln + (-ln & 7)
        if i == 0 and end <= len(mv) and ln > 0 and mv[16] in (0x7B, 0x5B, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85,
                                                               0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D,
                                                               0x8E, 0x8F, 0xDE, 0xDF):
            return "fastpack"
        if i == 1 and end <= len(mv) and bytes(mv[16:16 + min(ln, 5)]) == b"odin/"[:min(ln, 5)]:
            return "fastpack"
    return "burst"


def _is_zstd(head: bytes) -> bool:
    """A zstd frame or a skippable frame (how our archives start)."""
    return len(head) == 4 and (head == b"\x28\xb5\x2f\xfd" or (head[1:] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F))


def _is_archive(obj: Any) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "records") and isinstance(getattr(obj, "names", None), dict)


def _archive_stream(ar: Any) -> bytes:
    """The archive's whole FastPack stream: every frame decompressed once, in file order."""
    return b"".join(ar.frame_data(e) for e in ar.frames)


def _decode_archive(ar: Any, odin_db: Any, cps: Optional[float]) -> DecodeResult:
    """Archive fast path: the frames concatenated are one FastPack stream (the archive format
    guarantees it), decoded like a raw stream: each set's rows in one gather."""
    a, offs, lens, _, meta = _fastpack_packet_columns(_archive_stream(ar))
    c = cps or float(meta.get("counts_per_second") or DEFAULT_COUNTS_PER_SECOND)
    return _decode_columns(a, offs, lens, odin_db, c)


def _archive_cps(ar: Any) -> Optional[float]:
    from ..metadata import decode_meta
    try:
        for r in ar.records(channels=[0]):
            if r.id == 0 and len(r.payload):
                try:
                    m = decode_meta(r.payload)
                except Exception:
                    continue
                if isinstance(m, dict) and m.get("odin") == "stream" and m.get("counts_per_second"):
                    return float(m["counts_per_second"])
    except Exception:
        return None
    return None


def decode(source: Any, odin_db: "OdinDB | str | dict | None" = None,
           counts_per_second: Optional[float] = None, format: str = "auto") -> DecodeResult:
    """Decode ODIN data into per-set tables: ``{set_id: SetTable}`` (+ ``.events``, ``.report``).

    ``source``: list/tuple of packets; bytes or a path of BURST-framed bytes (``format="burst"``) or
    of a FastPack stream written by :mod:`fastodin.odin.mapping` (``format="fastpack"``);
    ``format="auto"`` tells them apart; an archive (an open ``fastodin.archive`` reader, or the
    path of a ``.fastpack.zst`` file) decodes each DATA channel with one view.  Any other
    iterable yields FastPack-style records:
    ``(time, name, payload)`` tuples or objects with ``.name`` and ``.payload``; those on
    ``odin/...`` channels are taken as packets.  ``counts_per_second`` defaults to the value the
    mapping recorded, else 1,000,000.

    >>> decode([]).report["stats"]["data"]
    0
    """
    cps = counts_per_second
    if isinstance(source, (list, tuple)) and (not source or isinstance(source[0], (bytes, bytearray, memoryview))):
        return decode_packets(source, odin_db, cps or DEFAULT_COUNTS_PER_SECOND)
    if _is_archive(source):
        return _decode_archive(source, odin_db, cps)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            head = f.read(4)
            if format == "archive" or (format == "auto" and _is_zstd(head)):
                from ..archive.reader import open_archive
                with open_archive(source) as ar:
                    return _decode_archive(ar, odin_db, cps)
            f.seek(0)
            source = f.read()
    if isinstance(source, (bytes, bytearray, memoryview)):
        fmt = detect_format(source) if format == "auto" else format
        if fmt == "burst":
            bs = BurstStats()
            pk = burst_decode(source, bs)
            r = decode_packets(pk, odin_db, cps or DEFAULT_COUNTS_PER_SECOND)
            r.report["burst"] = bs.as_dict()
            return r
        if fmt == "fastpack":
            a, offs, lens, _, meta = _fastpack_packet_columns(source)
            c = cps or float(meta.get("counts_per_second") or DEFAULT_COUNTS_PER_SECOND)
            return _decode_columns(a, offs, lens, odin_db, c)
        if fmt == "packets":
            raise UsageError("format='packets' needs a list of packets, not bytes")
        raise UsageError("decode: unknown format %r (auto, burst, fastpack)" % format)
    from .mapping import PACKET_CHANNEL_PREFIX
    if not hasattr(source, "__iter__"):
        raise UsageError("decode: cannot read ODIN data from %s (give packets, bytes, a path, an archive "
                         "or records)" % type(source).__name__)
    pk: List[bytes] = []
    for r in source:
        if hasattr(r, "payload"):  # fastodin Record (a NamedTuple: time, id, payload, name) and the like
            name, payload = getattr(r, "name", None), r.payload
        else:
            name, payload = r[1], r[2]
        if isinstance(name, str) and name.startswith(PACKET_CHANNEL_PREFIX) and payload is not None:
            pk.append(bytes(payload))
    return decode_packets(pk, odin_db, cps or DEFAULT_COUNTS_PER_SECOND)
