"""BURST link framing for ODIN packets on byte streams (serial, TCP).

``frame = COBS(packet || CRC16_BE(packet)) || 0x00`` with CRC-16/CCITT-FALSE over the packet.
COBS removes every 0x00 from the frame body, so 0x00 only ever delimits frames: a receiver
resynchronises at the next 0x00 after garbage.  Because the CRC has no xorout and is appended
big-endian, the CRC over ``packet || crc`` is 0 for a good frame.

Many frames at once are encoded/decoded with numpy (no per-byte Python loop); one frame at a time
uses a per-COBS-block loop.

>>> f = burst_encode(b"\\x02\\x00\\x01")
>>> f
b'\\x02\\x02\\x04\\x01\\xb2\\xdd\\x00'
>>> d = BurstDecoder(); d.feed(b"junk\\x00" + f); list(d)
[b'\\x02\\x00\\x01']
>>> d.stats.crc_errors + d.stats.cobs_errors
1
"""
from __future__ import annotations

from dataclasses import dataclass, asdict
from typing import Iterable, Iterator, List, Sequence

import numpy as np

from ..errors import OdinError
from .crc import crc16, crc16_frames

__all__ = ["cobs_encode", "cobs_decode", "burst_encode", "burst_encode_many", "burst_decode",
           "BurstDecoder", "BurstStats", "DEFAULT_MAX_FRAME"]

DEFAULT_MAX_FRAME = 1 << 16  # encoded bytes without a 0x00 before we call it garbage
_VECTOR_MIN_FRAMES = 16
_CHUNK_PACKETS = 8192
_CHUNK_BYTES = 1 << 22


def cobs_encode(data: "bytes | bytearray | memoryview") -> bytes:
    """COBS-encode ``data`` (no trailing delimiter).  A run of 254 non-zero bytes is one 0xFF block.

    >>> cobs_encode(b"\\x11\\x00\\x00\\x22")
    b'\\x02\\x11\\x01\\x02"'
    >>> cobs_encode(b"")
    b'\\x01'
    """
    out = bytearray()
    for part in bytes(data).split(b"\0"):
        while len(part) >= 254:
            out.append(255)
            out += part[:254]
            part = part[254:]
        out.append(len(part) + 1)
        out += part
    return bytes(out)


def cobs_decode(frame: "bytes | bytearray | memoryview") -> bytes:
    """Decode one COBS frame body (without the 0x00 delimiter).  Bad framing -> OdinError.

    >>> cobs_decode(b'\\x02\\x11\\x01\\x02"')
    b'\\x11\\x00\\x00"'
    """
    f = bytes(frame)
    n = len(f)
    out = bytearray()
    i = 0
    while i < n:
        c = f[i]
        if c == 0:
            raise OdinError("COBS frame holds a 0x00 at offset %d" % i, offset=i, length=n)
        j = i + c
        if j > n:
            raise OdinError("COBS block at offset %d claims %d bytes, frame has %d left" % (i, c - 1, n - i - 1),
                            offset=i, length=n)
        out += f[i + 1:j]
        if c < 0xFF and j < n:
            out.append(0)
        i = j
    return bytes(out)


def burst_encode(packet: "bytes | bytearray | memoryview") -> bytes:
    """One BURST frame for one packet: COBS(packet || CRC16 BE) || 0x00.

    >>> burst_encode(b"")[-1]
    0
    """
    p = bytes(packet)
    return cobs_encode(p + crc16(p).to_bytes(2, "big")) + b"\0"


def _encode_chunk(pkts: Sequence[bytes]) -> bytes:
    n = len(pkts)
    lens = np.fromiter(map(len, pkts), dtype=np.int64, count=n)
    buf = bytearray(b"\0" + b"\0\0\0\0".join(pkts) + b"\0\0\0")
    a = np.frombuffer(buf, dtype=np.uint8)
    starts = np.empty(n, dtype=np.int64)  # placeholder position of each frame
    starts[0] = 0
    if n > 1:
        np.cumsum(lens[:-1] + 4, out=starts[1:])
    crcs = crc16_frames(a, starts + 1, lens)
    cpos = starts + 1 + lens
    a[cpos] = (crcs >> 8).astype(np.uint8)
    a[cpos + 1] = (crcs & 0xFF).astype(np.uint8)
    delim = cpos + 2
    zpos = np.flatnonzero(a == 0)
    codes = np.diff(zpos)
    zhead = zpos[:-1]
    isdelim = np.zeros(len(a), dtype=bool)
    isdelim[delim] = True
    sel = ~isdelim[zhead]
    zhead = zhead[sel]
    codes = codes[sel]
    if len(codes) and int(codes.max()) > 255:
        # some frame has a run of >= 255 non-zero bytes: those frames take the exact slow path
        bad_pos = zhead[codes > 255]
        fr = np.unique(np.searchsorted(starts, bad_pos, side="right") - 1)
        a[zhead] = np.minimum(codes, 255).astype(np.uint8)
        bad = set(fr.tolist())
        out = []
        s_l = starts.tolist()
        l_l = lens.tolist()
        mv = memoryview(buf)
        for i in range(n):
            if i in bad:
                out.append(burst_encode(pkts[i]))
            else:
                out.append(mv[s_l[i]:s_l[i] + l_l[i] + 4])
        return b"".join(out)
    a[zhead] = codes.astype(np.uint8)
    return bytes(buf)


def burst_encode_many(packets: Iterable["bytes | bytearray | memoryview"]) -> bytes:
    """BURST frames for many packets, concatenated (numpy-vectorised COBS and CRC).

    >>> burst_encode_many([b"\\x02\\x00\\x01", b"\\x0b"]) == burst_encode(b"\\x02\\x00\\x01") + burst_encode(b"\\x0b")
    True
    """
    pk = [p if isinstance(p, bytes) else bytes(p) for p in packets]
    if len(pk) < _VECTOR_MIN_FRAMES:
        return b"".join(burst_encode(p) for p in pk)
    parts = []
    for i in range(0, len(pk), _CHUNK_PACKETS):
        parts.append(_encode_chunk(pk[i:i + _CHUNK_PACKETS]))
    return b"".join(parts)


@dataclass
class BurstStats:
    """Counters of a :class:`BurstDecoder`.

    >>> BurstStats().packets
    0
    """
    frames: int = 0          # non-empty delimited frames seen
    packets: int = 0         # good packets yielded
    crc_errors: int = 0      # frames whose CRC did not match
    cobs_errors: int = 0     # frames that are not valid COBS (garbage)
    short_frames: int = 0    # decoded frames shorter than the 2 CRC bytes
    oversize: int = 0        # runs longer than max_frame without a delimiter (dropped as garbage)
    garbage_bytes: int = 0   # encoded bytes in frames that failed
    empty_frames: int = 0    # consecutive delimiters

    def as_dict(self) -> dict:
        """Counters as a plain dict.

        >>> BurstStats().as_dict()["frames"]
        0
        """
        return asdict(self)


def _decode_scalar(body: bytes, stats: BurstStats, out: List[bytes]) -> None:
    for fr in body.split(b"\0"):
        if not fr:
            stats.empty_frames += 1
            continue
        stats.frames += 1
        try:
            d = cobs_decode(fr)
        except OdinError:
            stats.cobs_errors += 1
            stats.garbage_bytes += len(fr) + 1
            continue
        if len(d) < 2:
            stats.short_frames += 1
            stats.garbage_bytes += len(fr) + 1
            continue
        if crc16(d) != 0:
            stats.crc_errors += 1
            stats.garbage_bytes += len(fr) + 1
            continue
        stats.packets += 1
        out.append(d[:-2])


def _decode_vector(body: "bytes | memoryview", stats: BurstStats, out: List[bytes]) -> None:
    """Decode every frame of ``body`` (which ends with 0x00) with numpy."""
    a = np.frombuffer(body, dtype=np.uint8)
    zpos = np.flatnonzero(a == 0)
    fstart = np.empty(len(zpos), dtype=np.int64)
    fstart[0] = 0
    fstart[1:] = zpos[:-1] + 1
    fend = zpos
    flen = fend - fstart
    nonempty = flen > 0
    stats.empty_frames += int(len(flen) - np.count_nonzero(nonempty))
    if not nonempty.all():
        fstart = fstart[nonempty]
        fend = fend[nonempty]
        flen = flen[nonempty]
    nfr = len(fstart)
    if nfr == 0:
        return
    stats.frames += nfr
    keep = np.ones(len(a), dtype=bool)
    keep[zpos] = False
    keep[fstart] = False                     # first code byte of each frame
    zero_at = []                             # code positions that become 0x00
    dropped = []                             # frame index of each code dropped after a 0xFF block
    bad = np.zeros(nfr, dtype=bool)
    pos = fstart
    code = a[pos].astype(np.int64)
    idx = np.arange(nfr)
    endv = fend
    while True:
        nxt = pos + code
        act = nxt < endv
        if not act.all():
            over = nxt > endv
            if over.any():
                bad[idx[over]] = True
            if not act.any():
                break
            idx = idx[act]
            pos = nxt[act]
            endv = endv[act]
            prev_ff = code[act] == 0xFF
        else:
            pos = nxt
            prev_ff = code == 0xFF
        # a code byte after a 0xFF block is dropped, otherwise it stands for a 0x00
        if prev_ff.any():
            keep[pos[prev_ff]] = False
            dropped.append(idx[prev_ff])
            zero_at.append(pos[~prev_ff])
        else:
            zero_at.append(pos)
        code = a[pos].astype(np.int64)
    dec = a.copy()
    if zero_at:
        dec[np.concatenate(zero_at)] = 0
    olen = flen - 1
    if dropped:
        olen = olen - np.bincount(np.concatenate(dropped), minlength=nfr)
    ostart = np.empty(nfr, dtype=np.int64)
    ostart[0] = 0
    np.cumsum(olen[:-1], out=ostart[1:])
    oend = ostart + olen
    data = dec[keep]
    good = ~bad
    nb = int(np.count_nonzero(bad))
    if nb:
        stats.cobs_errors += nb
        stats.garbage_bytes += int((flen + 1)[bad].sum())
    short = good & (olen < 2)
    ns = int(np.count_nonzero(short))
    if ns:
        stats.short_frames += ns
        stats.garbage_bytes += int((flen + 1)[short].sum())
        good &= ~short
    gi = np.flatnonzero(good) if (nb or ns) else np.arange(nfr)
    crcs = crc16_frames(data, ostart[gi], olen[gi])
    okc = crcs == 0
    ncrc = int(len(gi) - np.count_nonzero(okc))
    if ncrc:
        stats.crc_errors += ncrc
        stats.garbage_bytes += int((flen + 1)[gi[~okc]].sum())
        gi = gi[okc]
    db = data.tobytes()
    ss = ostart[gi].tolist()
    ee = (oend[gi] - 2).tolist()
    out.extend([db[s:e] for s, e in zip(ss, ee)])
    stats.packets += len(gi)


class BurstDecoder:
    """Streaming BURST decoder: ``feed(bytes)`` then iterate the good packets (bytes).

    Resynchronises at every 0x00: garbage, bad COBS and bad CRCs are counted in ``stats``
    (never raised, never silently dropped from the counts).  A run of more than ``max_frame``
    bytes without a delimiter is discarded as garbage (``stats.oversize``), so memory stays bounded.

    >>> d = BurstDecoder()
    >>> for byte in burst_encode(b"\\x0b\\x07\\x00\\x00"): d.feed(bytes([byte]))
    >>> list(d)
    [b'\\x0b\\x07\\x00\\x00']
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 4:
            raise OdinError("max_frame must be >= 4", limit=max_frame)
        self.max_frame = max_frame
        self.stats = BurstStats()
        self._buf = bytearray()
        self._ready: List[bytes] = []
        self._ri = 0

    @property
    def buffered(self) -> int:
        """Bytes waiting for their delimiter."""
        return len(self._buf)

    def feed(self, data: "bytes | bytearray | memoryview") -> None:
        """Add bytes; complete frames are decoded at once (packets wait in the decoder).

        >>> d = BurstDecoder(); d.feed(b"\\x00\\x00"); d.stats.empty_frames
        2
        """
        buf = self._buf
        if self._ri and self._ri >= len(self._ready):
            self._ready = []
            self._ri = 0
        if isinstance(data, bytes) and len(data) > 65536:
            last = data.rfind(b"\0")
            if last >= 0:
                start = 0
                if buf:  # finish the frame begun in the previous feed
                    first = data.find(b"\0")
                    buf += memoryview(data)[:first + 1]
                    body = bytes(buf)
                    buf.clear()
                    self._decode(body, len(body))
                    start = first + 1
                if last >= start:
                    self._decode(data, last + 1, start)   # decode in place, no copy
                buf += memoryview(data)[last + 1:]
                self._check_oversize()
                return
        buf += data
        last = buf.rfind(b"\0")
        if last < 0:
            self._check_oversize()
            return
        body = bytes(buf[:last + 1])
        del buf[:last + 1]
        self._decode(body, len(body))

    def _check_oversize(self) -> None:
        buf = self._buf
        if len(buf) > self.max_frame:
            self.stats.oversize += 1
            self.stats.garbage_bytes += len(buf)
            buf.clear()

    def _decode(self, body: bytes, n: int, start: int = 0) -> None:
        """Decode ``body[start:n]`` (which ends with 0x00)."""
        out = self._ready
        if n - start < 4096 and body.count(0, start, n) < _VECTOR_MIN_FRAMES:
            _decode_scalar(body[start:n - 1], self.stats, out)
            return
        mv = memoryview(body)
        s = start
        while s < n:
            lim = s + _CHUNK_BYTES
            if lim >= n:
                e = n - 1
            else:
                e = body.rfind(b"\0", s, lim)
                if e < 0:  # a frame longer than the chunk: take it whole
                    e = body.find(b"\0", lim, n)
            _decode_vector(mv[s:e + 1], self.stats, out)
            s = e + 1

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._ri < len(self._ready):
            p = self._ready[self._ri]
            self._ri += 1
            return p
        self._ready = []
        self._ri = 0
        raise StopIteration

    def take(self) -> List[bytes]:
        """All decoded packets not yet iterated, as a list.

        >>> d = BurstDecoder(); d.feed(burst_encode(b"ab")); d.take()
        [b'ab']
        """
        r = self._ready[self._ri:] if self._ri else self._ready
        self._ready = []
        self._ri = 0
        return r


def burst_decode(data: "bytes | bytearray | memoryview", stats: "BurstStats | None" = None) -> List[bytes]:
    """Decode a whole BURST byte string into packets (a trailing partial frame counts as garbage).

    >>> burst_decode(burst_encode(b"xyz") + b"\\x05")
    [b'xyz']
    """
    d = BurstDecoder(max_frame=max(DEFAULT_MAX_FRAME, len(data) + 1))
    d.feed(data)
    out = d.take()
    if d.buffered:
        d.stats.garbage_bytes += d.buffered
        d.stats.cobs_errors += 1
    if stats is not None:
        for k, v in d.stats.as_dict().items():
            setattr(stats, k, getattr(stats, k) + v)
    return out
