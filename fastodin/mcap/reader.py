"""Reading MCAP files: one sequential scan, bounded memory, clear errors on hostile input.

:class:`McapReader` walks the file record by record (``records()``), yielding schemas, channels,
metadata, attachments and *batches* of messages (a whole chunk's messages as numpy arrays over
the decompressed chunk).  Lengths are checked against what is left of the file or chunk before
anything is read; a chunk's uncompressed size is checked against ``max_chunk_size`` (256 MiB by
default) before it is decompressed; CRCs are verified when present.  Every problem is a
:class:`~fastodin.errors.DataError` that names the record and its file offset.  A file that
ends inside a record (a recorder killed mid-write) is not an error: ``truncated`` says where it
ends, and everything before is read.

>>> import os, tempfile, numpy as np
>>> from fastodin.mcap.writer import McapWriter
>>> path = os.path.join(tempfile.mkdtemp(), "r.mcap")
>>> with McapWriter(path) as w:
...     c = w.add_channel("/a", "octet-stream")
...     w.add_messages(c, np.array([5], np.uint64), b"hi", np.array([0]), np.array([2]))
>>> r = McapReader(path)
>>> [(kind, getattr(x, "topic", None)) for kind, x in r.records()]
[('channel', '/a'), ('messages', None)]
"""
from __future__ import annotations

import os
import zlib
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from ..errors import ChecksumError, DataError
from . import _format as F
from ._format import Cursor, Op

__all__ = ["McapReader", "McapSchema", "McapChannel", "MessageBatch", "is_mcap"]

_MSG = np.dtype([("op", "u1"), ("len", "<u8"), ("cid", "<u2"), ("seq", "<u4"), ("log", "<u8"), ("pub", "<u8")])
_OPNAMES = {v: k.lower() for k, v in vars(Op).items() if not k.startswith("_")}


def is_mcap(head: bytes) -> bool:
    """Does a file starting with ``head`` look like MCAP (its magic)?

    >>> is_mcap(b"\\x89MCAP0\\r\\n..."), is_mcap(b"\\x28\\xb5\\x2f\\xfd")
    (True, False)
    """
    return head[:8] == F.MAGIC


class McapSchema:
    """A Schema record."""

    __slots__ = ("id", "name", "encoding", "data")

    def __init__(self, id: int, name: str, encoding: str, data: bytes) -> None:
        self.id, self.name, self.encoding, self.data = id, name, encoding, data

    def key(self) -> Tuple[int, str, str, bytes]:
        return self.id, self.name, self.encoding, self.data


class McapChannel:
    """A Channel record."""

    __slots__ = ("id", "schema_id", "topic", "message_encoding", "metadata")

    def __init__(self, id: int, schema_id: int, topic: str, message_encoding: str, metadata: Dict[str, str]) -> None:
        self.id, self.schema_id, self.topic = id, schema_id, topic
        self.message_encoding, self.metadata = message_encoding, metadata

    def key(self) -> Tuple[Any, ...]:
        return self.id, self.schema_id, self.topic, self.message_encoding, tuple(sorted(self.metadata.items()))


class MessageBatch:
    """Messages of one chunk (or one message outside chunks), in file order: ``channel``,
    ``sequence``, ``log_time``, ``publish_time`` (numpy arrays) and the payload of message k,
    ``buf[offset[k]:offset[k] + length[k]]``; ``where`` names the chunk."""

    __slots__ = ("channel", "sequence", "log_time", "publish_time", "buf", "offset", "length", "where")

    def __init__(self, hdr: np.ndarray, buf: bytes, offset: np.ndarray, where: str) -> None:
        self.channel = hdr["cid"].astype(np.uint16)
        self.sequence = hdr["seq"].astype(np.uint32)
        self.log_time = hdr["log"].astype(np.uint64)
        self.publish_time = hdr["pub"].astype(np.uint64)
        self.length = (hdr["len"] - 22).astype(np.int64)
        self.offset = offset
        self.buf = buf
        self.where = where

    def __len__(self) -> int:
        return int(self.log_time.shape[0])

    def payload(self, k: int) -> bytes:
        o = int(self.offset[k])
        return self.buf[o:o + int(self.length[k])]


class McapReader:
    """A sequential MCAP reader over ``path``.  After :meth:`records` is exhausted: ``profile``,
    ``library`` (the Header), ``complete`` (footer and closing magic read), ``truncated`` (None, or
    ``(offset, reason)`` where the file ends inside a record), ``skipped`` ({opcode name: count} of
    records not understood or not needed, e.g. private records), ``messages`` (count)."""

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, max_chunk_size: int = F.DEFAULT_MAX_CHUNK_SIZE,
                 validate_crcs: bool = True) -> None:
        self.path = os.fspath(path)
        self.max_chunk_size = max_chunk_size
        self.validate_crcs = validate_crcs
        self.profile = ""
        self.library = ""
        self.complete = False
        self.truncated: Optional[Tuple[int, str]] = None
        self.skipped: Dict[str, int] = {}
        self.messages = 0
        self.size = os.path.getsize(self.path)
        self._schemas: Dict[int, McapSchema] = {}
        self._channels: Dict[int, McapChannel] = {}

    def _skip(self, op: int) -> None:
        name = _OPNAMES.get(op, f"private 0x{op:02X}" if op >= 0x80 else f"unknown 0x{op:02X}")
        self.skipped[name] = self.skipped.get(name, 0) + 1

    def records(self) -> Iterator[Tuple[str, Any]]:
        """``(kind, value)`` in file order: ``("schema", McapSchema)``, ``("channel", McapChannel)``
        (each once, the first time it is defined), ``("messages", MessageBatch)``,
        ``("metadata", (name, {str: str}))``, ``("attachment", (log_time, create_time, name,
        media_type, data))``."""
        with open(self.path, "rb") as f:
            yield from self._records(f)

    def _records(self, f: Any) -> Iterator[Tuple[str, Any]]:
        size = self.size
        head = f.read(8)
        if head != F.MAGIC:
            raise DataError(f"{self.path}: not an MCAP file (no MCAP magic at offset 0)", offset=0)
        pos = 8
        k = 0           # record number
        data_end = False
        while True:
            if pos == size:
                self.truncated = (pos, "the file ends before the footer")
                return
            if size - pos < 9:
                self.truncated = (pos, f"the file ends inside a record header ({size - pos} bytes)")
                return
            op, ln = F.OPLEN.unpack(f.read(9))
            where = f"MCAP record {k} ({_OPNAMES.get(op, f'opcode 0x{op:02X}')}) at offset {pos}"
            if op == 0:
                raise DataError(f"{where}: opcode 0 is not a valid record", offset=pos, record=k)
            if k == 0 and op != Op.HEADER:
                raise DataError(f"{where}: the first record must be the Header", offset=pos, record=k)
            body_at = pos + 9
            if ln > size - body_at:
                self.truncated = (pos, f"{where} claims {ln} bytes, the file has {size - body_at} left")
                return
            end = body_at + ln
            if op in (Op.MESSAGE_INDEX, Op.CHUNK_INDEX, Op.ATTACHMENT_INDEX, Op.METADATA_INDEX, Op.STATISTICS,
                      Op.SUMMARY_OFFSET) or (data_end and op in (Op.SCHEMA, Op.CHANNEL)) or op > Op.DATA_END:
                if op > Op.DATA_END:
                    self._skip(op)
                f.seek(end)
                pos = end
                k += 1
                continue
            body = f.read(ln)
            c = Cursor(body, where, base=body_at)
            if op == Op.HEADER:
                if k:
                    raise DataError(f"{where}: a second Header", offset=pos, record=k)
                self.profile = c.string("profile")
                self.library = c.string("library")
            elif op == Op.FOOTER:
                tail = f.read(8)
                if tail != F.MAGIC:
                    if len(tail) < 8:
                        self.truncated = (end, "the file ends inside the closing magic")
                        return
                    raise DataError(f"{where}: no MCAP magic after the footer", offset=end, record=k)
                if end + 8 != size:
                    raise DataError(f"{self.path}: {size - end - 8} bytes after the closing magic", offset=end + 8)
                self.complete = True
                return
            elif op == Op.SCHEMA:
                sch = self._schema(c)
                if sch is not None:
                    yield "schema", sch
            elif op == Op.CHANNEL:
                chan = self._channel(c)
                if chan is not None:
                    yield "channel", chan
            elif op == Op.MESSAGE:
                if ln < 22:
                    raise DataError(f"{where}: a message record of {ln} bytes (at least 22)", offset=pos, record=k)
                hdr = np.frombuffer(F.OPLEN.pack(op, ln) + body[:22], _MSG)
                yield "messages", self._batch(hdr, body, np.array([22], np.int64), where)
            elif op == Op.CHUNK:
                yield from self._chunk(c, where, body_at)
            elif op == Op.METADATA:
                name = c.string("name")
                yield "metadata", (name, c.map_ss("metadata"))
            elif op == Op.ATTACHMENT:
                yield "attachment", self._attachment(c, body, where)
            elif op == Op.DATA_END:
                data_end = True
            pos = end
            k += 1

    def _batch(self, hdr: np.ndarray, buf: bytes, offs: np.ndarray, where: str) -> MessageBatch:
        b = MessageBatch(hdr, buf, offs, where)
        unknown = np.setdiff1d(np.unique(b.channel), np.fromiter(self._channels, np.uint16, len(self._channels)))
        if unknown.shape[0]:
            raise DataError(f"{where}: a message on channel {int(unknown[0])}, which no Channel record defines "
                            f"before it", channel=int(unknown[0]))
        self.messages += len(b)
        return b

    def _schema(self, c: Cursor) -> Optional[McapSchema]:
        s = McapSchema(c.u16(), c.string("schema name"), c.string("schema encoding"), c.bytes32())
        if s.id == 0:          # invalid; the spec says readers ignore it
            self._skip(Op.SCHEMA)
            return None
        old = self._schemas.get(s.id)
        if old is not None:
            if old.key() != s.key():
                raise DataError(f"{c.where}: schema {s.id} is defined twice, differently", offset=c.base)
            return None
        self._schemas[s.id] = s
        return s

    def _channel(self, c: Cursor) -> Optional[McapChannel]:
        ch = McapChannel(c.u16(), c.u16(), c.string("topic"), c.string("message encoding"),
                         c.map_ss("channel metadata"))
        if ch.schema_id and ch.schema_id not in self._schemas:
            raise DataError(f"{c.where}: channel {ch.id} ({ch.topic!r}) refers to schema {ch.schema_id}, which no "
                            f"Schema record defines before it", offset=c.base)
        old = self._channels.get(ch.id)
        if old is not None:
            if old.key() != ch.key():
                raise DataError(f"{c.where}: channel {ch.id} is defined twice, differently", offset=c.base)
            return None
        self._channels[ch.id] = ch
        return ch

    def _attachment(self, c: Cursor, body: bytes, where: str) -> Tuple[int, int, str, str, bytes]:
        log, create = c.u64(), c.u64()
        name, media = c.string("attachment name"), c.string("media type")
        n = c.u64()
        data = c.raw(n, "attachment data")
        crc_at = c.pos
        crc = c.u32()
        if crc and self.validate_crcs and zlib.crc32(body[:crc_at]) != crc:
            raise ChecksumError(f"{where}: attachment {name!r} CRC mismatch", offset=c.base)
        return log, create, name, media, data

    def _chunk(self, c: Cursor, where: str, body_at: int) -> Iterator[Tuple[str, Any]]:
        c.u64(), c.u64()         # message start / end time: recomputed from the messages
        usize = c.u64()
        crc = c.u32()
        comp = c.string("compression")
        csize = c.u64()
        at = body_at + c.pos
        data = c.raw(csize, "chunk records")
        buf = F.decompress(comp, data, usize, self.max_chunk_size, where, at)
        del data
        if crc and self.validate_crcs and zlib.crc32(buf) != crc:
            raise ChecksumError(f"{where}: chunk CRC mismatch (the chunk's records are damaged)", offset=at)
        n = len(buf)
        pos = 0
        j = 0
        msgs: List[int] = []
        unpack = F.OPLEN.unpack_from
        while pos < n:
            if n - pos < 9:
                raise DataError(f"{where}: {n - pos} stray bytes at the end of the chunk's records",
                                offset=at, record=j)
            op, ln = unpack(buf, pos)
            end = pos + 9 + ln
            if end > n:
                raise DataError(f"{where}: chunk record {j} at chunk offset {pos} claims {ln} bytes, the chunk "
                                f"has {n - pos - 9} left", offset=at, length=ln, record=j)
            if op == Op.MESSAGE:
                if ln < 22:
                    raise DataError(f"{where}: chunk record {j}: a message record of {ln} bytes (at least 22)",
                                    offset=at, record=j)
                msgs.append(pos)
            elif op in (Op.SCHEMA, Op.CHANNEL):
                if msgs:
                    yield "messages", self._messages(buf, msgs, where)
                    msgs = []
                inner = Cursor(buf, f"{where}, chunk record {j}", pos + 9, end, base=at)
                got = self._schema(inner) if op == Op.SCHEMA else self._channel(inner)
                if got is not None:
                    yield ("schema" if op == Op.SCHEMA else "channel"), got
            elif op == 0:
                raise DataError(f"{where}: chunk record {j}: opcode 0 is not a valid record", offset=at, record=j)
            else:
                self._skip(op)
            pos = end
            j += 1
        if msgs:
            yield "messages", self._messages(buf, msgs, where)

    def _messages(self, buf: bytes, msgs: List[int], where: str) -> MessageBatch:
        p = np.array(msgs, np.int64)
        u8 = np.frombuffer(buf, np.uint8)
        hdr = u8[p[:, None] + np.arange(31)].reshape(-1).view(_MSG)
        return self._batch(hdr, buf, p + 31, where)

