"""Record times as multiples of a time base from a stated origin: lossless nanoseconds.

A FastPack time is an f64.  Epoch times in f64 seconds keep only about a quarter of a microsecond
(1.7e9 s has a 238 ns spacing), so a file that must give MCAP nanosecond ``log_time`` back exactly
declares the *multiple* time mode of spec/fastpack.md §6 with ``base`` = 1e-9 and an exact integer
``origin_ns``: each record's time is then the integer number of nanoseconds since the origin, held
exactly by the f64 while it is below 2**53 ns (104.2 days).

The declaration is the ``fastpack_time`` key of an id-0 metadata map (for archives: of the writer's
``{"fastodin": "file"}`` record), so any §6 reader gets seconds = ``time × base + origin``; readers
that know ``origin_ns`` get nanoseconds = ``origin_ns + time`` exactly (spec/fastpack.md §6.1).

>>> tb = TimeBase.from_ns(1_700_000_000_123_456_789)
>>> raw = tb.raw_from_ns(np.array([1_700_000_000_123_456_789, 1_700_000_100_000_000_001], np.uint64))
>>> raw.tolist(), tb.ns_from_raw(raw).tolist() == [1_700_000_000_123_456_789, 1_700_000_100_000_000_001]
([0.0, 99876543212.0], True)
>>> TimeBase.from_meta(tb.to_meta()) == tb, round(float(tb.seconds(raw)[1]), 3)
(True, 1700000100.0)
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Union

import numpy as np

from .errors import DataError

__all__ = ["TimeBase", "TIME_KEY", "EXACT_NS_LIMIT", "seconds_to_ns"]

#: the metadata key of spec/fastpack.md §6 (also ``fastodin.codec.TIME_MODE_KEY``)
TIME_KEY = "fastpack_time"
#: integer-valued f64 nanosecond offsets are exact below this (2**53 ns = 104.2 days)
EXACT_NS_LIMIT = 1 << 53
_U64 = (1 << 64) - 1


class TimeBase:
    """A ``"multiple"`` time declaration: seconds = ``time × base + origin``; with ``origin_ns``
    (an exact integer) and ``base`` = 1e-9, nanoseconds = ``origin_ns + time`` exactly."""

    __slots__ = ("base", "origin", "origin_ns")

    def __init__(self, base: float, origin: float, origin_ns: Optional[int] = None) -> None:
        self.base = float(base)
        self.origin = float(origin)
        self.origin_ns = origin_ns

    @classmethod
    def from_ns(cls, origin_ns: int) -> "TimeBase":
        """Times in integer nanoseconds since ``origin_ns`` (0 .. 2**64-1, MCAP's range)."""
        o = int(origin_ns)
        if not 0 <= o <= _U64:
            raise DataError(f"time origin {o} ns is outside 0..2**64-1")
        return cls(1e-9, o / 1e9, o)

    @classmethod
    def from_meta(cls, spec: Any) -> Optional["TimeBase"]:
        """The time base a ``fastpack_time`` value declares; None for absolute seconds (the
        default); DataError for a malformed value or a mode an archive cannot use (``delta``)."""
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise DataError(f"{TIME_KEY!r} must be a map, not {type(spec).__name__}")
        mode = spec.get("mode", "absolute")
        base = spec.get("base", 1.0)
        origin = spec.get("origin", 0.0)
        ons = spec.get("origin_ns")
        num = (int, float)
        if mode not in ("absolute", "multiple") or isinstance(base, bool) or not isinstance(base, num) \
                or isinstance(origin, bool) or not isinstance(origin, num) \
                or not (math.isfinite(base) and base > 0 and math.isfinite(origin)) \
                or (ons is not None and (isinstance(ons, bool) or not isinstance(ons, int) or not 0 <= ons <= _U64)):
            raise DataError(f"bad {TIME_KEY!r} {spec!r}: mode 'absolute' or 'multiple', base > 0, finite origin, "
                            f"origin_ns an integer 0..2**64-1")
        if mode == "absolute" or (base == 1.0 and origin == 0.0 and ons is None):
            return None
        return cls(base, origin, ons)

    def to_meta(self) -> Dict[str, Any]:
        """The ``fastpack_time`` value declaring this base."""
        m: Dict[str, Any] = {"mode": "multiple", "base": self.base, "origin": self.origin}
        if self.origin_ns is not None:
            m["origin_ns"] = self.origin_ns
        return m

    @property
    def exact_ns(self) -> bool:
        """Times are integer nanoseconds from an exact origin."""
        return self.origin_ns is not None and self.base == 1e-9

    def seconds(self, raw: Any) -> Any:
        """Seconds (f64) of raw record times: ``raw × base + origin`` (as §6 readers compute)."""
        if isinstance(raw, np.ndarray):
            return raw * self.base + self.origin
        return float(raw) * self.base + self.origin

    def raw_from_seconds(self, t: Optional[float]) -> Optional[float]:
        """The raw time of ``t`` seconds (None stays None)."""
        return None if t is None else (t - self.origin) / self.base

    def raw_from_ns(self, ns: np.ndarray) -> np.ndarray:
        """Raw times (f64 nanoseconds since the origin, exact below 2**53) of u64 nanoseconds."""
        if self.origin_ns is None:
            raise DataError("this time base has no exact origin_ns")
        d = (np.asarray(ns, np.uint64) - np.uint64(self.origin_ns)).view(np.int64)
        if self.base == 1e-9:
            return d.astype(np.float64)
        return d.astype(np.float64) * (1e-9 / self.base)

    def ns_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """u64 nanoseconds of raw times (exact for integer-valued raw times when ``exact_ns``).
        Raw times must be finite."""
        raw = np.asarray(raw, np.float64)
        if self.base == 1e-9:
            d = np.rint(raw).astype(np.int64)
        else:
            d = np.rint(raw * (self.base * 1e9)).astype(np.int64)
        o = self.origin_ns if self.origin_ns is not None else round(self.origin * 1e9)
        return d.view(np.uint64) + np.uint64(o & _U64)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, TimeBase) and (self.base, self.origin, self.origin_ns) == (
            other.base, other.origin, other.origin_ns)

    def __hash__(self) -> int:
        return hash((self.base, self.origin, self.origin_ns))

    def __repr__(self) -> str:
        return f"TimeBase(base={self.base!r}, origin={self.origin!r}, origin_ns={self.origin_ns!r})"


def seconds_to_ns(t: Union[np.ndarray, float]) -> np.ndarray:
    """Nanoseconds (int64) nearest to f64 seconds, computed without the 256 ns rounding of
    ``t * 1e9`` at epoch times: integer part and fraction separately.  Finite input only.

    >>> seconds_to_ns(np.array([1700000000.123456789, 0.5, -1.25])).tolist()   # that f64 is ...123456716.54 ns
    [1700000000123456717, 500000000, -1250000000]
    """
    t = np.asarray(t, np.float64)
    whole = np.floor(t)
    frac = t - whole                       # exact (Sterbenz)
    return whole.astype(np.int64) * 1_000_000_000 + np.rint(frac * 1e9).astype(np.int64)
