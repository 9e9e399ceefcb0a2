"""Replay recorded ODIN packets: in recorded order, optionally paced, as packets or BURST bytes.

Sources: a FastPack stream written by :mod:`fastodin.odin.mapping` (bytes or path: every
``odin/...`` record in file order, with its record time), BURST-framed bytes, a list of packets,
or an iterable of records ``(time, name, payload)`` / objects with ``.time``, ``.name``,
``.payload`` (an archive reader).  Without re-emission the packets come back byte for byte, in
the recorded order, identifier packets at their recorded positions.

>>> from fastodin.odin.mapping import convert_packets
>>> pk = [open("tests/vectors/odin/" + f, "rb").read() for f in ("01_identifier.bin", "02_data_seq0.bin")]
>>> fp, _ = convert_packets(pk)
>>> [p for _, p in timed_packets(fp)] == pk
True
"""
from __future__ import annotations

import os
import struct
import time as _time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple


from ..errors import UsageError
from .burst import burst_decode, burst_encode_many
from .mapping import PACKET_CHANNEL_PREFIX
from .packets import DATA, EVENT, IDENTIFIER, IDENTIFIER_EXT, TYPE_DESCRIPTOR
from .sequence import TickUnwrapper
from .table import DEFAULT_COUNTS_PER_SECOND

__all__ = ["timed_packets", "replay", "replay_burst", "iter_packets", "packet_list", "timestamped"]

_TS = struct.Struct("<I")


def timestamped(packet: bytes | bytearray | memoryview) -> bool:
    """Whether a packet carries a device timestamp (DATA, EVENT): pacing starts at the first one.

    >>> timestamped(bytes([2]) + bytes(9)), timestamped(bytes([1]) + bytes(13))
    (True, False)
    """
    return len(packet) >= 10 and packet[0] in (DATA, EVENT)


def _packet_times(pk: List[bytes], cps: float) -> Iterator[Tuple[float, bytes]]:
    """Unwrapped tick times, non-decreasing; packets before the first timestamp take its time
    (as :class:`~fastodin.odin.mapping.OdinToFastPack` records them)."""
    first = next((p for p in pk if timestamped(p)), None)
    t = _TS.unpack_from(first, 4)[0] / cps if first is not None else 0.0
    u = TickUnwrapper()
    for p in pk:
        if timestamped(p):
            tt = u.update(_TS.unpack_from(p, 4)[0]) / cps
            if tt > t:
                t = tt
        yield t, p


def _archive_packets(ar: Any) -> Iterator[Tuple[float, bytes]]:
    from .decode import _archive_stream, _fastpack_packet_columns
    a, offs, lens, times, _ = _fastpack_packet_columns(_archive_stream(ar))
    b = a.tobytes()
    for t, o, l in zip(times.tolist(), offs.tolist(), lens.tolist()):
        yield t, b[o:o + l]


def timed_packets(source: Any, *, format: str = "auto",
                  counts_per_second: Optional[float] = None) -> Iterator[Tuple[float, bytes]]:
    """``(time in seconds, packet bytes)`` in recorded order.

    FastPack sources and archives (an open reader or a ``.fastpack.zst`` path) use the record
    times, in file order; packet lists and BURST bytes use the packets' own
    timestamps (unwrapped, non-decreasing; other packets take the time before them).
    """
    from .decode import _fastpack_packet_columns, _is_archive, _is_zstd, detect_format
    cps = counts_per_second or DEFAULT_COUNTS_PER_SECOND
    if isinstance(source, (list, tuple)) and (not source or isinstance(source[0], (bytes, bytearray, memoryview))):
        yield from _packet_times([bytes(p) for p in source], cps)
        return
    if _is_archive(source):
        yield from _archive_packets(source)
        return
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            head = f.read(4)
            if format == "archive" or (format == "auto" and _is_zstd(head)):
                from ..archive.reader import open_archive
                with open_archive(source) as ar:
                    yield from _archive_packets(ar)
                return
            f.seek(0)
            source = f.read()
    if isinstance(source, (bytes, bytearray, memoryview)):
        fmt = detect_format(source) if format == "auto" else format
        if fmt == "burst":
            yield from _packet_times(burst_decode(source), cps)
            return
        if fmt != "fastpack":
            raise UsageError("replay: unknown format %r (auto, burst, fastpack)" % format)
        a, offs, lens, times, _ = _fastpack_packet_columns(source)
        b = a.tobytes()
        for t, o, l in zip(times.tolist(), offs.tolist(), lens.tolist()):
            yield t, b[o:o + l]
        return
    for r in source:
        if hasattr(r, "payload"):  # fastodin Record (a NamedTuple: time, id, payload, name) and the like
            t, name, payload = r.time, getattr(r, "name", None), r.payload
        else:
            t, name, payload = r[0], r[1], r[2]
        if isinstance(name, str) and name.startswith(PACKET_CHANNEL_PREFIX):
            yield float(t), bytes(payload)


def iter_packets(source: Any, **kw: Any) -> Iterator[bytes]:
    """The packets of ``source`` in recorded order (see :func:`timed_packets`).

    >>> list(iter_packets([b"\\x0b\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"]))
    [b'\\x0b\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00']
    """
    for _, p in timed_packets(source, **kw):
        yield p


def replay(source: Any, *, speed: float = 0.0, identifier_interval: Optional[float] = None,
           format: str = "auto", counts_per_second: Optional[float] = None,
           clock: Callable[[], float] = _time.monotonic, sleep: Callable[[float], None] = _time.sleep) -> Iterator[bytes]:
    """Yield the recorded packets, paced at recorded speed x ``speed`` (0 = as fast as possible).

    ``identifier_interval`` (seconds of recorded time): re-emit the latest identifier packets
    (0x01, the 0x03 chunks, 0x04) of every set seen so far whenever that much recorded time has
    passed since they were last sent, as a device does (this adds packets: exact replay is the
    default, ``None``).

    >>> pk = [b"\\x02\\x01\\x00\\x00" + bytes(6)] * 2
    >>> list(replay(pk)) == pk
    True
    """
    if not speed >= 0:
        raise UsageError("replay speed must be >= 0 (0 = as fast as possible), got %r" % speed)
    if identifier_interval is not None and not identifier_interval > 0:
        raise UsageError("identifier_interval must be > 0 seconds (or None), got %r" % (identifier_interval,))
    latest: Dict[Tuple[int, int], List[bytes]] = {}
    last_sent: Optional[float] = None
    t0_rec: Optional[float] = None
    t0_wall = 0.0
    for t, p in timed_packets(source, format=format, counts_per_second=counts_per_second):
        if speed > 0 and (t0_rec is not None or timestamped(p)):
            # pacing starts at the first timestamped packet (identifiers before it carry no time)
            if t0_rec is None:
                t0_rec, t0_wall = t, clock()
            else:
                due = t0_wall + (t - t0_rec) / speed
                now = clock()
                if due > now:
                    sleep(due - now)
        if identifier_interval is not None and p:
            k = p[0]
            if k in (IDENTIFIER, IDENTIFIER_EXT, TYPE_DESCRIPTOR):
                key = (k, p[1] | (p[2] << 8) if k != TYPE_DESCRIPTOR else 0)
                if k == IDENTIFIER_EXT and len(p) >= 12:
                    start = p[10] | (p[11] << 8)
                    lst = latest.setdefault(key, [])
                    if start == 0:
                        lst.clear()
                    lst.append(p)
                else:
                    latest[key] = [p]
                if last_sent is None:
                    last_sent = t
            elif last_sent is not None and t - last_sent >= identifier_interval:
                for pk in latest.values():
                    yield from pk
                last_sent = t
        yield p


def replay_burst(source: Any, **kw: Any) -> bytes:
    """All recorded packets BURST-framed (vectorised), in recorded order.

    >>> from fastodin.odin.burst import burst_decode
    >>> burst_decode(replay_burst([b"\\x0b\\x01\\x00\\x00" + bytes(6)]))
    [b'\\x0b\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00']
    """
    if kw.get("speed") or kw.get("identifier_interval") is not None:
        return burst_encode_many(list(replay(source, **kw)))
    return burst_encode_many(packet_list(source, format=kw.get("format", "auto")))


def packet_list(source: Any, *, format: str = "auto") -> List[bytes]:
    """All recorded packets as a list (the fast path of :func:`iter_packets`: no times, no
    generator per packet for FastPack streams and archives).

    >>> packet_list([bytes(10)])
    [b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00']
    """
    from .decode import _archive_stream, _fastpack_packet_columns, _is_archive, _is_zstd, detect_format
    if isinstance(source, (list, tuple)) and (not source or isinstance(source[0], (bytes, bytearray, memoryview))):
        return [bytes(p) for p in source]
    data = None
    if _is_archive(source):
        data = _archive_stream(source)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            head = f.read(4)
            if format == "archive" or (format == "auto" and _is_zstd(head)):
                from ..archive.reader import open_archive
                with open_archive(source) as ar:
                    data = _archive_stream(ar)
            else:
                f.seek(0)
                source = f.read()
    if data is None and isinstance(source, (bytes, bytearray, memoryview)):
        fmt = detect_format(source) if format == "auto" else format
        if fmt == "burst":
            return burst_decode(source)
        if fmt != "fastpack":
            raise UsageError("replay: unknown format %r (auto, burst, fastpack, archive)" % format)
        data = source
    if data is not None:
        a, offs, lens, _, _ = _fastpack_packet_columns(data)
        b = a.tobytes() if not isinstance(data, bytes) else data
        return [b[o:o + l] for o, l in zip(offs.tolist(), lens.tolist())]
    return [p for _, p in timed_packets(source, format=format)]
