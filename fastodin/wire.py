"""The FastPack record header and size rules, shared by every module that reads or writes records.

``f64 time | u32 id | u32 len | payload | zero pad to 8`` (spec/fastpack.md §2).

>>> HEADER.size, pad_len(3), record_size(3)
(16, 5, 24)
"""
from __future__ import annotations

import struct

__all__ = ["HEADER", "HEADER_SIZE", "DEFAULT_MAX_RECORD_SIZE", "pad_len", "record_size"]

HEADER = struct.Struct("<dII")
HEADER_SIZE = HEADER.size  # 16
#: Default limit on one record's payload; a header claiming more is an error, not a wait.
DEFAULT_MAX_RECORD_SIZE = 256 * 1024 * 1024


def pad_len(n: int) -> int:
    """Zero bytes after a payload of ``n`` bytes.

    >>> pad_len(1), pad_len(8), pad_len(0)
    (7, 0, 0)
    """
    return -n & 7


def record_size(n: int) -> int:
    """Bytes taken by a record whose payload has ``n`` bytes.

    >>> record_size(0), record_size(16), record_size(17)
    (16, 32, 40)
    """
    return 16 + n + (-n & 7)
