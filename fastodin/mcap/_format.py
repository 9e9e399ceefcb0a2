"""MCAP records, byte for byte: opcodes, record builders and a bounds-checked record parser.

The one home of the MCAP format rules fastodin uses (https://mcap.dev/spec, major version 0):
every record is ``opcode u8 | length u64 | body``; strings are ``u32 length | UTF-8``; maps are
``u32 byte length | entries``.  Both :mod:`fastodin.mcap.writer` and :mod:`fastodin.mcap.reader`
go through here.  The parser never trusts a length: each one is checked against what is left
of its record (or chunk, or file) before anything is read or allocated, and every problem is a
:class:`~fastodin.errors.DataError` naming where it is.

>>> body = schema_body(1, "imu", "jsonschema", b"{}")
>>> c = Cursor(body, "schema record at offset 8")
>>> c.u16(), c.string(), c.string(), c.bytes32()
(1, 'imu', 'jsonschema', b'{}')
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, Dict, Optional

from ..errors import DataError, LimitError, MissingDependency, TruncatedError

__all__ = ["MAGIC", "Op", "record", "string", "map_ss", "Cursor", "decompress", "DEFAULT_MAX_CHUNK_SIZE",
           "header_body", "schema_body", "channel_body", "chunk_body", "metadata_body", "message_index_body",
           "chunk_index_body", "statistics_body", "metadata_index_body", "attachment_body", "attachment_index_body",
           "summary_offset_body", "footer_record", "data_end_body", "MESSAGE_HEADER", "OPLEN"]

MAGIC = b"\x89MCAP0\r\n"
#: Largest decompressed chunk accepted (a chunk claiming more is a LimitError): a hostile file of
#: a few KB cannot make the reader allocate more than this.
DEFAULT_MAX_CHUNK_SIZE = 1 << 28


class Op:
    """Record opcodes (0x80..0xFF are private records, skipped by readers)."""

    HEADER = 0x01
    FOOTER = 0x02
    SCHEMA = 0x03
    CHANNEL = 0x04
    MESSAGE = 0x05
    CHUNK = 0x06
    MESSAGE_INDEX = 0x07
    CHUNK_INDEX = 0x08
    ATTACHMENT = 0x09
    ATTACHMENT_INDEX = 0x0A
    STATISTICS = 0x0B
    METADATA = 0x0C
    METADATA_INDEX = 0x0D
    SUMMARY_OFFSET = 0x0E
    DATA_END = 0x0F


#: opcode u8 | record length u64
OPLEN = struct.Struct("<BQ")
#: a whole message record header: opcode, length, channel_id u16, sequence u32, log_time u64, publish_time u64
MESSAGE_HEADER = struct.Struct("<BQHIQQ")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def record(op: int, body: bytes) -> bytes:
    """One whole record.

    >>> record(Op.DATA_END, data_end_body(0)).hex()
    '0f040000000000000000000000'
    """
    return OPLEN.pack(op, len(body)) + body


def string(s: str) -> bytes:
    b = s.encode("utf-8", "surrogateescape")
    return _U32.pack(len(b)) + b


def map_ss(d: Dict[str, str]) -> bytes:
    """``Map<string, string>``."""
    inner = b"".join(string(k) + string(v) for k, v in d.items())
    return _U32.pack(len(inner)) + inner


def _map_u16_u64(d: Dict[int, int]) -> bytes:
    inner = b"".join(struct.pack("<HQ", k, v) for k, v in d.items())
    return _U32.pack(len(inner)) + inner


def header_body(profile: str, library: str) -> bytes:
    return string(profile) + string(library)


def schema_body(sid: int, name: str, encoding: str, data: bytes) -> bytes:
    return _U16.pack(sid) + string(name) + string(encoding) + _U32.pack(len(data)) + data


def channel_body(cid: int, schema_id: int, topic: str, encoding: str, metadata: Dict[str, str]) -> bytes:
    return struct.pack("<HH", cid, schema_id) + string(topic) + string(encoding) + map_ss(metadata)


def chunk_body(start: int, end: int, usize: int, crc: int, compression: str, data: bytes) -> bytes:
    return struct.pack("<QQQI", start, end, usize, crc) + string(compression) + _U64.pack(len(data)) + data


def message_index_body(cid: int, pairs: bytes) -> bytes:
    """``pairs``: the packed ``(log_time u64, offset u64)`` array."""
    return _U16.pack(cid) + _U32.pack(len(pairs)) + pairs


def chunk_index_body(start: int, end: int, offset: int, length: int, index_offsets: Dict[int, int],
                     index_length: int, compression: str, csize: int, usize: int) -> bytes:
    return (struct.pack("<QQQQ", start, end, offset, length) + _map_u16_u64(index_offsets)
            + _U64.pack(index_length) + string(compression) + struct.pack("<QQ", csize, usize))


def statistics_body(n_messages: int, n_schemas: int, n_channels: int, n_attachments: int, n_metadata: int,
                    n_chunks: int, start: int, end: int, counts: Dict[int, int]) -> bytes:
    return struct.pack("<QHIIIIQQ", n_messages, n_schemas, n_channels, n_attachments, n_metadata, n_chunks,
                       start, end) + _map_u16_u64(counts)


def metadata_body(name: str, d: Dict[str, str]) -> bytes:
    return string(name) + map_ss(d)


def metadata_index_body(offset: int, length: int, name: str) -> bytes:
    return struct.pack("<QQ", offset, length) + string(name)


def attachment_body(log_time: int, create_time: int, name: str, media_type: str, data: bytes) -> bytes:
    head = struct.pack("<QQ", log_time, create_time) + string(name) + string(media_type) + _U64.pack(len(data))
    crc = zlib.crc32(data, zlib.crc32(head))
    return head + data + _U32.pack(crc)


def attachment_index_body(offset: int, length: int, log_time: int, create_time: int, size: int, name: str,
                          media_type: str) -> bytes:
    return struct.pack("<QQQQQ", offset, length, log_time, create_time, size) + string(name) + string(media_type)


def summary_offset_body(op: int, start: int, length: int) -> bytes:
    return struct.pack("<BQQ", op, start, length)


def data_end_body(crc: int) -> bytes:
    return _U32.pack(crc)


def footer_record(summary: bytes, summary_start: int, summary_offset_start: int) -> bytes:
    """The footer record; its CRC covers the summary and the footer up to the CRC field."""
    head = OPLEN.pack(Op.FOOTER, 20) + struct.pack("<QQ", summary_start, summary_offset_start)
    return head + _U32.pack(zlib.crc32(head, zlib.crc32(summary)))


class Cursor:
    """Bounds-checked reads from one record body; ``where`` names the record in errors."""

    __slots__ = ("buf", "pos", "end", "where", "base")

    def __init__(self, buf: Any, where: str, pos: int = 0, end: Optional[int] = None, base: int = 0) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.where = where
        self.base = base      # file offset of buf[0] (for error offsets), when known

    def _need(self, n: int, what: str) -> int:
        p = self.pos
        if n > self.end - p:
            raise TruncatedError(f"{self.where}: {what} needs {n} bytes, only {self.end - p} left",
                                 offset=self.base + p, length=n)
        self.pos = p + n
        return p

    def u8(self) -> int:
        return int(self.buf[self._need(1, "u8")])

    def u16(self) -> int:
        return _U16.unpack_from(self.buf, self._need(2, "u16"))[0]

    def u32(self) -> int:
        return _U32.unpack_from(self.buf, self._need(4, "u32"))[0]

    def u64(self) -> int:
        return _U64.unpack_from(self.buf, self._need(8, "u64"))[0]

    def raw(self, n: int, what: str = "bytes") -> bytes:
        p = self._need(n, what)
        return bytes(self.buf[p:p + n])

    def string(self, what: str = "string") -> str:
        n = self.u32()
        p = self._need(n, what)
        try:
            return bytes(self.buf[p:p + n]).decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{self.where}: {what} is not UTF-8 ({e.reason} at byte {e.start})",
                            offset=self.base + p + e.start) from None

    def bytes32(self) -> bytes:
        return self.raw(self.u32(), "u32-prefixed bytes")

    def map_ss(self, what: str = "map") -> Dict[str, str]:
        n = self.u32()
        stop = self._need(n, what) + n
        self.pos -= n
        out: Dict[str, str] = {}
        end, self.end = self.end, stop
        try:
            while self.pos < stop:
                k = self.string(f"{what} key")
                out[k] = self.string(f"{what} value")
        finally:
            self.end = end
        return out

    def map_u16_u64(self, what: str = "map") -> Dict[int, int]:
        n = self.u32()
        if n % 10:
            raise DataError(f"{self.where}: {what} of {n} bytes is not a whole number of u16/u64 pairs",
                            offset=self.base + self.pos)
        p = self._need(n, what)
        return {k: v for k, v in struct.iter_unpack("<HQ", bytes(self.buf[p:p + n]))}

    def pairs_u64(self, what: str = "array") -> bytes:
        """A u32-prefixed array of (u64, u64) pairs, as raw bytes."""
        n = self.u32()
        if n % 16:
            raise DataError(f"{self.where}: {what} of {n} bytes is not a whole number of u64 pairs",
                            offset=self.base + self.pos)
        return self.raw(n, what)


def decompress(compression: str, data: Any, usize: int, limit: int, where: str, offset: int) -> bytes:
    """A chunk's records: checks the claimed size against ``limit`` *before* decompressing, and
    never lets a frame header claim more than the chunk says (python-zstandard would allocate what
    the frame header claims)."""
    if usize > limit:
        raise LimitError(f"{where}: chunk claims {usize} uncompressed bytes > max_chunk_size={limit}",
                         offset=offset, length=usize, limit=limit)
    if compression == "":
        if len(data) != usize:
            raise DataError(f"{where}: uncompressed chunk holds {len(data)} bytes, says {usize}", offset=offset)
        return bytes(data)
    if compression == "zstd":
        import zstandard

        from ..archive.seekable import zstd_frame_header

        try:
            content = zstd_frame_header(bytes(data[:18]))[1]
        except DataError as e:
            raise DataError(f"{where}: bad zstd data: {e}", offset=offset) from None
        if content is not None and content != usize:
            raise DataError(f"{where}: zstd frame claims {content} bytes, the chunk says {usize}", offset=offset,
                            length=content)
        try:
            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=usize)
        except zstandard.ZstdError as e:
            raise DataError(f"{where}: zstd data corrupt: {e}", offset=offset) from None
    elif compression == "lz4":
        try:
            import lz4.frame
        except ImportError:
            raise MissingDependency(f"{where}: lz4-compressed MCAP chunks need the optional package 'lz4': "
                                    f"pip install 'fastodin[mcap]'", package="lz4", extra="mcap") from None
        try:
            dec = lz4.frame.LZ4FrameDecompressor()
            out = dec.decompress(bytes(data), max_length=usize + 1)
        except RuntimeError as e:
            raise DataError(f"{where}: lz4 data corrupt: {e}", offset=offset) from None
    else:
        raise DataError(f"{where}: unknown chunk compression {compression!r} (known: '', zstd, lz4)", offset=offset)
    if len(out) != usize:
        raise DataError(f"{where}: chunk decompressed to {len(out)} bytes, says {usize}", offset=offset)
    return out
