"""Typed decoding of ODIN packets into per-set tables (the numpy fast path).

:func:`decode` accepts a list of packets, raw BURST bytes, a FastPack stream written by
:mod:`fastodin.odin.mapping` (bytes or a path), or any iterable of FastPack-style records
``(time, name, payload)`` / objects with ``.name`` and ``.payload`` (e.g. an archive reader's
records).  Definitions are learned from the identifier packets in the source (0x01 with an
OdinDB, or 0x03/0x04 alone) and, for a recording, from the set definitions the mapping stored in
its id-0 metadata (so a recording converted with an OdinDB decodes typed without it; an explicit
``odin_db`` wins, see :func:`decode`); every DATA packet of a set is then decoded with one gather
into a structured array -- no Python loop per packet.

>>> import glob
>>> pk = [open(f, "rb").read() for f in sorted(glob.glob("tests/vectors/odin/0[1-2]_*.bin"))]
>>> r = decode(pk, odin_db="tests/vectors/odin/golden_od.odin.json")
>>> t = r[0x0996]; len(t), t["system.axis[1]"].tolist()
(4, [100, 200, 300, 400])
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from operator import itemgetter as _itemgetter

from ..errors import OdinError, UsageError
from .burst import BurstStats, burst_decode
from .odindb import OdinDB
from .schema import EntryDef, SetDef
from .sequence import unwrap_ticks
from .stream import OdinStream
from .table import DEFAULT_COUNTS_PER_SECOND, EventTable, SetTable

_HEAD3 = _itemgetter(slice(0, 3))

__all__ = ["decode", "decode_packets", "DecodeResult", "packets_from_fastpack", "detect_format", "StoredDefinitions",
           "stored_set_def", "decode_archive_set", "definition_channels"]


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


# --------------------------------------------------------------------------------------------
# Set definitions stored in a recording's id-0 metadata ({"odin": "set"}, spec/odin-mapping.md §2)

def _layout_key(d: SetDef) -> Tuple[int, int, Tuple[Tuple[int, int], ...]]:
    return d.set_id, d.definition_identifier, tuple((e.global_id, e.size) for e in d.entries)


def _is_raw(dt: np.dtype) -> bool:
    return dt.kind == "V" and dt.fields is None and dt.subdtype is None


def _knowledge(e: Any) -> int:
    """How much an entry tells: 2 when typed, +1 when named."""
    return (0 if _is_raw(e.resolved_dtype()) else 2) + (1 if e.name else 0)


def _checked_entry(e: Any) -> Any:
    """The entry when its stored type is usable for ``size`` bytes, else the same entry raw."""
    name = e.name if isinstance(e.name, str) else None
    et = e.element_type if isinstance(e.element_type, int) and not isinstance(e.element_type, bool) else None
    tn = e.type_name if isinstance(e.type_name, str) else None
    try:
        if et is None and e.element_type is not None:
            raise TypeError("element_type %r" % (e.element_type,))
        c = EntryDef(e.global_id, e.size, name, et, e.type_id, tn, e.dtype, e.note if isinstance(e.note, str) else None)
        dt = c.resolved_dtype()
        if not dt.hasobject and dt.itemsize == e.size:
            return c
    except Exception:  # noqa: BLE001 - a hostile dtype description: keep the bytes raw
        pass
    return EntryDef(e.global_id, e.size, name, note=_UNUSABLE + " for %d bytes; kept raw" % e.size)


_UNUSABLE = "stored type unusable"


def stored_set_def(m: Dict[str, Any]) -> SetDef:
    """The :class:`SetDef` of one ``{"odin": "set"}`` metadata object, checked: ids and sizes in
    range (else :class:`~fastodin.errors.OdinError`), each entry's type usable for its size (else
    that entry raw, with a ``note``), so its :meth:`SetDef.packet_dtype` is safe to view bytes with.

    >>> stored_set_def({"set_id": 1, "definition_identifier": 0,
    ...                 "entries": [{"global_id": 5, "size": 4, "dtype": "|O"}]}).entries[0].resolved_dtype()
    dtype('V4')
    """
    try:
        d = SetDef.from_meta(m)
        if not (0 <= d.set_id <= 0xFFFF and 0 <= d.definition_identifier <= 0xFFFF
                and all(0 <= e.global_id <= 0xFFFFFFFF and 0 <= e.size <= 0xFFFF for e in d.entries)):
            raise OdinError("set id, od identifier, global id or size out of range")
        d = SetDef(d.set_id, d.definition_identifier, tuple(_checked_entry(e) for e in d.entries), d.source)
        d.packet_dtype()
        return d
    except OdinError:
        raise
    except Exception as ex:  # noqa: BLE001 - whatever a hostile object makes numpy or int() raise
        raise OdinError("bad ODIN set definition metadata: %s" % (str(ex).splitlines()[0] if str(ex)
                                                                   else type(ex).__name__)) from None


class StoredDefinitions:
    """Set definitions and the tick rate a recording carries in its id-0 metadata.

    ``add(obj)`` takes every decoded id-0 object in file order; ``{"odin": "set"}`` objects become
    :class:`SetDef` (checked: a type that does not fit its entry's size stays raw, an unusable
    object is skipped and listed in ``errors``).  :meth:`merge` completes a definition learned from
    packets with the stored one of the same layout (set id, od identifier, entry ids and sizes).

    >>> sd = StoredDefinitions()
    >>> sd.add({"odin": "set", "set_id": 1, "definition_identifier": 0, "counts_per_second": 1000.0,
    ...         "entries": [{"global_id": 5, "size": 4, "name": "v", "dtype": "<f4"}]})
    >>> sd.merge(SetDef(1, 0, (EntryDef(5, 4),))).packet_dtype().fields["v"][0], sd.cps
    (dtype('float32'), 1000.0)
    """

    def __init__(self) -> None:
        self.by_layout: Dict[Tuple[int, int, Tuple[Tuple[int, int], ...]], SetDef] = {}
        self.by_set: Dict[int, List[SetDef]] = {}
        self.count = 0
        self.errors: List[str] = []
        self._stream_cps: Optional[float] = None
        self._set_cps: Optional[float] = None

    def __len__(self) -> int:
        return self.count

    @property
    def cps(self) -> Optional[float]:
        """counts_per_second of the ``stream`` metadata (the last one), else of the first ``set``."""
        return self._stream_cps if self._stream_cps is not None else self._set_cps

    @staticmethod
    def _rate(v: Any) -> Optional[float]:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0:
            return float(v)
        return None

    def add(self, m: Any, where: str = "") -> None:
        """Take one decoded id-0 metadata object (anything that is not ODIN metadata is ignored)."""
        if not isinstance(m, dict):
            return
        kind = m.get("odin")
        if kind == "stream":
            r = self._rate(m.get("counts_per_second"))
            if r is not None:
                self._stream_cps = r
            return
        if kind != "set":
            return
        try:
            d = stored_set_def(m)
        except OdinError as ex:
            if len(self.errors) < 100:
                self.errors.append("stored set definition%s unusable (%s); definitions come from the packets"
                                   % (" " + where if where else "", str(ex).splitlines()[0]))
            return
        for e in d.entries:
            if e.note and e.note.startswith(_UNUSABLE) and len(self.errors) < 100:
                self.errors.append("stored set definition%s of set 0x%04X: entry 0x%08X: %s"
                                   % (" " + where if where else "", d.set_id, e.global_id, e.note))
        if self._set_cps is None:
            self._set_cps = self._rate(m.get("counts_per_second"))
        self.count += 1
        self.by_layout[_layout_key(d)] = d  # the newest stored definition of a layout wins
        hist = self.by_set.setdefault(d.set_id, [])
        if not hist or not hist[-1].same_layout(d):
            hist.append(d)

    def add_payload(self, payload: Any, where: str = "") -> None:
        """Decode an id-0 payload and :meth:`add` it (undecodable payloads are listed in ``errors``)."""
        from ..metadata import decode_meta
        if not len(payload):
            return
        try:
            m = decode_meta(payload)
        except Exception as ex:  # noqa: BLE001
            if len(self.errors) < 100:
                self.errors.append("id-0 metadata%s not decodable: %s" % (" " + where if where else "",
                                                                         str(ex).splitlines()[0] if str(ex) else ex))
            return
        self.add(m, where)

    def merge(self, learned: SetDef) -> SetDef:
        """``learned`` with each entry it leaves untyped or unnamed taken from the stored
        definition of the same layout (unchanged when there is none or it knows no more)."""
        s = self.by_layout.get(_layout_key(learned))
        if s is None or s is learned:
            return learned
        ents = []
        took = False
        for a, b in zip(learned.entries, s.entries):
            if _knowledge(b) > _knowledge(a):
                ents.append(b)
                took = True
            else:
                ents.append(a)
        if not took:
            return learned
        return SetDef(learned.set_id, learned.definition_identifier, tuple(ents), "metadata")


class _RecordingStream(OdinStream):
    """:class:`OdinStream` that completes the definitions it learns with a recording's stored ones."""

    def __init__(self, stored: StoredDefinitions) -> None:
        super().__init__(None)
        self.stored = stored

    def _set_def(self, sid: int, new: SetDef) -> bool:
        merged = self.stored.merge(new)
        old = self.sets.get(sid)
        if merged is new and old is not None and old.source == "metadata" and old.same_layout(new):
            # the packets (a 0x03 after the 0x01) now tell themselves what the stored definition
            # told: keep theirs (its source and type ids); the layout does not change
            self.sets[sid] = new
            self.history[sid][-1] = new
            return False
        return super()._set_def(sid, merged)


def _decode_source(src: Any, odin_db: Any, counts_per_second: float,
                   stored: Optional[StoredDefinitions] = None) -> DecodeResult:
    res = DecodeResult()
    use_stored = stored is not None and (len(stored) > 0 or bool(stored.errors))
    stream = _RecordingStream(stored) if use_stored and odin_db is None else OdinStream(odin_db)  # type: ignore[arg-type]
    res.stream = stream
    if stored is not None:
        for e in stored.errors:
            stream._error(e)
    lens = src.lens
    n = len(lens)
    st = stream.stats
    if n == 0:
        res.report = _report(stream, stored)
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
            if not hist and use_stored and sid in stored.by_set:  # type: ignore[union-attr]
                # no identifier packet of this set in the source (e.g. records filtered by
                # channel): its stored definitions (re-typed by an explicit OdinDB)
                hist = list(stored.by_set[sid])  # type: ignore[union-attr]
                if stream.db is not None:
                    hist = [SetDef(d.set_id, d.definition_identifier,
                                   tuple(stream.db.entry(e.global_id, e.size) for e in d.entries), "odin_db")
                            for d in hist]
                stream.history[sid] = hist
                stream.sets[sid] = hist[-1]
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
    res.report = _report(stream, stored)
    return res


def _report(stream: OdinStream, stored: Optional[StoredDefinitions]) -> Dict[str, Any]:
    r = stream.report()
    if stored is not None and len(stored):
        r["stored_definitions"] = len(stored)
        r["stored_definitions_used"] = stream.db is None
    return r


def _decode_columns(a: np.ndarray, offs: np.ndarray, lens: np.ndarray, odin_db: Any,
                    counts_per_second: float, stored: Optional[StoredDefinitions] = None) -> DecodeResult:
    return _decode_source(_BufferSource(a, offs, lens), odin_db, counts_per_second, stored)


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
    a, offs, lens, times, meta, _ = _fastpack_columns(buf)
    return a, offs, lens, times, meta


def _fastpack_columns(buf: "bytes | bytearray | memoryview | np.ndarray") -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any], StoredDefinitions]:
    """:func:`_fastpack_packet_columns` plus the stored set definitions of the id-0 metadata."""
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
    stored = StoredDefinitions()
    for i in z.tolist():
        where = "(record %d)" % i
        try:
            m = decode_meta(a[offs[i]:offs[i] + lens[i]].tobytes())
        except Exception as ex:  # noqa: BLE001
            stored.errors.append("id-0 metadata %s not decodable: %s" % (where, str(ex).splitlines()[0] if str(ex) else ex))
            continue
        if isinstance(m, dict) and m.get("odin") == "stream":
            meta = m
        stored.add(m, where)
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
    return a, offs[sel], lens[sel], s.time[sel], meta, stored


def _fastpack_slow(a: np.ndarray):
    from ..codec import Decoder
    from .mapping import PACKET_CHANNEL_PREFIX
    d = Decoder(namespace=True)
    d.feed(a.tobytes())
    pk: List[bytes] = []
    times: List[float] = []
    meta: Dict[str, Any] = {}
    stored = StoredDefinitions()
    for k, r in enumerate(d):
        if r.id == 0:
            if not len(r.payload):
                continue
            try:
                m = r.meta()
            except Exception as ex:  # noqa: BLE001
                stored.errors.append("id-0 metadata (record %d) not decodable: %s" % (k, ex))
                continue
            if isinstance(m, dict) and m.get("odin") == "stream":
                meta = m
            stored.add(m, "(record %d)" % k)
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
    return joined, o, lens_a, np.asarray(times, dtype=np.float64), meta, stored


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
    return _decode_fastpack(_archive_stream(ar), odin_db, cps)


def _decode_fastpack(buf: Any, odin_db: Any, cps: Optional[float]) -> DecodeResult:
    a, offs, lens, _, _, stored = _fastpack_columns(buf)
    c = cps or stored.cps or DEFAULT_COUNTS_PER_SECOND
    return _decode_columns(a, offs, lens, odin_db, c, stored)


def definition_channels(ar: Any, set_ids: Any) -> List[str]:
    """The channels of an archive holding what sets ``set_ids`` need to decode typed, besides the
    id-0 metadata (stored set definitions, counts_per_second): their identifier packets and the
    type descriptors.

    >>> class A: ids = {"odin/types": 9, "odin/set/0x0001/identifier": 3}
    >>> definition_channels(A(), [1, 2])
    ['odin/set/0x0001/identifier', 'odin/types']
    """
    from .mapping import TYPES_CHANNEL, identifier_channel

    want = [identifier_channel(s) for s in sorted(set(set_ids))] + [TYPES_CHANNEL]
    return [c for c in want if c in ar.ids]


def decode_archive_set(ar: Any, set_id: int, start: Optional[float] = None, end: Optional[float] = None,
                       odin_db: "OdinDB | str | dict | None" = None, *,
                       frames: Optional[Any] = None) -> Tuple[np.ndarray, Optional[SetTable]]:
    """``(record times, SetTable)`` of the DATA records of one set of an open archive with
    ``start <= time < end``, decoded exactly as :func:`decode` decodes those records together with
    what the set needs (its identifier packets, the type descriptors and the id-0 metadata
    recorded before ``end``).  The table is None when no definition types the set (read the raw
    packets then); a layout change inside the selection is a :class:`~fastodin.errors.OdinError`.
    Only the selected frames are read (``frames``: only DATA records of these frame numbers, as
    ``Archive.read``); the rows are gathered in one pass.

    >>> import fastodin, os, tempfile
    >>> from fastodin.odin import Simulator
    >>> from fastodin.odin.mapping import OdinToFastPack, WriterSink
    >>> p = os.path.join(tempfile.mkdtemp(), "s.fastpack.zst")
    >>> with fastodin.Writer(p) as w:
    ...     conv = OdinToFastPack(WriterSink(w))
    ...     conv.add_many(Simulator(seed=1).packets(duration=0.2))
    ...     _ = conv.close()
    >>> with fastodin.open(p) as ar:
    ...     t, tab = decode_archive_set(ar, 0x98A8)
    >>> len(t) == len(tab) == len(decode(p)[0x98A8])
    True
    """
    from .mapping import set_channel

    if set_channel(set_id) not in ar.ids:
        raise UsageError(f"no ODIN set 0x{set_id:04X} in this recording")
    t, rows = ar.read(set_channel(set_id), start, end, dtype=np.uint8, frames=frames)   # raw packets, by frame
    stored = StoredDefinitions()
    pk: List[bytes] = []
    for k, r in enumerate(ar.records(channels=definition_channels(ar, [set_id]) + [0], end=end)):
        if r.id != 0:
            pk.append(bytes(r.payload))
        else:
            stored.add_payload(r.payload, f"(record {k})")
    n = int(t.shape[0])
    if rows.dtype == object:      # packets of several sizes
        src: Any = _ListSource(pk + [bytes(x) for x in rows])
    else:
        head = np.frombuffer(b"".join(pk), np.uint8)
        L = rows.shape[1] if rows.ndim == 2 else 0
        dl = np.fromiter(map(len, pk), np.int64, len(pk))
        offs = np.concatenate((np.cumsum(dl) - dl, head.shape[0] + np.arange(n, dtype=np.int64) * L))
        src = _BufferSource(np.concatenate((head, rows.reshape(-1))), offs,
                            np.concatenate((dl, np.full(n, L, np.int64))))
    cps = stored.cps or DEFAULT_COUNTS_PER_SECOND
    res = _decode_source(src, odin_db, cps, stored)
    tab = res.get(set_id)
    if tab is None and n == 0:   # nothing selected: an empty table of the set's definition in force
        stream = res.stream
        defn = stream.sets.get(set_id) if stream is not None else None
        if defn is None and set_id in stored.by_set and odin_db is None:
            defn = stored.by_set[set_id][-1]
        if defn is not None:
            tab = SetTable(defn, np.empty(0, defn.packet_dtype()), cps)
    if tab is None:
        return t, None
    if len(tab) != n or any(o.set_id == set_id for o in res.other_layouts):
        raise OdinError(f"set 0x{set_id:04X} changes layout (or has packets no definition fits) within the selected "
                        "time range; read a narrower range, or the raw packets with dtype='u1'")
    return t, tab


def decode(source: Any, odin_db: "OdinDB | str | dict | None" = None,
           counts_per_second: Optional[float] = None, format: str = "auto") -> DecodeResult:
    """Decode ODIN data into per-set tables: ``{set_id: SetTable}`` (+ ``.events``, ``.report``).

    ``source``: list/tuple of packets; bytes or a path of BURST-framed bytes (``format="burst"``) or
    of a FastPack stream written by :mod:`fastodin.odin.mapping` (``format="fastpack"``);
    ``format="auto"`` tells them apart; an archive (an open ``fastodin.archive`` reader, or the
    path of a ``.fastpack.zst`` file) decodes each DATA channel with one view.  Any other
    iterable yields FastPack-style records:
    ``(time, name, payload)`` tuples or objects with ``.name`` and ``.payload``; those on
    ``odin/...`` channels are taken as packets and id-0 records (``id`` 0, or name ``0``/None)
    as metadata.  ``counts_per_second`` defaults to the value the mapping recorded, else 1,000,000.

    Definitions, in order of precedence: an explicit ``odin_db`` (then stored definitions are
    not used); else the source's own 0x03/0x04 packets, with every entry they leave untyped or
    unnamed (a set announced by 0x01 only, a custom type without 0x04) completed from the set
    definitions the recording stores in its ``{"odin": "set"}`` metadata for the same layout;
    a set whose identifier packets are missing from the source uses its stored definitions
    directly.  ``report["stored_definitions"]`` counts the stored definitions read.

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
            return _decode_fastpack(source, odin_db, cps)
        if fmt == "packets":
            raise UsageError("format='packets' needs a list of packets, not bytes")
        raise UsageError("decode: unknown format %r (auto, burst, fastpack)" % format)
    from .mapping import PACKET_CHANNEL_PREFIX
    if not hasattr(source, "__iter__"):
        raise UsageError("decode: cannot read ODIN data from %s (give packets, bytes, a path, an archive "
                         "or records)" % type(source).__name__)
    pk: List[bytes] = []
    stored = StoredDefinitions()
    for k, r in enumerate(source):
        if hasattr(r, "payload"):  # fastodin Record (a NamedTuple: time, id, payload, name) and the like
            name, payload = getattr(r, "name", None), r.payload
            rid = getattr(r, "id", None)
            is_meta = rid == 0 if rid is not None else name in (None, 0, "")
        else:
            name, payload = r[1], r[2]
            is_meta = name in (None, 0, "")
        if isinstance(name, str) and name.startswith(PACKET_CHANNEL_PREFIX) and payload is not None:
            pk.append(bytes(payload))
        elif is_meta and isinstance(payload, (bytes, bytearray, memoryview)):
            stored.add_payload(payload, "(record %d)" % k)
    c = cps or stored.cps or DEFAULT_COUNTS_PER_SECOND
    if set(map(type, pk)) - {bytes}:
        pk = [bytes(p) for p in pk]
    return _decode_source(_ListSource(pk), odin_db, c, stored)
