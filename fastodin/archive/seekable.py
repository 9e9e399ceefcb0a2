"""Byte layouts of the zstd seekable format and of zstd frames, with no I/O policy.

A seekable file is a run of frames followed by the seek-table skippable frame::

    [frame 0][frame 1]...[frame n-1][0x184D2A5E | size | n x (csize u32, dsize u32) | n u32 | desc u8 | 0x8F92EAB1]

Skippable frames (magic ``0x184D2A50..0x184D2A5F``) are ignored by every zstd decoder.

>>> st = build_seek_table([(100, 1000), (20, 0)])
>>> parse_footer(st[-9:])
(2, 0)
>>> parse_seek_table(st, 2, 0)
[(100, 1000), (20, 0)]
"""
from __future__ import annotations

import struct
from typing import Callable, List, Optional, Sequence, Tuple

from ..errors import CorruptFrameError, LimitError, TruncatedError

__all__ = [
    "ZSTD_MAGIC", "SKIPPABLE_MIN", "SKIPPABLE_MAX", "SEEK_TABLE_MAGIC", "SEEKABLE_FOOTER_MAGIC",
    "INDEX_MAGIC", "FOOTER_SIZE",
    "skippable_frame", "is_skippable", "build_seek_table", "parse_footer", "parse_seek_table",
    "zstd_frame_header", "zstd_frame_size",
]

ZSTD_MAGIC = 0xFD2FB528
SKIPPABLE_MIN = 0x184D2A50
SKIPPABLE_MAX = 0x184D2A5F
SEEK_TABLE_MAGIC = 0x184D2A5E
SEEKABLE_FOOTER_MAGIC = 0x8F92EAB1
#: Magic of fastodin's own index skippable frames (one of the 16 skippable magics).
INDEX_MAGIC = 0x184D2A5A
FOOTER_SIZE = 9

_U32 = struct.Struct("<I")
_U32x2 = struct.Struct("<II")
_FOOTER = struct.Struct("<IBI")


def skippable_frame(payload: bytes, magic: int = INDEX_MAGIC) -> bytes:
    """A skippable frame ``magic u32 | len u32 | payload``.

    >>> skippable_frame(b"ab")[4:8]
    b'\\x02\\x00\\x00\\x00'
    """
    return _U32x2.pack(magic, len(payload)) + payload


def is_skippable(magic: int) -> bool:
    """True for the 16 zstd skippable-frame magics.

    >>> is_skippable(0x184D2A5E), is_skippable(ZSTD_MAGIC)
    (True, False)
    """
    return SKIPPABLE_MIN <= magic <= SKIPPABLE_MAX


def build_seek_table(entries: Sequence[Tuple[int, int]]) -> bytes:
    """The seek-table skippable frame for ``(compressed_size, decompressed_size)`` entries.

    No per-frame checksums (descriptor 0): the zstd frames carry their own content checksums.

    >>> len(build_seek_table([(1, 2)]))
    25
    """
    body = bytearray()
    for c, d in entries:
        body += _U32x2.pack(c, d)
    body += _FOOTER.pack(len(entries), 0, SEEKABLE_FOOTER_MAGIC)
    return _U32x2.pack(SEEK_TABLE_MAGIC, len(body)) + bytes(body)


def parse_footer(footer: bytes) -> Optional[Tuple[int, int]]:
    """``(number_of_frames, descriptor)`` from the last 9 bytes, or None if they are no footer.

    >>> parse_footer(b"\\0" * 9) is None
    True
    """
    if len(footer) != FOOTER_SIZE:
        return None
    n, desc, magic = _FOOTER.unpack(footer)
    if magic != SEEKABLE_FOOTER_MAGIC or desc & 0x7C:
        return None
    return n, desc


def seek_table_size(n: int, desc: int) -> int:
    """Total bytes of the seek-table frame (header + entries + footer).

    >>> seek_table_size(1, 0)
    25
    """
    return 8 + n * (12 if desc & 0x80 else 8) + FOOTER_SIZE


def parse_seek_table(frame: bytes, n: int, desc: int) -> List[Tuple[int, int]]:
    """Entries of a whole seek-table frame (header included); CorruptFrameError if malformed.

    >>> parse_seek_table(build_seek_table([(5, 6)]), 1, 0)
    [(5, 6)]
    """
    size = seek_table_size(n, desc)
    if len(frame) != size:
        raise CorruptFrameError(f"seek table: expected {size} bytes, got {len(frame)}", length=len(frame))
    magic, length = _U32x2.unpack_from(frame, 0)
    if magic != SEEK_TABLE_MAGIC or length != size - 8:
        raise CorruptFrameError("seek table: bad skippable-frame header", length=size)
    step = 12 if desc & 0x80 else 8
    out = []
    for i in range(n):
        c, d = _U32x2.unpack_from(frame, 8 + i * step)
        out.append((c, d))
    return out


def zstd_frame_header(head: bytes) -> Tuple[int, Optional[int], bool]:
    """Parse a zstd frame header: ``(header_size, content_size or None, has_checksum)``.

    ``head`` must start at the magic and hold at least 18 bytes (or the whole frame).

    >>> import zstandard
    >>> zstd_frame_header(zstandard.ZstdCompressor(write_checksum=True).compress(b"abc"))[1:]
    (3, True)
    """
    if len(head) < 6:
        raise TruncatedError("zstd frame header cut short", length=len(head))
    if _U32.unpack_from(head, 0)[0] != ZSTD_MAGIC:
        raise CorruptFrameError("not a zstd frame (bad magic)")
    fhd = head[4]
    if fhd & 0x08:
        raise CorruptFrameError("zstd frame header: reserved bit set")
    fcs_flag = fhd >> 6
    single = (fhd >> 5) & 1
    checksum = bool((fhd >> 2) & 1)
    did_size = (0, 1, 2, 4)[fhd & 3]
    fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    pos = 5 + (0 if single else 1) + did_size
    size = pos + fcs_size
    if len(head) < size:
        raise TruncatedError("zstd frame header cut short", length=len(head))
    content: Optional[int]
    if fcs_size == 0:
        content = None
    else:
        content = int.from_bytes(head[pos:size], "little")
        if fcs_size == 2:
            content += 256
    return size, content, checksum


def zstd_frame_size(read_at: Callable[[int, int], bytes], offset: int, end: int) -> int:
    """Compressed size of the zstd frame at ``offset`` by walking its block headers.

    ``read_at(off, n)`` returns up to ``n`` bytes at ``off``; ``end`` is where the data ends.
    Raises TruncatedError if the frame runs past ``end``, CorruptFrameError if malformed.

    >>> import zstandard
    >>> f = zstandard.ZstdCompressor().compress(b"x" * 1000)
    >>> zstd_frame_size(lambda o, n: f[o:o + n], 0, len(f)) == len(f)
    True
    """
    head = read_at(offset, 18)
    hsize, _content, checksum = zstd_frame_header(head)
    pos = offset + hsize
    nblocks = 0
    while True:
        if pos + 3 > end:
            raise TruncatedError(f"zstd frame at offset {offset} cut short", offset=offset)
        bh = int.from_bytes(read_at(pos, 3), "little")
        last = bh & 1
        btype = (bh >> 1) & 3
        bsize = bh >> 3
        if btype == 3:
            raise CorruptFrameError(f"zstd frame at offset {offset}: reserved block type", offset=pos)
        if bsize > (1 << 17):
            raise LimitError(f"zstd frame at offset {offset}: block of {bsize} bytes > 128 KiB",
                             offset=pos, limit=1 << 17)
        pos += 3 + (1 if btype == 1 else bsize)
        nblocks += 1
        if last:
            break
    if checksum:
        pos += 4
    if pos > end:
        raise TruncatedError(f"zstd frame at offset {offset} cut short", offset=offset)
    return pos - offset
