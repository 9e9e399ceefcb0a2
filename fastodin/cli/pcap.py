"""Minimal classic-pcap reading and writing of UDP datagrams (ODIN packet captures).

Reading: libpcap files (µs or ns timestamps, either byte order) with link types Ethernet (VLAN
tags included), Linux cooked (SLL, SLL2), raw IP and BSD loopback; IPv4 (unfragmented) and IPv6
(no extension headers) carrying UDP.  Anything else is skipped and counted.  pcapng is refused
with a clear message.  Writing: raw-IP link type, IPv4 127.0.0.1 -> 127.0.0.1, one UDP datagram
per packet, timestamps from the record times.

>>> data = write_pcap([(1.5, b"\\x0b\\x01")], port=9000)
>>> pk, st = read_pcap(data)
>>> pk, st["udp"]
([(1.5, b'\\x0b\\x01')], 1)
"""
from __future__ import annotations

import struct
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..errors import DataError

__all__ = ["is_pcap", "read_pcap", "write_pcap", "PcapWriter", "pcap_time", "PcapError"]

_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG = b"\x0a\x0d\x0d\x0a"


class PcapError(DataError):
    """Not a pcap file we can read, or a packet that does not fit one (a DataError, so a ValueError).

    >>> isinstance(PcapError("x"), ValueError)
    True
    """


def is_pcap(head: bytes) -> bool:
    """Classic pcap or pcapng magic?

    >>> is_pcap(b"\\xd4\\xc3\\xb2\\xa1rest"), is_pcap(b"abcd")
    (True, False)
    """
    return head[:4] in _MAGICS or head[:4] == _PCAPNG


def _ip_udp(b: memoryview, st: Dict[str, int], port: Optional[int]) -> Optional[bytes]:
    if len(b) < 1:
        return None
    v = b[0] >> 4
    if v == 4:
        if len(b) < 20:
            st["short"] += 1
            return None
        ihl = (b[0] & 15) * 4
        total = (b[2] << 8) | b[3]
        frag = ((b[6] << 8) | b[7]) & 0x3FFF
        if b[9] != 17:
            st["not_udp"] += 1
            return None
        if frag:
            st["fragments"] += 1
            return None
        u = b[ihl:total] if total >= ihl and total <= len(b) else b[ihl:]
    elif v == 6:
        if len(b) < 48:
            st["short"] += 1
            return None
        if b[6] != 17:
            st["not_udp"] += 1
            return None
        u = b[40:]
    else:
        st["not_ip"] += 1
        return None
    if len(u) < 8:
        st["short"] += 1
        return None
    dport = (u[2] << 8) | u[3]
    if port is not None and dport != port:
        st["other_ports"] += 1
        return None
    ulen = (u[4] << 8) | u[5]
    if ulen < 8 or ulen > len(u):
        st["short"] += 1
        return None
    st["udp"] += 1
    return bytes(u[8:ulen])


def read_pcap(data: bytes, port: Optional[int] = None) -> Tuple[List[Tuple[float, bytes]], Dict[str, int]]:
    """``([(time, udp payload)], stats)`` of a classic pcap file (see the module docstring)."""
    if data[:4] == _PCAPNG:
        raise PcapError("pcapng is not supported: convert it with `editcap -F pcap IN OUT` first")
    if data[:4] not in _MAGICS or len(data) < 24:
        raise PcapError("not a pcap file (bad magic)")
    bo, unit = _MAGICS[data[:4]]
    link = struct.unpack_from(bo + "I", data, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(bo + "IIII")
    st = {"frames": 0, "udp": 0, "not_ip": 0, "not_udp": 0, "fragments": 0, "short": 0, "other_ports": 0,
          "truncated_tail": 0}
    mv = memoryview(data)
    out: List[Tuple[float, bytes]] = []
    pos = 24
    n = len(data)
    while pos + 16 <= n:
        sec, frac, incl, _orig = rec.unpack_from(data, pos)
        pos += 16
        if pos + incl > n:
            st["truncated_tail"] += 1
            break
        f = mv[pos : pos + incl]
        pos += incl
        st["frames"] += 1
        t = sec + frac * unit
        if link == 1:  # Ethernet
            off, et = 12, None
            while off + 2 <= len(f):
                et = (f[off] << 8) | f[off + 1]
                if et in (0x8100, 0x88A8):
                    off += 4
                    continue
                break
            if et not in (0x0800, 0x86DD):
                st["not_ip"] += 1
                continue
            ip = f[off + 2 :]
        elif link == 113:  # Linux SLL
            ip = f[16:]
        elif link == 276:  # Linux SLL2
            ip = f[20:]
        elif link in (101, 12, 14, 228, 229):  # raw IP
            ip = f
        elif link in (0, 108):  # BSD loopback / OpenBSD loop
            ip = f[4:]
        else:
            raise PcapError(f"pcap link type {link} is not supported (Ethernet, Linux cooked, raw IP, loopback are)")
        p = _ip_udp(ip, st, port)
        if p is not None:
            out.append((t, p))
    if pos < n and not st["truncated_tail"]:
        st["truncated_tail"] = 1
    return out, st


def _csum(h: bytes) -> int:
    s = sum(struct.unpack("!10H", h))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pcap_time(t: float) -> Tuple[int, int]:
    """A record time as pcap ``(ts_sec, ts_usec)``: rounded to the nearest µs; negative times, -0.0
    and NaN give (0, 0); times past the u32 range (+Inf included) give (0xFFFFFFFF, 999999).

    >>> pcap_time(1.5), pcap_time(2.9999996), pcap_time(-1.0), pcap_time(float("inf"))
    ((1, 500000), (3, 0), (0, 0), (4294967295, 999999))
    """
    t = float(t)
    if not t > 0.0:
        return 0, 0
    if t >= 4294967296.0:
        return 0xFFFFFFFF, 999999
    sec = int(t)
    usec = int(round((t - sec) * 1e6))
    if usec >= 1000000:
        sec, usec = sec + 1, usec - 1000000
    if sec > 0xFFFFFFFF:
        return 0xFFFFFFFF, 999999
    return sec, usec


class PcapWriter:
    """Classic pcap bytes written as packets come: the global header first, then one record per
    ``add(items)`` item (spec/cli-outputs.md §1); ``write`` takes each piece of bytes.

    >>> out = []
    >>> w = PcapWriter(out.append, port=9000); w.add([(1.5, b"\\x0b\\x01")]); w.add([(2.0, b"")])
    >>> b"".join(out) == write_pcap([(1.5, b"\\x0b\\x01"), (2.0, b"")], port=9000)
    True
    """

    def __init__(self, write: Any, port: int = 9000) -> None:
        self.write = write
        self.port = port
        self.ident = 0
        self.count = 0
        write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))

    def add(self, items: Iterable[Tuple[float, bytes]]) -> None:
        """Append one UDP datagram per ``(time, payload)``; over 65,507 bytes is a :class:`PcapError`."""
        parts = []
        port = self.port
        ident = self.ident
        for t, p in items:
            ulen = 8 + len(p)
            tot = 20 + ulen
            if tot > 65535:
                raise PcapError(f"a {len(p)}-byte packet does not fit one UDP datagram")
            ident = (ident + 1) & 0xFFFF
            h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, ident, 0x4000, 64, 17, 0, b"\x7f\0\0\x01", b"\x7f\0\0\x01")
            h = h[:10] + struct.pack("!H", _csum(h)) + h[12:]
            u = struct.pack("!HHHH", port, port, ulen, 0)
            sec, usec = pcap_time(t)
            parts.append(struct.pack("<IIII", sec, usec, tot, tot))
            parts.append(h)
            parts.append(u)
            parts.append(bytes(p))
            self.count += 1
        self.ident = ident
        if parts:
            self.write(b"".join(parts))


def write_pcap(items: Iterable[Tuple[float, bytes]], port: int = 9000) -> bytes:
    """A classic pcap (raw IPv4, µs) of one UDP datagram per ``(time, payload)``; every byte is
    in spec/cli-outputs.md §1.  A payload over 65,507 bytes raises :class:`PcapError`.

    >>> len(write_pcap([(0.0, b"ab")]))
    70
    """
    parts: List[bytes] = []
    PcapWriter(parts.append, port).add(items)
    return b"".join(parts)
