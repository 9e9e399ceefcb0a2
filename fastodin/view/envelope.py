"""Exact min/max envelopes of one field over a time window, from the summary and a few records.

The records of a channel with ``start <= time < end`` are cut into at most ``points`` runs of
consecutive records (file order = time order) that cover every record of the window exactly once;
each run gives the time of its first and last record, the exact minimum and maximum of the field
(NaN and missing values left out and counted in ``nan``) and its record count.  A window of at most
``points`` records gives every record as a run of its own.

Cost is bounded whatever the window: small windows (fewer than about ``points`` level-0 blocks)
read their records; bigger ones combine whole summary blocks of the coarsest level that still
gives ``points - 2`` runs, and read records only for the parts of the two edge runs that are not
whole level-0 blocks (fewer than ``2 * BLOCK`` records) plus the two blocks where the window's
bounds fall.

>>> import numpy as np
>>> t = np.arange(10.0); v = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3.0])
>>> e = runs(t, v, None, 4, "float")
>>> e["n"].tolist(), e["min"].tolist(), e["max"].tolist()
([3, 3, 3, 1], [1.0, 1.0, 2.0, 3.0], [4.0, 9.0, 6.0, 3.0])
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .summary import BLOCK, FANOUT, ChannelSummary, combine

__all__ = ["Envelope", "envelope", "runs", "empty", "Reader"]

#: ``{"t0", "t1", "min", "max", "n", "nan"}`` numpy arrays (min/max meaningless where nan == n).
Envelope = Dict[str, np.ndarray]
#: ``read(i, j)`` -> (times, values, missing) of records ``i..j-1`` of the channel, in order.
Reader = Callable[[int, int], Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]]


def empty(stat: Optional[np.dtype] = None) -> Envelope:
    """The envelope of a window without records (min/max of dtype ``stat``, default float64)."""
    stat = np.dtype(np.float64) if stat is None else stat
    return {"t0": np.empty(0), "t1": np.empty(0), "min": np.empty(0, stat), "max": np.empty(0, stat),
            "n": np.empty(0, np.int64), "nan": np.empty(0, np.int64)}


def _prepared(v: np.ndarray, missing: Optional[np.ndarray],
              kind: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-record (for_min, for_max, is_nan) arrays: NaN/missing values made neutral."""
    if v.dtype.kind == "b":
        v = v.astype(np.int8)
    if kind == "float":
        x = v.astype(np.float64)
        if missing is not None:
            x[missing] = math.nan
        return x, x, np.isnan(x), x
    if missing is None:
        return v, v, np.zeros(v.shape[0], bool), v
    info = np.iinfo(v.dtype)
    return np.where(missing, info.max, v), np.where(missing, info.min, v), missing, v


def _reduce(kind: str, lo: np.ndarray, hi: np.ndarray, nan: np.ndarray, starts: np.ndarray
            ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    nn = np.add.reduceat(nan, starts, dtype=np.int64)
    if kind == "float":
        return np.fmin.reduceat(lo, starts), np.fmax.reduceat(hi, starts), nn
    return np.minimum.reduceat(lo, starts), np.maximum.reduceat(hi, starts), nn


def runs(t: np.ndarray, v: np.ndarray, missing: Optional[np.ndarray], points: int, kind: str,
         stat: Optional[np.dtype] = None) -> Envelope:
    """The envelope of records ``(t, v)`` (in order) cut into at most ``points`` runs of equal size
    (every record its own run when there are at most ``points``)."""
    m = int(t.shape[0])
    stat = stat or (np.dtype(np.float64) if kind == "float" else np.dtype(np.int64))
    if not m:
        return empty(stat)
    size = -(-m // points)
    starts = np.arange(0, m, size)
    ends = np.minimum(starts + size, m)
    lo, hi, nan, _ = _prepared(v, missing, kind)
    mn, mx, nn = _reduce(kind, lo, hi, nan, starts)
    return {"t0": t[starts], "t1": t[ends - 1], "min": mn.astype(stat), "max": mx.astype(stat),
            "n": (ends - starts).astype(np.int64), "nan": nn}


def _bound(s: ChannelSummary, n: int, read: Reader, t: Optional[float]) -> int:
    """Index of the first record with time >= t (n when none; 0 when t is None)."""
    if t is None:
        return 0
    nb = s.blocks
    k = int(np.searchsorted(s.t_last, t, "left"))    # first whole block whose last time >= t
    if k < nb:
        lo, hi = k * BLOCK, (k + 1) * BLOCK
    else:
        lo, hi = nb * BLOCK, n
    if lo >= hi:
        return lo
    times = read(lo, hi)[0]
    return lo + int(np.searchsorted(times, t, "left"))


def _piece(kind: str, s: ChannelSummary, field: str, read: Reader, a: int, b: int
           ) -> Tuple[float, float, object, object, int, int]:
    """(t0, t1, min, max, n, nan) of records a..b-1: whole level-0 blocks from the summary, the
    rest read."""
    k0, k1 = -(-a // BLOCK), b // BLOCK
    parts = []
    t_first = t_last = math.nan
    if k0 >= k1:                      # no whole block inside: read everything
        k0 = k1 = -1
        segs = [(a, b)]
    else:
        segs = [(a, k0 * BLOCK), (k1 * BLOCK, b)]
    got_t0: Optional[float] = None
    got_t1: Optional[float] = None
    for (i, j) in segs:
        if i >= j:
            continue
        tt, vv, mm = read(i, j)
        lo, hi, nan, _ = _prepared(vv, mm, kind)
        z = np.zeros(1, np.intp)
        mn, mx, nn = _reduce(kind, lo, hi, nan, z)
        parts.append((mn[0], mx[0], int(nn[0])))
        if i == a:
            got_t0 = float(tt[0])
        if j == b:
            got_t1 = float(tt[-1])
    if k0 >= 0:
        mn0, mx0, nan0 = s.level(0, field)
        z = np.zeros(1, np.intp)
        mn, mx, nn = combine(kind, mn0[k0:k1], mx0[k0:k1], nan0[k0:k1], z)
        parts.append((mn[0], mx[0], int(nn[0])))
        if got_t0 is None:
            got_t0 = float(s.t_first[k0])
        if got_t1 is None:
            got_t1 = float(s.t_last[k1 - 1])
    t_first = got_t0 if got_t0 is not None else t_first
    t_last = got_t1 if got_t1 is not None else t_last
    mns = np.array([p[0] for p in parts])
    mxs = np.array([p[1] for p in parts])
    if kind == "float":
        mn_, mx_ = np.fmin.reduce(mns), np.fmax.reduce(mxs)
    else:
        mn_, mx_ = mns.min(), mxs.max()
    return t_first, t_last, mn_, mx_, b - a, sum(p[2] for p in parts)


def envelope(s: ChannelSummary, n: int, field: str, read: Reader, start: Optional[float], end: Optional[float],
             points: int) -> Envelope:
    """The envelope of ``field`` over the records with ``start <= time < end`` (None: unbounded,
    the records at +-inf included) of a channel of ``n`` records in time order whose whole blocks
    are summarised in ``s`` (``s.n >= n // BLOCK * BLOCK``); ``read`` gives records by index."""
    kind = s.kind(field)
    stat = next(f.stat for f in s.fields if f.name == field)
    a = _bound(s, n, read, start)
    b = n if end is None else _bound(s, n, read, end)
    if b <= a:
        return empty(stat)
    m = b - a
    nb = min(s.blocks, n // BLOCK)
    whole0 = max(0, min(b // BLOCK, nb) - -(-a // BLOCK))
    if m <= points or points < 3 or whole0 < points - 2:
        tt, vv, mm = read(a, b)
        return runs(tt, vv, mm, points, kind, stat)
    # the coarsest level that still has points-2 whole blocks inside the window
    L, S = 0, BLOCK
    while True:
        S2 = S * FANOUT
        nb2 = nb // (FANOUT ** (L + 1))
        c2 = max(0, min(b // S2, nb2) - -(-a // S2))
        if c2 < points - 2:
            break
        L, S = L + 1, S2
    nbL = nb // (FANOUT ** L)
    k0, k1 = -(-a // S), min(b // S, nbL)
    cnt = k1 - k0
    g = -(-cnt // (points - 2))
    starts = np.arange(0, cnt, g)
    mnL, mxL, nanL = s.level(L, field)
    mn, mx, nn = combine(kind, mnL[k0:k1], mxL[k0:k1], nanL[k0:k1], starts)
    per = FANOUT ** L                                   # level-0 blocks per level-L block
    first_blk = (k0 + starts) * per
    last_blk = np.minimum(k0 + starts + g, k1) * per - 1
    sizes = (np.minimum(starts + g, cnt) - starts) * S
    out = {"t0": s.t_first[first_blk], "t1": s.t_last[last_blk], "min": mn.astype(stat), "max": mx.astype(stat),
           "n": sizes.astype(np.int64), "nan": nn.astype(np.int64)}
    edges = []
    if a < k0 * S:
        edges.append((0, _piece(kind, s, field, read, a, k0 * S)))
    if k1 * S < b:
        edges.append((1, _piece(kind, s, field, read, k1 * S, b)))
    for side, (t0, t1, pmn, pmx, pn, pnan) in edges:
        add = {"t0": [t0], "t1": [t1], "min": [pmn], "max": [pmx], "n": [pn], "nan": [pnan]}
        for key, val in add.items():
            arr = np.array(val, out[key].dtype)
            out[key] = np.concatenate((arr, out[key]) if side == 0 else (out[key], arr))
    return out
