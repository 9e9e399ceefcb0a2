"""Per-set sequence tracking (u16, wraps 65535 -> 0) and u32 timestamp unwrapping.

Sequence rule, with ``d = (seq - last) mod 65536``: ``d == 1`` in order; ``d == 0`` duplicate;
``1 < d < 32768`` a gap of ``d - 1`` lost packets; ``d >= 32768`` a late (reordered) packet,
which does not move ``last``.  Timestamp rule: ``d = (ts - last) mod 2**32`` taken signed
(``d >= 2**31`` is a step back, not a wrap), so the tick count is monotonic across wraps and
tolerant of small reorders.  Vectorised variants serve whole columns.

>>> t = SequenceTracker(); [t.update(s) for s in (65534, 65535, 0, 2, 2, 1)]
['first', 'ok', 'ok', 'gap', 'duplicate', 'late']
>>> (t.gaps, t.lost, t.duplicates, t.late)
(1, 0, 1, 1)
>>> u = TickUnwrapper(); [u.update(x) for x in (4294967290, 5, 3)]
[4294967290, 4294967301, 4294967299]
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

__all__ = ["SequenceTracker", "TickUnwrapper", "unwrap_ticks", "sequence_stats"]


class SequenceTracker:
    """Gap / duplicate / reorder detection for one set's u16 sequence numbers."""

    __slots__ = ("last", "received", "gaps", "lost", "duplicates", "late")

    def __init__(self) -> None:
        self.last: Optional[int] = None
        self.received = 0
        self.gaps = 0
        self.lost = 0
        self.duplicates = 0
        self.late = 0

    def update(self, seq: int) -> str:
        """Account one packet; returns ``first``, ``ok``, ``gap``, ``duplicate`` or ``late``."""
        self.received += 1
        last = self.last
        if last is None:
            self.last = seq
            return "first"
        d = (seq - last) & 0xFFFF
        if d == 1:
            self.last = seq
            return "ok"
        if d == 0:
            self.duplicates += 1
            return "duplicate"
        if d < 0x8000:
            self.gaps += 1
            self.lost += d - 1
            self.last = seq
            return "gap"
        self.late += 1
        # a late packet filled part of an earlier gap
        if self.lost:
            self.lost -= 1
        return "late"

    def as_dict(self) -> Dict[str, int]:
        """Counters as a dict.

        >>> SequenceTracker().as_dict()["gaps"]
        0
        """
        return {"received": self.received, "gaps": self.gaps, "lost": self.lost,
                "duplicates": self.duplicates, "late": self.late}


class TickUnwrapper:
    """Unwraps a u32 tick counter into a monotonic-across-wraps Python int."""

    __slots__ = ("last_raw", "ticks")

    def __init__(self) -> None:
        self.last_raw: Optional[int] = None
        self.ticks = 0

    def update(self, raw: int) -> int:
        """Account one raw u32 timestamp; returns the unwrapped tick count."""
        if self.last_raw is None:
            self.last_raw = raw
            self.ticks = raw
            return raw
        d = (raw - self.last_raw) & 0xFFFFFFFF
        if d >= 0x80000000:
            d -= 0x100000000
        self.ticks += d
        self.last_raw = raw
        return self.ticks


def unwrap_ticks(ts: np.ndarray, start: Optional[TickUnwrapper] = None) -> np.ndarray:
    """Vectorised :class:`TickUnwrapper` over a u32 column -> int64 ticks (continues ``start``).

    >>> unwrap_ticks(np.array([4294967295, 0, 1], dtype=np.uint32)).tolist()
    [4294967295, 4294967296, 4294967297]
    """
    ts = np.asarray(ts).astype(np.int64)
    if len(ts) == 0:
        return ts
    d = np.empty_like(ts)
    if start is None or start.last_raw is None:
        d[0] = ts[0]
    else:
        dd = (int(ts[0]) - start.last_raw) & 0xFFFFFFFF
        d[0] = start.ticks + (dd - 0x100000000 if dd >= 0x80000000 else dd)
    dd = np.diff(ts) & 0xFFFFFFFF
    dd[dd >= 0x80000000] -= 0x100000000
    d[1:] = dd
    out = np.cumsum(d)
    if start is not None:
        start.last_raw = int(ts[-1])
        start.ticks = int(out[-1])
    return out


def sequence_stats(seq: np.ndarray, start: Optional[SequenceTracker] = None) -> SequenceTracker:
    """Vectorised :class:`SequenceTracker` over a u16 column (counts only).

    >>> sequence_stats(np.array([0, 1, 3, 3, 2], dtype=np.uint16)).as_dict()
    {'received': 5, 'gaps': 1, 'lost': 0, 'duplicates': 1, 'late': 1}
    """
    t = start if start is not None else SequenceTracker()
    s = np.asarray(seq).astype(np.int64)
    if len(s) == 0:
        return t
    d_all = np.diff(s) & 0xFFFF
    if np.all(d_all == 1) and (t.last is None or ((int(s[0]) - t.last) & 0xFFFF) == 1):
        t.update(int(s[0]))
        t.received += len(s) - 1
        t.last = int(s[-1])
        return t
    # irregular: the exact rule needs the running 'last' (late packets do not move it)
    for v in s.tolist():
        t.update(v)
    return t
