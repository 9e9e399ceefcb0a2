"""Lossless mapping of an ODIN packet stream onto FastPack records (spec/odin-mapping.md).

Every packet is written verbatim as the payload of one record on a named channel:

===============================  ==========================================================
channel                          packets
===============================  ==========================================================
``odin/set/0xSSSS``              0x02 DATA of set SSSS that match its definition
``odin/set/0xSSSS/identifier``   0x01 IDENTIFIER and 0x03 IDENTIFIER_EXT of set SSSS
``odin/types``                   0x04 TYPE_DESCRIPTOR
``odin/event/N``                 0x0B EVENT with event id N (decimal)
``odin/unresolved/0xSSSS``       DATA whose set never got a definition (or does not fit it)
``odin/raw``                     unknown packet types and malformed packets
===============================  ==========================================================

Record time = unwrapped ticks / ``counts_per_second`` for DATA and EVENT; other packets take
the time of the record before them; with ``monotonic=True`` (default) a record never gets a time
earlier than the one before it, so file order = capture order even for sinks that sort by time.
Id-0 metadata (JSON by default): ``{"odin": "stream", ...}`` first, ``{"odin": "set", ...}``
before a set's first DATA record and again whenever its definition changes, and
``{"odin": "report", ...}`` at :meth:`OdinToFastPack.close`.

DATA that arrives before its set's definition is held (with everything after it, to keep the
order) until the definition arrives; past ``max_pending`` packets or at close it goes to
``odin/unresolved/0xSSSS``.  Nothing is dropped: replaying every ``odin/`` record in file order
gives back the capture byte for byte.

>>> from fastodin.codec import decode
>>> sink = FastPackSink()
>>> conv = OdinToFastPack(sink)
>>> for f in ("01_identifier.bin", "02_data_seq0.bin"):
...     conv.add(open("tests/vectors/odin/" + f, "rb").read())
>>> _ = conv.close()
>>> [r.name for r in decode(sink.take(), namespace=True) if r.id]
['odin/set/0x0996/identifier', 'odin/set/0x0996']
"""
from __future__ import annotations

import operator
import struct
from collections import deque

import numpy as np
from typing import Any, Deque, Dict, Iterable, List, Optional, Tuple

from ..errors import UsageError
from ..metadata import encode_meta
from .burst import BurstDecoder, BurstStats
from .schema import SetDef
from .sequence import sequence_stats, unwrap_ticks
from .stream import OdinStream
from .table import DEFAULT_COUNTS_PER_SECOND

__all__ = ["OdinToFastPack", "FastPackSink", "WriterSink", "convert_packets", "convert_burst",
           "set_channel", "set_of_channel", "identifier_channel", "event_channel", "unresolved_channel",
           "TYPES_CHANNEL",
           "RAW_CHANNEL", "PACKET_CHANNEL_PREFIX", "MAPPING_VERSION", "DEFAULT_MAX_PENDING", "MAX_META_SIZE",
           "bounded_report"]

PACKET_CHANNEL_PREFIX = "odin/"
TYPES_CHANNEL = "odin/types"
RAW_CHANNEL = "odin/raw"
MAPPING_VERSION = 1
DEFAULT_MAX_PENDING = 100_000
#: Largest id-0 metadata object (JSON bytes) the mapping writes: a definition or report bigger
#: than this is trimmed (spec/odin-mapping.md §2), far below the writers' 256 MiB record limit.
MAX_META_SIZE = 16 << 20
_TS = struct.Struct("<IH")
_BULK_MIN = 64
_BULK_WINDOW = 1 << 16
_BULK_WINDOW_MIN = 64
_BURST_STEP = 1 << 23
_HEAD10 = operator.itemgetter(slice(0, 10))
_REC_HDR = np.dtype([("t", "<f8"), ("id", "<u4"), ("n", "<u4")])
_ZPADS = tuple(bytes((-k) % 8) for k in range(8))


def set_channel(set_id: int) -> str:
    """Channel of a set's DATA packets.

    >>> set_channel(0x996)
    'odin/set/0x0996'
    """
    return "odin/set/0x%04X" % set_id


def set_of_channel(name: Any) -> Optional[int]:
    """The set id whose DATA channel ``name`` is (:func:`set_channel`), else None.

    >>> set_of_channel("odin/set/0x0996"), set_of_channel("odin/set/0x0996/identifier")
    (2454, None)
    """
    if not isinstance(name, str) or not name.startswith("odin/set/0x") or len(name) != 15:
        return None
    try:
        sid = int(name[11:], 16)
    except ValueError:
        return None
    return sid if set_channel(sid) == name else None


def identifier_channel(set_id: int) -> str:
    """Channel of a set's 0x01/0x03 packets.

    >>> identifier_channel(0xCC4D)
    'odin/set/0xCC4D/identifier'
    """
    return "odin/set/0x%04X/identifier" % set_id


def event_channel(event_id: int) -> str:
    """Channel of one event id.

    >>> event_channel(7)
    'odin/event/7'
    """
    return "odin/event/%d" % event_id


def unresolved_channel(set_id: int) -> str:
    """Channel of DATA packets that never matched a definition.

    >>> unresolved_channel(1)
    'odin/unresolved/0x0001'
    """
    return "odin/unresolved/0x%04X" % set_id


class FastPackSink:
    """Sink writing records into a :class:`fastodin.codec.Encoder` with a namespace.

    ``write(t, name, payload)``, ``write_meta(t, obj)``; ``take()`` returns the bytes so far.

    >>> s = FastPackSink(); s.write(0.0, "odin/raw", b"\\x7f"); len(s.take())
    48
    """

    def __init__(self, encoder: Any = None, meta_format: str = "json") -> None:
        from ..codec import Encoder
        self.encoder = encoder if encoder is not None else Encoder(namespace=True)
        if self.encoder.namespace is None:
            raise UsageError("FastPackSink needs an Encoder with a namespace (channel names)")
        self.meta_format = meta_format
        self.write = self.encoder.add  # type: ignore[assignment]

    def write(self, t: float, name: str, payload: Any) -> None:  # noqa: F811 (replaced per instance)
        self.encoder.add(t, name, payload)

    def write_meta(self, t: float, obj: Any) -> None:
        self.encoder.add_meta(t, obj, self.meta_format)

    def write_batch(self, times: Any, names: List[str], payloads: List[bytes]) -> None:
        """Many records at once, in order: headers built with numpy, one join.  Names not yet
        defined take the per-record path (their definition record goes right before them)."""
        enc = self.encoder
        buf = getattr(enc, "_buf", None)
        lookup = enc.namespace.lookup
        uniq = set(names)
        idmap = {nm: lookup(nm) for nm in uniq}
        if buf is None or None in idmap.values() or any(p.__class__ is not bytes for p in payloads[:1]):
            for t, nm, p in zip(np.asarray(times, dtype=np.float64).tolist(), names, payloads):
                enc.add(t, nm, p)
            return
        m = len(payloads)
        hdr = np.empty(m, dtype=_REC_HDR)
        hdr["t"] = times
        if len(uniq) == 1:
            hdr["id"] = idmap[names[0]]
        else:
            hdr["id"] = [idmap[nm] for nm in names]
        lens = np.fromiter(map(len, payloads), dtype=np.int64, count=m)
        hdr["n"] = lens
        hb = hdr.tobytes()
        parts: List[Any] = [None] * (3 * m)
        parts[0::3] = [hb[k:k + 16] for k in range(0, 16 * m, 16)]
        parts[1::3] = payloads
        parts[2::3] = [_ZPADS[x] for x in (lens & 7).tolist()]
        buf += b"".join(parts)
        enc.records += m

    def take(self) -> bytes:
        return self.encoder.take()


class WriterSink:
    """Adapter for an archive writer with ``write(t, name, payload)``; metadata goes through the
    writer's ``write_meta(t, obj)`` when it has one, else as an id-0 record ``write(t, 0, bytes)``.

    >>> class W:
    ...     def __init__(self): self.out = []
    ...     def write(self, t, name, payload): self.out.append((t, name, bytes(payload)))
    >>> w = W(); s = WriterSink(w); s.write_meta(0.0, {"a": 1}); w.out
    [(0.0, 0, b'{"a":1}')]
    """

    def __init__(self, writer: Any, meta_format: str = "json") -> None:
        self.writer = writer
        self.meta_format = meta_format
        self.write = writer.write  # type: ignore[assignment]
        if hasattr(writer, "write_batch"):  # (times, names, payloads) in one call, order kept
            self.write_batch = writer.write_batch

    def write(self, t: float, name: str, payload: Any) -> None:  # noqa: F811
        self.writer.write(t, name, payload)

    def write_meta(self, t: float, obj: Any) -> None:
        wm = getattr(self.writer, "write_meta", None)
        if wm is not None:
            wm(t, obj)
        else:
            self.writer.write(t, 0, encode_meta(obj, self.meta_format))


class OdinToFastPack:
    """Converts ODIN packets to FastPack records on a sink (see the module docstring).

    ``sink``: object with ``write(t, name, payload)`` and ``write_meta(t, obj)``
    (:class:`FastPackSink`, :class:`WriterSink`).  ``counts_per_second``: tick rate of the
    device clock (default 1,000,000).  ``odin_db``: optional OdinDB to type 0x01-only sets in the
    metadata.  ``max_pending``: packets held while waiting for a definition.
    """

    def __init__(self, sink: Any, *, counts_per_second: float = DEFAULT_COUNTS_PER_SECOND, odin_db: Any = None,
                 max_pending: int = DEFAULT_MAX_PENDING, monotonic: bool = True,
                 stream_meta: Optional[Dict[str, Any]] = None) -> None:
        if not counts_per_second or counts_per_second <= 0:
            raise UsageError("counts_per_second must be > 0, got %r" % (counts_per_second,))
        if max_pending < 0:
            raise UsageError("max_pending must be >= 0")
        self.sink = sink
        self.cps = float(counts_per_second)
        self.stream = OdinStream(odin_db)
        self.max_pending = max_pending
        self.monotonic = monotonic
        self.t = 0.0
        self.records = 0
        self.unresolved = 0
        self.raw = 0
        self._pending: Deque[Tuple[bytes, Any, Optional[SetDef]]] = deque()
        self._meta_written: Dict[int, SetDef] = {}
        self._chan: Dict[int, str] = {}
        self._echan: Dict[int, str] = {}
        self._started = False
        self._clocked = False  # a DATA/EVENT timestamp has been seen (or the clock was forced to start)
        self._closed = False
        self._stream_meta = stream_meta or {}
        self.burst_stats: Optional[BurstStats] = None
        # fast path for DATA of sets whose metadata is written: set id -> (packet size, channel, tracker);
        # _fast_size holds the same sizes by set id for add_many's vectorised test (-1: not on it)
        self._fast: Dict[int, Tuple[int, str, Any]] = {}
        self._fast_size = np.full(65536, -1, dtype=np.int64)
        self._fast_gen = 0
        self._write = sink.write

    def _fast_drop(self, sids: Iterable[int]) -> None:
        """Take sets off the DATA fast path (their definition changed: metadata comes first)."""
        dropped = False
        for sid in sids:
            if self._fast.pop(sid, None) is not None:
                self._fast_size[sid] = -1
                dropped = True
        if dropped:
            self._fast_gen += 1

    # -- output ----------------------------------------------------------------------------
    def _start(self) -> None:
        self._started = True
        m = {"odin": "stream", "mapping": MAPPING_VERSION, "counts_per_second": self.cps,
             "time": "unwrapped ticks / counts_per_second", "payload": "ODIN packet verbatim",
             "channels": {"data": "odin/set/0xSSSS", "identifiers": "odin/set/0xSSSS/identifier",
                          "types": TYPES_CHANNEL, "events": "odin/event/N",
                          "unresolved": "odin/unresolved/0xSSSS", "raw": RAW_CHANNEL}}
        m.update(self._stream_meta)
        self.sink.write_meta(self.t, m)

    def _time(self, ticks: Optional[int]) -> float:
        if ticks is not None:
            t = ticks / self.cps
            if not self.monotonic or t >= self.t:
                self.t = t
        return self.t

    def _emit(self, pkt: bytes, info: Any, defn: Optional[SetDef]) -> None:
        kind = info.kind
        t = self._time(info.ticks)
        if kind == "data":
            sid = info.key
            d = defn if defn is not None else self.stream.sets.get(sid)
            if d is None or d.packet_size != len(pkt):
                self.unresolved += 1
                self.sink.write(t, unresolved_channel(sid), pkt)
            else:
                if self._meta_written.get(sid) is not d:
                    self._write_set_meta(t, d)
                ch = self._chan.get(sid)
                if ch is None:
                    ch = self._chan[sid] = set_channel(sid)
                self.sink.write(t, ch, pkt)
                if d is self.stream.sets.get(sid) and not self._pending and sid not in self._fast:
                    self._fast[sid] = (d.packet_size, ch, self.stream.sequences[sid])
                    self._fast_size[sid] = d.packet_size
                    self._fast_gen += 1
        elif kind == "event":
            ch = self._echan.get(info.key)
            if ch is None:
                ch = self._echan[info.key] = event_channel(info.key)
            self.sink.write(t, ch, pkt)
        elif kind in ("identifier", "identifier_ext"):
            self.sink.write(t, identifier_channel(info.key), pkt)
        elif kind == "type_descriptor":
            self.sink.write(t, TYPES_CHANNEL, pkt)
        else:
            self.raw += 1
            self.sink.write(t, RAW_CHANNEL, pkt)
        self.records += 1

    def _write_set_meta(self, t: float, d: SetDef) -> None:
        m = {"odin": "set", "channel": set_channel(d.set_id), "counts_per_second": self.cps}
        m.update(d.to_meta(max_size=MAX_META_SIZE - 4096))
        self.sink.write_meta(t, m)
        self._meta_written[d.set_id] = d

    # -- input -----------------------------------------------------------------------------
    def add(self, pkt: "bytes | bytearray | memoryview") -> None:
        """Take one packet (the bytes of one transport frame)."""
        if pkt.__class__ is not bytes:
            pkt = bytes(pkt)
        if pkt and pkt[0] == 2 and not self._pending:
            f = self._fast.get(pkt[1] | (pkt[2] << 8)) if len(pkt) >= 10 else None
            if f is not None and f[0] == len(pkt):
                # hot path: same bookkeeping as OdinStream.process + _emit, without the objects
                ts, seq = _TS.unpack_from(pkt, 4)
                stream = self.stream
                st = stream.stats
                st.packets += 1
                st.data += 1
                t = stream.clock.update(ts) / self.cps
                f[2].update(seq)
                if t >= self.t or not self.monotonic:
                    self.t = t
                else:
                    t = self.t
                self._write(t, f[1], pkt)
                self.records += 1
                return
        if self._closed:
            raise UsageError("OdinToFastPack: add() after close()")
        info = self.stream.process(pkt)
        if info.changed and info.sets:
            self._fast_drop(info.sets)
        pend = self._pending
        if not self._clocked:
            if info.ticks is None:
                # nothing timestamped yet: held, to take the time of the first DATA/EVENT (a device
                # clock at 600 s must not put the identifiers 600 s before the data)
                pend.append((pkt, info, None))
                if len(pend) > self.max_pending:
                    self._start_clock(None)
                return
            self._start_clock(info.ticks)
        if info.kind == "data":
            sid = info.key
            d = self.stream.sets.get(sid)
            if pend or d is None:
                pend.append((pkt, info, d))
                if len(pend) > self.max_pending:
                    self._release(force=1)
                return
            self._emit(pkt, info, d)
            return
        if pend:
            pend.append((pkt, info, None))
            if info.changed:
                self._release()
            if len(pend) > self.max_pending:
                self._release(force=1)
            return
        self._emit(pkt, info, None)
        if info.changed and info.sets:
            # a type descriptor can refine a definition: refresh metadata lazily on next DATA
            pass

    def add_many(self, packets: Iterable["bytes | bytearray | memoryview"]) -> None:
        """Take many packets in order (runs of DATA of known sets are processed vectorised)."""
        pk = packets if isinstance(packets, list) else list(packets)
        n = len(pk)
        if n < _BULK_MIN:
            add = self.add
            for p in pk:
                add(p)
            return
        if set(map(type, pk)) - {bytes}:
            pk = [bytes(p) for p in pk]
        if self._closed:
            raise UsageError("OdinToFastPack: add_many() after close()")
        lens = np.fromiter(map(len, pk), dtype=np.int64, count=n)
        hdr = np.frombuffer(b"".join(map(_HEAD10, pk)), dtype=np.uint8)
        hoff = np.zeros(n, dtype=np.int64)
        if n > 1:
            np.cumsum(np.minimum(lens[:-1], 10), out=hoff[1:])
        full = lens >= 10
        h = np.zeros((n, 10), dtype=np.uint8)
        if full.all():
            h = hdr.reshape(n, 10)
        else:
            h[full] = np.lib.stride_tricks.sliding_window_view(hdr, 10)[hoff[full]] if len(hdr) >= 10 else h[full]
        typ = h[:, 0]
        sid = h[:, 1].astype(np.int64) | (h[:, 2].astype(np.int64) << 8)
        ts = np.ascontiguousarray(h[:, 4:8]).view("<u4").reshape(-1)
        seq = np.ascontiguousarray(h[:, 8:10]).view("<u2").reshape(-1)
        cand = (typ == 2) & full
        size = self._fast_size
        i = 0
        win = _BULK_WINDOW_MIN
        while i < n:
            if self._pending or not self._fast:
                self.add(pk[i])
                i += 1
                continue
            gen = self._fast_gen
            e = min(n, i + win)
            ok = cand[i:e] & (size[sid[i:e]] == lens[i:e])
            bads = (np.flatnonzero(~ok) + i).tolist()
            start = i
            for b in bads:
                if b > start:
                    self._bulk(pk, start, b, sid[start:b], ts[start:b], seq[start:b])
                self.add(pk[b])
                start = b + 1
                if self._fast_gen != gen or self._pending:
                    # the fast path changed: the rest of the window is re-tested.  The next window
                    # is sized by this one's progress, so a stream that changes it at every packet
                    # (a new set each time) costs O(1) per packet, not O(window)
                    win = max(_BULK_WINDOW_MIN, 2 * (start - i))
                    break
            else:
                if e > start:
                    self._bulk(pk, start, e, sid[start:e], ts[start:e], seq[start:e])
                start = e
                win = min(_BULK_WINDOW, 2 * win)
            i = start

    def _bulk(self, pk: List[bytes], i: int, j: int, sid: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> None:
        """DATA packets pk[i:j], all of sets on the fast path: vectorised bookkeeping, then write."""
        stream = self.stream
        m = j - i
        ticks = unwrap_ticks(ts, stream.clock)
        t = ticks / self.cps
        if self.monotonic:
            t = np.maximum.accumulate(np.concatenate(([self.t], t)))[1:]
            self.t = float(t[-1])
        else:
            self.t = float(t[-1])
        fast = self._fast
        if m == 1 or not (sid != sid[0]).any():
            f = fast[int(sid[0])]
            chans = [f[1]] * m
            sequence_stats(seq, f[2])
        else:  # many sets: group once by set id (stable: each set's packets keep their order)
            order = np.argsort(sid, kind="stable")
            ss = sid[order]
            cuts = np.flatnonzero(ss[1:] != ss[:-1]) + 1
            firsts = ss[np.concatenate(([0], cuts))].tolist()
            for k, idx in zip(firsts, np.split(order, cuts)):
                sequence_stats(seq[idx], fast[k][2])
            chans = [fast[k][1] for k in sid.tolist()]
        st = stream.stats
        st.packets += m
        st.data += m
        wb = getattr(self.sink, "write_batch", None)
        if wb is not None:
            wb(t, chans, pk[i:j])
        else:
            w = self._write
            for tt, c, p in zip(t.tolist(), chans, pk[i:j]):
                w(tt, c, p)
        self.records += m

    def feed_burst(self, data: "bytes | bytearray | memoryview", decoder: Optional[BurstDecoder] = None) -> None:
        """Take BURST-framed bytes (any split); framing errors are counted in ``burst_stats``."""
        if decoder is None:
            decoder = getattr(self, "_burst", None)
            if decoder is None:
                decoder = self._burst = BurstDecoder()
                self.burst_stats = decoder.stats
        if len(data) <= _BURST_STEP:
            decoder.feed(data)
            self.add_many(decoder.take())
            return
        mv = data if isinstance(data, bytes) else bytes(data)
        for i in range(0, len(mv), _BURST_STEP):  # pipeline: bounded working set
            decoder.feed(mv[i:i + _BURST_STEP])
            self.add_many(decoder.take())

    def _start_clock(self, ticks: Optional[int]) -> None:
        """The first timestamp (None: none came): write the stream metadata and the packets held
        before it at that time."""
        self._clocked = True
        self._time(ticks)
        if not self._started:
            self._start()
        self._release()

    def _release(self, force: int = 0) -> None:
        pend = self._pending
        sets = self.stream.sets
        while pend:
            pkt, info, d = pend[0]
            if info.kind == "data" and d is None and info.key not in sets:
                if force <= 0:
                    break
                force -= 1
            pend.popleft()
            self._emit(pkt, info, d)

    def flush(self) -> None:
        """Write every held packet now (undefined DATA goes to ``odin/unresolved/...``)."""
        if not self._clocked:
            self._start_clock(None)
        self._release(force=len(self._pending))

    def close(self) -> Dict[str, Any]:
        """Flush, write the ``{"odin": "report"}`` metadata and return the report."""
        if self._closed:
            return self.report()
        self.flush()
        rep = self.report()
        m: Dict[str, Any] = {"odin": "report"}
        m.update(rep)
        self.sink.write_meta(self.t, bounded_report(m))
        self._closed = True
        self._fast_drop(list(self._fast))
        return rep

    def report(self) -> Dict[str, Any]:
        """Counters: the stream's report plus records written, unresolved, raw, pending, burst."""
        r = self.stream.report()
        r["records"] = self.records
        r["unresolved"] = self.unresolved
        r["raw"] = self.raw
        r["pending"] = len(self._pending)
        r["counts_per_second"] = self.cps
        if self.burst_stats is not None:
            r["burst"] = self.burst_stats.as_dict()
        return r


def bounded_report(m: Dict[str, Any], max_size: int = MAX_META_SIZE) -> Dict[str, Any]:
    """``m`` if its JSON fits in ``max_size`` bytes, else ``m`` with the per-set details
    replaced by their count (``sets_omitted``): an id-0 record never exceeds a writer's limit.

    Every part of a report is bounded (per-set counters, at most MISSING_RANGES_KEPT ranges of
    missing 0x03 ordinals, 100 error messages), so this only trims reports of tens of thousands
    of sets when ``max_size`` is small.

    >>> bounded_report({"odin": "report", "sets": {"0x0001": {"entries": 1}}}, max_size=20)
    {'odin': 'report', 'sets': {}, 'sets_omitted': 1}
    """
    if len(encode_meta(m)) <= max_size:
        return m
    out = dict(m)
    out["sets"] = {}
    out["sets_omitted"] = len(m.get("sets") or {})
    return out


def convert_packets(packets: Iterable["bytes | bytearray | memoryview"], sink: Any = None, **kw: Any) -> Tuple[Any, Dict[str, Any]]:
    """Convert packets to FastPack: returns ``(bytes or sink, report)``.

    Without ``sink`` the result is the FastPack bytes (a :class:`FastPackSink` is used).

    >>> data, rep = convert_packets([open("tests/vectors/odin/04_event.bin", "rb").read()])
    >>> rep["stats"]["events"], len(data) > 0
    (1, True)
    """
    own = sink is None
    s = FastPackSink() if own else sink
    c = OdinToFastPack(s, **kw)
    c.add_many(packets)
    rep = c.close()
    return (s.take() if own else s), rep


def convert_burst(data: "bytes | bytearray | memoryview", sink: Any = None, **kw: Any) -> Tuple[Any, Dict[str, Any]]:
    """Convert BURST-framed bytes to FastPack: returns ``(bytes or sink, report)`` (report["burst"]
    counts framing errors).

    >>> from fastodin.odin.burst import burst_encode
    >>> data, rep = convert_burst(burst_encode(open("tests/vectors/odin/04_event.bin", "rb").read()))
    >>> rep["burst"]["packets"]
    1
    """
    own = sink is None
    s = FastPackSink() if own else sink
    c = OdinToFastPack(s, **kw)
    mv = data if isinstance(data, bytes) else bytes(data)
    parts = []
    step = _BURST_STEP
    for i in range(0, max(len(mv), 1), step):  # a pipeline, as a live link: bounded working set
        c.feed_burst(mv[i:i + step])
        if own:
            parts.append(s.take())
    if c._burst.buffered:  # trailing bytes without a delimiter: garbage, counted
        c._burst.stats.garbage_bytes += c._burst.buffered
        c._burst.stats.cobs_errors += 1
    rep = c.close()
    if own:
        parts.append(s.take())
        return b"".join(parts), rep
    return s, rep
