"""Human-readable numbers for messages, summaries and progress lines (one home for plurals, sizes,
rates, durations, wall-clock times and the shortest form of a float32).

>>> plural(1, "frame"), plural(2, "frame"), plural(0, "entry", "entries")
('1 frame', '2 frames', '0 entries')
>>> human_bytes(1536), human_rate(2_500_000), human_duration(83)
('1.5 KiB', '2.50M', '1:23')
>>> iso_time(0.0), f32(np.float32(0.1))
('1970-01-01T00:00:00.000Z', 0.1)
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Optional

import numpy as np

__all__ = ["plural", "human_bytes", "human_rate", "human_duration", "iso_time", "f32"]


def plural(n: Any, word: str, many: Optional[str] = None) -> str:
    """``n word`` with the noun in the plural unless ``n`` is 1 (``many`` for irregular plurals).

    >>> plural(1, "problem"), plural(3, "problem"), plural(None, "record")
    ('1 problem', '3 problems', '? records')
    """
    if n is None:
        return f"? {many or word + 's'}"
    return f"{n} {word if n == 1 else (many or word + 's')}"


def human_bytes(n: float) -> str:
    """Bytes as a short human string.

    >>> human_bytes(100), human_bytes(3 * 1024 ** 2)
    ('100 B', '3.0 MiB')
    """
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def human_rate(r: float) -> str:
    """A per-second rate with a k/M suffix.

    >>> human_rate(950), human_rate(12_345)
    ('950', '12.3k')
    """
    if not math.isfinite(r):
        return "-"
    if r >= 1e6:
        return f"{r / 1e6:.2f}M"
    if r >= 1e4:
        return f"{r / 1e3:.1f}k"
    return f"{r:.0f}"


def human_duration(s: float) -> str:
    """Seconds as ``m:ss`` or ``h:mm:ss`` (``-`` when unknown).

    >>> human_duration(5.4), human_duration(3725), human_duration(float("inf"))
    ('0:05', '1:02:05', '-')
    """
    if not math.isfinite(s) or s < 0:
        return "-"
    s = int(round(s))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def iso_time(t: Any) -> Optional[str]:
    """A Unix time as ISO 8601 UTC with milliseconds, or None when it is not a usable time.

    >>> iso_time(1712345678.5), iso_time("x"), iso_time(float("nan"))
    ('2024-04-05T19:34:38.500Z', None, None)
    """
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        return None
    try:
        d = datetime.fromtimestamp(t, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return d.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def f32(x: Any) -> float:
    """A float32 as the Python float of its shortest decimal form (the one numpy prints, which reads
    back as the same float32): ``0.1`` rather than float64's ``0.10000000149011612``.

    >>> f32(np.float32(3.3)), bool(np.float32(f32(np.float32(3.3))) == np.float32(3.3)), f32(np.float32("nan"))
    (3.3, True, nan)
    """
    return float(str(np.float32(x)))
