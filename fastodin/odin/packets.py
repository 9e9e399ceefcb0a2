"""ODIN stream packets: parse and build, byte-exact with odin-stream 0.2.0.

Every packet starts with ``type u8 | identifier u16 LE | reserved u8`` (little-endian, packed).
There is no length field: the packet is the whole transport frame.  Layouts (see spec/odin.md):

* 0x01 IDENTIFIER:      ``definition_identifier u32`` then N x (``index u32``, ``size u16``)
* 0x02 DATA:            ``timestamp u32, sequence u16`` then the entries' bytes
* 0x03 IDENTIFIER_EXT:  ``definition_identifier u32, total_count u16, start_ordinal u16`` then items
  ``index u32, size u16, element_type u8, name_len u8, type_id u16, name``
* 0x04 TYPE_DESCRIPTOR: ``definition_identifier u32, total_count u16, start_ordinal u16`` then types
  ``type_id u16, size u16, field_count u8, name_len u8, name`` + fields
  ``element_type u8, size u16, offset u16, name_len u8, name``
* 0x0B EVENT:           ``timestamp u32, sequence u16`` then an opaque payload

The reserved byte (and the event's sequence, which the reference never writes) is kept so that
every packet rebuilds byte-identical.  Unknown types parse to :class:`UnknownPacket`.

>>> p = parse_packet(bytes.fromhex("0b070000150400000000") + b"hi")
>>> p.event_id, p.timestamp, p.payload
(7, 1045, b'hi')
>>> p.to_bytes().hex()
'0b0700001504000000006869'
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Tuple, Union

from ..errors import OdinError

__all__ = [
    "IDENTIFIER", "DATA", "IDENTIFIER_EXT", "TYPE_DESCRIPTOR", "EVENT", "PACKET_NAMES",
    "IdentifierEntry", "Identifier", "Data", "ExtItem", "IdentifierExt", "TypeField", "TypeDef",
    "TypeDescriptor", "Event", "UnknownPacket", "Packet", "parse_packet", "build_packet",
    "HEADER", "DATA_HEADER_SIZE", "EVENT_HEADER_SIZE",
]

IDENTIFIER = 0x01
DATA = 0x02
IDENTIFIER_EXT = 0x03
TYPE_DESCRIPTOR = 0x04
EVENT = 0x0B
PACKET_NAMES = {IDENTIFIER: "IDENTIFIER", DATA: "DATA", IDENTIFIER_EXT: "IDENTIFIER_EXT",
                TYPE_DESCRIPTOR: "TYPE_DESCRIPTOR", EVENT: "EVENT"}

HEADER = struct.Struct("<BHB")
_DATA_HDR = struct.Struct("<BHBIH")          # 10 bytes: DATA and EVENT
_IDENT_HDR = struct.Struct("<BHBI")          # 8 bytes
_EXT_HDR = struct.Struct("<BHBIHH")          # 12 bytes: IDENTIFIER_EXT, TYPE_DESCRIPTOR
_ENTRY = struct.Struct("<IH")                # 6 bytes
_EXT_ITEM = struct.Struct("<IHBBH")          # 10 bytes + name
_TYPE_HDR = struct.Struct("<HHBB")           # 6 bytes + name
_FIELD = struct.Struct("<BHHB")              # 6 bytes + name
DATA_HEADER_SIZE = 10
EVENT_HEADER_SIZE = 10


def _name(b: "bytes | memoryview") -> str:
    return bytes(b).decode("utf-8", "surrogateescape")


def _nbytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class IdentifierEntry:
    """One entry of a 0x01 IDENTIFIER: global id and its size in DATA packets.

    >>> IdentifierEntry(0x01010000, 4).size
    4
    """
    global_id: int
    size: int


@dataclass(frozen=True)
class Identifier:
    """0x01 IDENTIFIER packet.

    >>> Identifier(0x0996, 0x0A0B, (IdentifierEntry(1, 4),)).to_bytes().hex()
    '019609000b0a0000010000000400'
    """
    set_id: int
    definition_identifier: int
    entries: Tuple[IdentifierEntry, ...]
    reserved: int = 0
    type = IDENTIFIER

    def to_bytes(self) -> bytes:
        parts = [_IDENT_HDR.pack(IDENTIFIER, self.set_id, self.reserved, self.definition_identifier)]
        parts += [_ENTRY.pack(e.global_id, e.size) for e in self.entries]
        return b"".join(parts)

    @property
    def data_size(self) -> int:
        """Bytes of entry data in a DATA packet of this set."""
        return sum(e.size for e in self.entries)


@dataclass(frozen=True)
class Data:
    """0x02 DATA packet: ``payload`` is the entries' bytes in identifier order.

    >>> Data(0x0996, 1000, 0, b"\\x01\\x02").to_bytes().hex()
    '02960900e803000000000102'
    """
    set_id: int
    timestamp: int
    sequence: int
    payload: bytes
    reserved: int = 0
    type = DATA

    def to_bytes(self) -> bytes:
        return _DATA_HDR.pack(DATA, self.set_id, self.reserved, self.timestamp, self.sequence) + bytes(self.payload)


@dataclass(frozen=True)
class ExtItem:
    """One item of a 0x03 IDENTIFIER_EXT: global id, size, element type, type id, dotted name.

    >>> ExtItem(0x01010000, 4, 10, 0, "sensors.temperature").element_type
    10
    """
    global_id: int
    size: int
    element_type: int
    type_id: int
    name: str


@dataclass(frozen=True)
class IdentifierExt:
    """0x03 IDENTIFIER_EXT packet: one chunk of a self-describing set schema.

    >>> p = IdentifierExt(0xCC4D, 0x0A0B, 1, 0, (ExtItem(1, 4, 10, 0, "a"),))
    >>> parse_packet(p.to_bytes()) == p
    True
    """
    set_id: int
    definition_identifier: int
    total_count: int
    start_ordinal: int
    items: Tuple[ExtItem, ...]
    reserved: int = 0
    type = IDENTIFIER_EXT

    def to_bytes(self) -> bytes:
        parts = [_EXT_HDR.pack(IDENTIFIER_EXT, self.set_id, self.reserved, self.definition_identifier,
                               self.total_count, self.start_ordinal)]
        for it in self.items:
            nb = _nbytes(it.name)
            if len(nb) > 255:
                raise OdinError("IDENTIFIER_EXT item name longer than 255 bytes: %r" % it.name[:40],
                                length=len(nb), limit=255)
            parts.append(_EXT_ITEM.pack(it.global_id, it.size, it.element_type, len(nb), it.type_id))
            parts.append(nb)
        return b"".join(parts)


@dataclass(frozen=True)
class TypeField:
    """One field of a custom type in a 0x04 TYPE_DESCRIPTOR (offset is the real C offset).

    >>> TypeField(10, 4, 0, "x").offset
    0
    """
    element_type: int
    size: int
    offset: int
    name: str


@dataclass(frozen=True)
class TypeDef:
    """One custom type (struct) of a 0x04 TYPE_DESCRIPTOR.

    >>> TypeDef(66, 12, "vec3", (TypeField(10, 4, 0, "x"),)).size
    12
    """
    type_id: int
    size: int
    name: str
    fields: Tuple[TypeField, ...]


@dataclass(frozen=True)
class TypeDescriptor:
    """0x04 TYPE_DESCRIPTOR packet (header identifier is 0 from the reference; kept as read).

    >>> t = TypeDescriptor(0x0A0B, 1, 0, (TypeDef(66, 4, "t", (TypeField(10, 4, 0, "x"),)),))
    >>> parse_packet(t.to_bytes()) == t
    True
    """
    definition_identifier: int
    total_count: int
    start_ordinal: int
    types: Tuple[TypeDef, ...]
    identifier: int = 0
    reserved: int = 0
    type = TYPE_DESCRIPTOR

    def to_bytes(self) -> bytes:
        parts = [_EXT_HDR.pack(TYPE_DESCRIPTOR, self.identifier, self.reserved, self.definition_identifier,
                               self.total_count, self.start_ordinal)]
        for td in self.types:
            nb = _nbytes(td.name)
            if len(nb) > 255 or len(td.fields) > 255:
                raise OdinError("TYPE_DESCRIPTOR type %r: name or field count over 255" % td.name[:40],
                                limit=255)
            parts.append(_TYPE_HDR.pack(td.type_id, td.size, len(td.fields), len(nb)))
            parts.append(nb)
            for f in td.fields:
                fb = _nbytes(f.name)
                if len(fb) > 255:
                    raise OdinError("TYPE_DESCRIPTOR field name over 255 bytes", length=len(fb), limit=255)
                parts.append(_FIELD.pack(f.element_type, f.size, f.offset, len(fb)))
                parts.append(fb)
        return b"".join(parts)


@dataclass(frozen=True)
class Event:
    """0x0B EVENT packet; ``sequence`` and ``reserved`` are bytes the reference never writes.

    >>> Event(7, 1045, b"x").to_bytes().hex()
    '0b07000015040000000078'
    """
    event_id: int
    timestamp: int
    payload: bytes
    sequence: int = 0
    reserved: int = 0
    type = EVENT

    def to_bytes(self) -> bytes:
        return _DATA_HDR.pack(EVENT, self.event_id, self.reserved, self.timestamp, self.sequence) + bytes(self.payload)


@dataclass(frozen=True)
class UnknownPacket:
    """A packet whose type byte we do not know: kept verbatim.

    >>> UnknownPacket(0x7F, b"\\x7f\\x00").to_bytes()
    b'\\x7f\\x00'
    """
    packet_type: int
    raw: bytes = field(repr=False)

    @property
    def type(self) -> int:  # type: ignore[override]
        return self.packet_type

    def to_bytes(self) -> bytes:
        return bytes(self.raw)


Packet = Union[Identifier, Data, IdentifierExt, TypeDescriptor, Event, UnknownPacket]


def _err(msg: str, n: int, index, offset: int = 0) -> OdinError:
    where = " (packet #%d)" % index if index is not None else ""
    return OdinError("%s%s" % (msg, where), offset=offset, length=n, record=index)


def _parse_identifier(b: memoryview, n: int, index) -> Identifier:
    if n < 8:
        raise _err("IDENTIFIER packet too short: %d bytes, need at least 8" % n, n, index)
    if (n - 8) % 6:
        raise _err("IDENTIFIER packet length %d: (len-8) %% 6 = %d, entries are 6 bytes"
                   % (n, (n - 8) % 6), n, index, offset=8)
    _, sid, res, defid = _IDENT_HDR.unpack_from(b, 0)
    cnt = (n - 8) // 6
    vals = struct.unpack_from("<" + "IH" * cnt, b, 8)
    entries = tuple(IdentifierEntry(vals[i], vals[i + 1]) for i in range(0, 2 * cnt, 2))
    return Identifier(sid, defid, entries, res)


def _parse_data(b: memoryview, n: int, index) -> Data:
    if n < DATA_HEADER_SIZE:
        raise _err("DATA packet too short: %d bytes, need at least 10" % n, n, index)
    _, sid, res, ts, seq = _DATA_HDR.unpack_from(b, 0)
    return Data(sid, ts, seq, bytes(b[10:]), res)


def _parse_event(b: memoryview, n: int, index) -> Event:
    if n < EVENT_HEADER_SIZE:
        raise _err("EVENT packet too short: %d bytes, need at least 10" % n, n, index)
    _, eid, res, ts, seq = _DATA_HDR.unpack_from(b, 0)
    return Event(eid, ts, bytes(b[10:]), seq, res)


def _parse_ext(b: memoryview, n: int, index) -> IdentifierExt:
    if n < 12:
        raise _err("IDENTIFIER_EXT packet too short: %d bytes, need at least 12" % n, n, index)
    _, sid, res, defid, total, start = _EXT_HDR.unpack_from(b, 0)
    items = []
    off = 12
    while off < n:
        if off + 10 > n:
            raise _err("IDENTIFIER_EXT item %d header cut at offset %d (needs 10 bytes, %d left)"
                       % (start + len(items), off, n - off), n, index, offset=off)
        gid, size, et, nlen, tid = _EXT_ITEM.unpack_from(b, off)
        if off + 10 + nlen > n:
            raise _err("IDENTIFIER_EXT item %d name_len %d overruns the packet at offset %d (%d bytes left)"
                       % (start + len(items), nlen, off + 10, n - off - 10), n, index, offset=off + 10)
        items.append(ExtItem(gid, size, et, tid, _name(b[off + 10:off + 10 + nlen])))
        off += 10 + nlen
    if start + len(items) > total and items:
        raise _err("IDENTIFIER_EXT ordinals %d..%d exceed total_count %d"
                   % (start, start + len(items) - 1, total), n, index, offset=10)
    return IdentifierExt(sid, defid, total, start, tuple(items), res)


def _parse_types(b: memoryview, n: int, index) -> TypeDescriptor:
    if n < 12:
        raise _err("TYPE_DESCRIPTOR packet too short: %d bytes, need at least 12" % n, n, index)
    _, ident, res, defid, total, start = _EXT_HDR.unpack_from(b, 0)
    types = []
    off = 12
    while off < n:
        if off + 6 > n:
            raise _err("TYPE_DESCRIPTOR type header cut at offset %d (needs 6 bytes, %d left)"
                       % (off, n - off), n, index, offset=off)
        tid, size, fcount, nlen = _TYPE_HDR.unpack_from(b, off)
        off += 6
        if off + nlen > n:
            raise _err("TYPE_DESCRIPTOR type %d name_len %d overruns the packet at offset %d"
                       % (tid, nlen, off), n, index, offset=off)
        tname = _name(b[off:off + nlen])
        off += nlen
        fields = []
        for k in range(fcount):
            if off + 6 > n:
                raise _err("TYPE_DESCRIPTOR type %r field %d header cut at offset %d" % (tname, k, off),
                           n, index, offset=off)
            et, fsize, foff, flen = _FIELD.unpack_from(b, off)
            off += 6
            if off + flen > n:
                raise _err("TYPE_DESCRIPTOR type %r field %d name_len %d overruns the packet at offset %d"
                           % (tname, k, flen, off), n, index, offset=off)
            fields.append(TypeField(et, fsize, foff, _name(b[off:off + flen])))
            off += flen
        types.append(TypeDef(tid, size, tname, tuple(fields)))
    return TypeDescriptor(defid, total, start, tuple(types), ident, res)


_PARSERS = {IDENTIFIER: _parse_identifier, DATA: _parse_data, IDENTIFIER_EXT: _parse_ext,
            TYPE_DESCRIPTOR: _parse_types, EVENT: _parse_event}


def parse_packet(buf: "bytes | bytearray | memoryview", *, index: "int | None" = None) -> Packet:
    """Parse one ODIN packet (the whole transport frame).  Unknown types -> :class:`UnknownPacket`.

    Malformed packets raise :class:`fastodin.errors.OdinError` with offset (inside the packet),
    length (the packet's) and, when ``index`` is given, ``record`` = packet number.

    >>> parse_packet(b"\\x02\\x96\\x09\\x00\\xe8\\x03\\x00\\x00\\x01\\x00").sequence
    1
    >>> parse_packet(b"\\x02\\x96")
    Traceback (most recent call last):
    ...
    fastodin.errors.OdinError: DATA packet too short: 2 bytes, the header alone is 4
    """
    b = memoryview(buf).cast("B") if not isinstance(buf, bytes) else memoryview(buf)
    n = len(b)
    if n == 0:
        raise _err("empty packet", 0, index)
    t = b[0]
    p = _PARSERS.get(t)
    if p is None:
        return UnknownPacket(t, bytes(b))
    if n < 4:
        raise _err("%s packet too short: %d bytes, the header alone is 4" % (PACKET_NAMES[t], n), n, index)
    return p(b, n, index)


def build_packet(packet: Packet) -> bytes:
    """Bytes of a packet object (same as ``packet.to_bytes()``).

    >>> build_packet(Event(1, 2, b""))
    b'\\x0b\\x01\\x00\\x00\\x02\\x00\\x00\\x00\\x00\\x00'
    """
    return packet.to_bytes()
