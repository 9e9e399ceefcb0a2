"""The viewer's multi-resolution summary: exact min/max/NaN counts per block of records.

For every plottable field of every channel whose records are in time order in the file, the
records are cut (in file order) into level-0 blocks of :data:`BLOCK` records; each block keeps
its first and last record time and, per field, the exact minimum, maximum and the count of NaN
(or missing) values.  Level ``L`` blocks group :data:`FANOUT` blocks of level ``L-1``.  Only
whole blocks are kept: the records after the last whole block (fewer than :data:`BLOCK`) are
read from the file when a query needs them.  :mod:`fastodin.view.envelope` combines whole blocks
for the interior of a run and reads records only at its edges, so answers are exact.

The summary is built in one pass over the file (each frame decompressed once, see
:mod:`fastodin.view.dataset`),
extended as a growing file gains frames, and cached (:func:`save` / :func:`load`; the byte layout
is in spec/view-api.md) under a key that changes with the file (size, mtime and a fingerprint of
its content).

>>> import numpy as np
>>> from fastodin.view.fields import Field
>>> s = ChannelSummary("c", [Field("v", np.dtype("<f8"))])
>>> s.add(np.arange(200.0), {"v": np.arange(200.0)}, None)
>>> s.n, s.blocks, s.level(0, "v")[0][:2].tolist(), s.level(0, "v")[1][:2].tolist()
(200, 3, [0.0, 64.0], [63.0, 127.0])
"""
from __future__ import annotations

import hashlib
import math
import os
import struct
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import orjson

from .fields import Field, kind_of

__all__ = ["BLOCK", "FANOUT", "ChannelSummary", "block_stats", "combine", "save", "load", "file_key", "cache_path",
           "MAGIC", "VERSION", "MAX_EVENTS"]

#: Records per level-0 block.
BLOCK = 64
#: Blocks of level L-1 per block of level L.
FANOUT = 16
#: Cache file magic and version (spec/view-api.md).
MAGIC = b"FOVSUM\x00\x01"
VERSION = 1
#: ODIN events kept per file for the markers (the rest are counted, not kept).
MAX_EVENTS = 10000
_HEAD = struct.Struct("<8sII")
_FP_BYTES = 1 << 16


class _Grow:
    """An append-only numpy array with amortised growth."""

    __slots__ = ("a", "n")

    def __init__(self, dtype: Any, data: Optional[np.ndarray] = None) -> None:
        self.a = np.empty(16, dtype) if data is None else np.array(data, dtype)
        self.n = 0 if data is None else int(self.a.shape[0])

    def extend(self, x: np.ndarray) -> None:
        k = x.shape[0]
        if self.n + k > self.a.shape[0]:
            b = np.empty(max(2 * self.a.shape[0], self.n + k), self.a.dtype)
            b[:self.n] = self.a[:self.n]
            self.a = b
        self.a[self.n:self.n + k] = x
        self.n += k

    def truncate(self, n: int) -> None:
        self.n = min(self.n, n)

    @property
    def view(self) -> np.ndarray:
        return self.a[:self.n]


def _sentinels(dt: np.dtype) -> Tuple[Any, Any]:
    """Values that lose every min (resp. max) comparison against values of ``dt``."""
    if dt.kind == "f":
        return math.nan, math.nan
    info = np.iinfo(dt)
    return info.max, info.min


def block_stats(v: np.ndarray, missing: Optional[np.ndarray], nb: int, size: int,
                stat: np.dtype) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(min, max, nan)`` of the first ``nb`` blocks of ``size`` values of ``v`` (NaN and
    ``missing`` values left out of min/max and counted in ``nan``).  A block whose values are all
    NaN/missing has a meaningless min/max (its ``nan`` equals its size).

    >>> mn, mx, nan = block_stats(np.array([1.0, np.nan, -np.inf, 2.0]), None, 2, 2, np.dtype("f8"))
    >>> mn.tolist(), mx.tolist(), nan.tolist()
    ([1.0, -inf], [1.0, 2.0], [1, 0])
    """
    if v.dtype.kind == "b":
        v = v.view(np.int8) if v.dtype.itemsize == 1 else v.astype(np.int8)
    w = v[:nb * size]
    if not w.flags.c_contiguous:       # a field of a record: reducing short rows is ~30% faster contiguous
        w = np.ascontiguousarray(w)
    w = w.reshape(nb, size)
    if missing is not None:
        m = missing[:nb * size].reshape(nb, size)
        lo, hi = _sentinels(v.dtype)
        if v.dtype.kind == "f":
            w = np.where(m, v.dtype.type(math.nan), w)
        else:
            nan = m.sum(axis=1, dtype=np.int64)
            return (np.where(m, v.dtype.type(lo), w).min(axis=1).astype(stat),
                    np.where(m, v.dtype.type(hi), w).max(axis=1).astype(stat), nan)
    nan = np.zeros(nb, np.int64)
    if v.dtype.kind != "f":
        return np.minimum.reduce(w, axis=1).astype(stat), np.maximum.reduce(w, axis=1).astype(stat), nan
    mn = np.minimum.reduce(w, axis=1)      # NaN as soon as one value of the block is NaN
    mx = np.maximum.reduce(w, axis=1)
    bad = np.flatnonzero(np.isnan(mn))
    if bad.shape[0]:
        wb = w[bad]
        nan[bad] = np.isnan(wb).sum(axis=1)
        mn[bad] = np.fmin.reduce(wb, axis=1)
        mx[bad] = np.fmax.reduce(wb, axis=1)
    return mn.astype(stat), mx.astype(stat), nan


def combine(kind: str, mn: np.ndarray, mx: np.ndarray, nan: np.ndarray,
            starts: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks grouped at ``starts`` (as ``np.add.reduceat``): their min, max and nan."""
    if kind == "float":
        return np.fmin.reduceat(mn, starts), np.fmax.reduceat(mx, starts), np.add.reduceat(nan, starts)
    return np.minimum.reduceat(mn, starts), np.maximum.reduceat(mx, starts), np.add.reduceat(nan, starts)


class ChannelSummary:
    """The summary of one channel: ``n`` records in order, ``ordered`` (False: its records are
    not in time order in the file, or a time is NaN: no blocks, queries read the records),
    level-0 ``t_first``/``t_last`` and per-field levels of (min, max, nan) arrays."""

    def __init__(self, name: str, fields: List[Field]) -> None:
        self.name = name
        self.fields = list(fields)
        self.n = 0
        self.ordered = True
        self.last_t = -math.inf
        self._t0 = _Grow(np.float64)
        self._t1 = _Grow(np.float64)
        self._mn = {f.name: _Grow(f.stat) for f in fields}
        self._mx = {f.name: _Grow(f.stat) for f in fields}
        self._nan = {f.name: _Grow(np.int64) for f in fields}
        self._levels: Dict[str, Tuple[int, List[Tuple[np.ndarray, np.ndarray, np.ndarray]]]] = {}
        # records after the last whole block: times, values, missing
        self._carry: Optional[Tuple[np.ndarray, Dict[str, np.ndarray], Optional[np.ndarray]]] = None

    @property
    def blocks(self) -> int:
        """Whole level-0 blocks."""
        return self._t0.n

    @property
    def t_first(self) -> np.ndarray:
        return self._t0.view

    @property
    def t_last(self) -> np.ndarray:
        return self._t1.view

    def kind(self, field: str) -> str:
        return kind_of(next(f.stat for f in self.fields if f.name == field))

    def level(self, L: int, field: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(min, max, nan) arrays of the whole blocks of level ``L`` (block size BLOCK*FANOUT**L)."""
        if L == 0:
            return self._mn[field].view, self._mx[field].view, self._nan[field].view
        got = self._levels.get(field)
        if got is None or got[0] != self.blocks:
            got = self._levels[field] = (self.blocks, self._build_levels(field))
        lv = got[1]
        if L > len(lv):
            raise IndexError(f"level {L} of {self.name!r} has no whole block")
        return lv[L - 1]

    def n_levels(self) -> int:
        """Levels that have at least one whole block."""
        k, nb = 1, self.blocks // FANOUT
        while nb:
            k += 1
            nb //= FANOUT
        return k if self.blocks else 0

    def _build_levels(self, field: str) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        out = []
        mn, mx, nan = self.level(0, field)
        kind = self.kind(field)
        while mn.shape[0] >= FANOUT:
            nb = mn.shape[0] // FANOUT
            starts = np.arange(0, nb * FANOUT, FANOUT)
            mn, mx, nan = combine(kind, mn[:nb * FANOUT], mx[:nb * FANOUT], nan[:nb * FANOUT], starts)
            out.append((mn, mx, nan))
        return out

    def disorder(self) -> None:
        """Give up the blocks: the records are not in time order (queries read the records)."""
        self.ordered = False
        self._t0, self._t1 = _Grow(np.float64), _Grow(np.float64)
        self._mn = {f.name: _Grow(f.stat) for f in self.fields}
        self._mx = {f.name: _Grow(f.stat) for f in self.fields}
        self._nan = {f.name: _Grow(np.int64) for f in self.fields}
        self._levels = {}
        self._carry = None

    def add(self, times: np.ndarray, vals: Dict[str, np.ndarray], missing: Optional[np.ndarray]) -> None:
        """Append the next records of the channel (file order)."""
        k = int(times.shape[0])
        if not k:
            return
        self.n += k
        if not self.ordered:
            return
        if not (times[0] >= self.last_t) or (k > 1 and not bool((times[1:] >= times[:-1]).all())):
            self.disorder()        # NaN times compare False too
            return
        self.last_t = float(times[-1])
        c = self._carry
        if c is not None:
            ct, cv, cm = c
            need = BLOCK - ct.shape[0]
            if k < need:
                self._carry = (np.concatenate((ct, times)), {f: np.concatenate((cv[f], vals[f])) for f in cv},
                               _cat_mask(cm, ct.shape[0], missing, k))
                return
            head_m = _cat_mask(cm, ct.shape[0], None if missing is None else missing[:need], need)
            self._blocks(np.concatenate((ct, times[:need])),
                         {f: np.concatenate((cv[f], vals[f][:need])) for f in cv}, head_m, 1)
            times = times[need:]
            vals = {f: v[need:] for f, v in vals.items()}
            missing = None if missing is None else missing[need:]
            k -= need
            self._carry = None
        nb = k // BLOCK
        if nb:
            self._blocks(times, vals, missing, nb)
        rest = nb * BLOCK
        if rest < k:
            self._carry = (np.array(times[rest:]), {f: np.array(v[rest:]) for f, v in vals.items()},
                           None if missing is None else np.array(missing[rest:]))

    def _blocks(self, times: np.ndarray, vals: Dict[str, np.ndarray], missing: Optional[np.ndarray],
                nb: int) -> None:
        self._t0.extend(times[0:nb * BLOCK:BLOCK])
        self._t1.extend(times[BLOCK - 1:nb * BLOCK:BLOCK])
        for f in self.fields:
            mn, mx, nan = block_stats(vals[f.name], missing, nb, BLOCK, f.stat)
            self._mn[f.name].extend(mn)
            self._mx[f.name].extend(mx)
            self._nan[f.name].extend(nan)

    def truncate(self, n: int) -> None:
        """Forget every record from the ``n``-th on (a growing raw file's last chunk changed); the
        records of the last partial block must be added again (:meth:`add`)."""
        if not self.ordered:
            self.n = min(self.n, n)
            return
        nb = n // BLOCK
        for g in (self._t0, self._t1, *self._mn.values(), *self._mx.values(), *self._nan.values()):
            g.truncate(nb)
        self._levels = {}
        self._carry = None
        self.n = nb * BLOCK
        self.last_t = float(self._t1.view[-1]) if nb else -math.inf

    # ---- cache ----------------------------------------------------------------------------------
    def arrays(self) -> Dict[str, np.ndarray]:
        out = {"t_first": self.t_first, "t_last": self.t_last}
        for f in self.fields:
            out[f"min:{f.name}"], out[f"max:{f.name}"], out[f"nan:{f.name}"] = self.level(0, f.name)
        return out

    @classmethod
    def from_arrays(cls, name: str, fields: List[Field], n: int, ordered: bool,
                    arrays: Dict[str, np.ndarray]) -> "ChannelSummary":
        s = cls(name, fields)
        s.n, s.ordered = n, ordered
        if ordered:
            s._t0, s._t1 = _Grow(np.float64, arrays["t_first"]), _Grow(np.float64, arrays["t_last"])
            for f in fields:
                s._mn[f.name] = _Grow(f.stat, arrays[f"min:{f.name}"])
                s._mx[f.name] = _Grow(f.stat, arrays[f"max:{f.name}"])
                s._nan[f.name] = _Grow(np.int64, arrays[f"nan:{f.name}"])
            s.last_t = float(s._t1.view[-1]) if s.blocks else -math.inf
            # the records after the last whole block are re-added by the caller before growth
            s.n = s.blocks * BLOCK if n > s.blocks * BLOCK else n
        return s

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values())


def _cat_mask(a: Optional[np.ndarray], na: int, b: Optional[np.ndarray], nb: int) -> Optional[np.ndarray]:
    if a is None and b is None:
        return None
    return np.concatenate((np.zeros(na, bool) if a is None else a, np.zeros(nb, bool) if b is None else b))


# ---- cache file ---------------------------------------------------------------------------------

def file_key(path: str) -> Dict[str, Any]:
    """What identifies the file's content: size, mtime (ns), inode and a BLAKE2b fingerprint of its
    first and last 64 KiB (a rewrite in place with the same size and mtime still changes it)."""
    st = os.stat(path)
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        h.update(f.read(_FP_BYTES))
        if st.st_size > _FP_BYTES:
            f.seek(max(_FP_BYTES, st.st_size - _FP_BYTES))
            h.update(f.read(_FP_BYTES))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "fingerprint": h.hexdigest()}


def cache_path(path: str, cache_dir: Optional[str] = None) -> str:
    """Where the summary of ``path`` is cached: ``cache_dir`` (default ``$XDG_CACHE_HOME/fastodin/view``,
    else ``~/.cache/fastodin/view``), named by a hash of the file's absolute path.

    >>> os.path.basename(cache_path("/data/run.fastpack.zst", "/tmp/c")).startswith("run.fastpack.zst-")
    True
    """
    if cache_dir is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        cache_dir = os.path.join(base, "fastodin", "view")
    real = os.path.realpath(path)
    h = hashlib.blake2b(real.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return os.path.join(cache_dir, f"{os.path.basename(real)}-{h}.summary")


def save(dest: str, key: Dict[str, Any], summaries: Dict[str, ChannelSummary],
         events: List[Tuple[float, str, bytes, int]],
         events_dropped: int) -> None:
    """Write the cache file ``dest`` (a temporary name in the same directory, renamed when complete).
    Layout (spec/view-api.md): ``MAGIC | u32 VERSION | u32 H | H bytes of JSON header | zero pad
    to 8 | arrays``."""
    blobs: List[bytes] = []
    table: List[Dict[str, Any]] = []
    pos = 0
    chans = []
    for name, s in summaries.items():
        chans.append({"name": name, "n": s.n, "ordered": s.ordered, "blocks": s.blocks,
                      "fields": [{"name": f.name, "dtype": f.dtype, "stat": f.stat.str} for f in s.fields]})
        for what, a in (s.arrays().items() if s.ordered else ()):
            a = np.ascontiguousarray(a, a.dtype.newbyteorder("<"))
            table.append({"channel": name, "array": what, "dtype": a.dtype.str, "offset": pos,
                          "count": int(a.shape[0])})
            b = a.tobytes()
            blobs.append(b + bytes(-len(b) & 7))
            pos += len(b) + (-len(b) & 7)
    head = orjson.dumps({"format": "fastodin-view-summary", "version": VERSION, "file": key, "block": BLOCK,
                         "fanout": FANOUT, "channels": chans, "arrays": table,
                         "events": [[t if math.isfinite(t) else str(t), c, p.hex(), fn] for t, c, p, fn in events],
                         "events_dropped": events_dropped})
    d = os.path.dirname(dest) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".summary-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_HEAD.pack(MAGIC, VERSION, len(head)))
            f.write(head)
            f.write(bytes(-(_HEAD.size + len(head)) & 7))
            for b in blobs:
                f.write(b)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load(src: str, key: Dict[str, Any], fields: Dict[str, List[Field]]
         ) -> Optional[Tuple[Dict[str, ChannelSummary], List[Tuple[float, str, bytes, int]], int]]:
    """The cached summaries if ``src`` is a well-formed cache file for the file ``key`` with the
    same channels and fields (else None: the caller rebuilds).  Never raises on a bad cache file."""
    try:
        with open(src, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    try:
        if len(raw) < _HEAD.size:
            return None
        magic, version, hl = _HEAD.unpack_from(raw, 0)
        if magic != MAGIC or version != VERSION or _HEAD.size + hl > len(raw):
            return None
        head = orjson.loads(raw[_HEAD.size:_HEAD.size + hl])
        if head.get("file") != key or head.get("block") != BLOCK or head.get("fanout") != FANOUT:
            return None
        base = _HEAD.size + hl + (-(_HEAD.size + hl) & 7)
        arrays: Dict[str, Dict[str, np.ndarray]] = {}
        for a in head["arrays"]:
            dt = np.dtype(a["dtype"])
            off, cnt = int(a["offset"]), int(a["count"])
            if dt.kind not in "fiu" or off < 0 or cnt < 0 or base + off + cnt * dt.itemsize > len(raw):
                return None
            arrays.setdefault(a["channel"], {})[a["array"]] = np.frombuffer(raw, dt, cnt, base + off).copy()
        out: Dict[str, ChannelSummary] = {}
        for c in head["channels"]:
            name = c["name"]
            want = fields.get(name)
            got = [Field(f["name"], np.dtype(f["dtype"])) for f in c["fields"]]
            if want is None or want != got:
                return None
            s = ChannelSummary.from_arrays(name, want, int(c["n"]), bool(c["ordered"]), arrays.get(name, {}))
            out[name] = s
        if set(out) != {n for n, f in fields.items() if f}:
            return None
        events = [(float(t), str(c), bytes.fromhex(p), int(fn)) for t, c, p, fn in head.get("events", [])]
        return out, events, int(head.get("events_dropped", 0))
    except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError):
        return None
