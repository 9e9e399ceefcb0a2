"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout).

Used by ODIN for set ids (CRC over each entry's u32 global id, little-endian bytes, in set order)
and by BURST link framing (CRC over the packet, appended big-endian).

Property used by BURST verification: the CRC over ``data + crc16(data).to_bytes(2, "big")`` is 0.

>>> hex(crc16(b"123456789"))
'0x29b1'
>>> hex(set_id([0x01010000, 0x01020000, 0x01030000, 0x01040000,
...             0x02010000, 0x02020000, 0x02030000, 0x02040000]))
'0x996'
"""
from __future__ import annotations

import struct
from binascii import crc_hqx as _crc_hqx
from typing import Iterable

import numpy as np

__all__ = ["crc16", "crc16_table", "set_id", "crc16_rows", "crc16_frames", "CRC_INIT", "TABLE"]

CRC_INIT = 0xFFFF
_POLY = 0x1021


def _make_table() -> list:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ _POLY) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


TABLE: list = _make_table()
_TABLE_NP = np.array(TABLE, dtype=np.uint16)
_TABLE16_NP: "np.ndarray | None" = None  # 65536-entry table: register after 16 zero bits


def _table16() -> np.ndarray:
    """Table for processing 16 bits at once: T16[x] = register after shifting x through 2 zero bytes."""
    global _TABLE16_NP
    if _TABLE16_NP is None:
        x = np.arange(65536, dtype=np.uint32)
        hi = x >> 8
        r = ((x << 8) & 0xFFFF) ^ _TABLE_NP[hi].astype(np.uint32)  # after first byte (0 fed)
        r2 = ((r << 8) & 0xFFFF) ^ _TABLE_NP[r >> 8].astype(np.uint32)  # after second byte
        _TABLE16_NP = r2.astype(np.uint16)
    return _TABLE16_NP


def crc16(data: "bytes | bytearray | memoryview", crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data``, optionally continuing from ``crc``.

    Uses the standard library's ``binascii.crc_hqx`` (the same polynomial, non-reflected, no
    xorout: CRC-CCITT with a caller-chosen init), ~20x faster than :func:`crc16_table`, to which
    it is tested equal.

    >>> crc16(b"")
    65535
    """
    return _crc_hqx(data, crc)


def crc16_table(data: "bytes | bytearray | memoryview", crc: int = CRC_INIT) -> int:
    """Reference table-driven CRC-16/CCITT-FALSE (one table lookup per byte).

    >>> hex(crc16_table(b"123456789"))
    '0x29b1'
    """
    t = TABLE
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ b]
    return crc


def set_id(global_ids: Iterable[int]) -> int:
    """ODIN set id: CRC over each global id as u32 LE bytes, in set order. Empty set -> 0xFFFF.

    >>> set_id([])
    65535
    """
    ids = list(global_ids)
    return crc16(struct.pack("<%dI" % len(ids), *ids))


def crc16_rows(rows: np.ndarray, crc: int = CRC_INIT) -> np.ndarray:
    """Vectorised CRC of each row of a 2-D uint8 array (all rows one length): uint16 array.

    Processes 16 bits per step with a 65536-entry table, one numpy op set per 2 columns.

    >>> int(crc16_rows(np.frombuffer(b"123456789", np.uint8)[None, :])[0]) == 0x29B1
    True
    """
    rows = np.asarray(rows, dtype=np.uint8)
    if rows.ndim != 2:
        raise ValueError("crc16_rows expects a 2-D uint8 array")
    n, width = rows.shape
    reg = np.full(n, crc, dtype=np.uint16)
    if n == 0 or width == 0:
        return reg
    t16 = _table16()
    even = width - (width & 1)
    if even:
        # big-endian 16-bit words: byte j is the high byte; column-major so each step reads contiguously
        r = rows[:, :even] if (width & 1) else rows
        r = np.ascontiguousarray(r)
        words = r.view(">u2").astype(np.uint16).T.copy()  # (even//2, n) native
        for j in range(even // 2):
            reg = t16[reg ^ words[j]]
    if width & 1:
        last = rows[:, width - 1].astype(np.uint16)
        reg = ((reg << 8) & 0xFFFF).astype(np.uint16) ^ _TABLE_NP[(reg >> 8) ^ last]
    return reg


def crc16_frames(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """CRC of many frames inside one uint8 buffer (frame i = buf[starts[i]:starts[i]+lengths[i]]).

    Frames are grouped by length and each group is computed with :func:`crc16_rows`.

    >>> b = np.frombuffer(b"xx123456789", np.uint8)
    >>> hex(int(crc16_frames(b, np.array([2]), np.array([9]))[0]))
    '0x29b1'
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.uint16)
    if len(starts) == 0:
        return out
    uniq = np.unique(lengths)
    for L in uniq.tolist():
        sel = np.flatnonzero(lengths == L)
        if len(sel) < 4:
            for i in sel.tolist():
                s = int(starts[i])
                out[i] = crc16(buf[s:s + L].tobytes())
            continue
        if L == 0:
            out[sel] = CRC_INIT
            continue
        out[sel] = crc16_rows(np.lib.stride_tricks.sliding_window_view(buf, L)[starts[sel]])
    return out
