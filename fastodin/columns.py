"""Vectorised columnar access to FastPack streams (numpy fast path; pure, no I/O).

A FastPack record is ``f64 time | u32 id | u32 len | payload | zero pad to 8`` (all little-endian),
records back to back.  :func:`scan` finds every complete record of a buffer and returns its fields as
numpy columns without a Python loop per record:

* a **periodic** fast path: from the first few headers it guesses a repeating cycle of record sizes
  (one size = a uniform stream, or e.g. 5 channels of different sizes round-robin) and verifies the
  guess for the whole rest of the buffer with one strided compare per cycle position;
* an **irregular** path for anything else: for every 8-aligned slot of a 256 KiB block it computes
  where a record starting there would end, then follows the chain of record starts by pointer
  doubling (a few doubling levels, a short walk of the coarsest level, then fill-in).

Both are chosen automatically; a short sequential probe of 16 headers also handles small buffers
and records bigger than a block.  Times are copied bit for bit (NaN payloads, -0.0 survive).

>>> data = encode_columns([1.0, 2.0], 7, np.zeros((2, 16), np.uint8))
>>> s = scan(data)
>>> s.time.tolist(), s.id.tolist(), s.offset.tolist(), s.length.tolist(), s.end
([1.0, 2.0], [7, 7], [16, 48], [16, 16], 64)
"""
from __future__ import annotations

import struct
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DataError, LimitError, TruncatedError, UsageError
from .wire import DEFAULT_MAX_RECORD_SIZE, pad_len, record_size

__all__ = [
    "Scan",
    "Columns",
    "scan",
    "decode_columns",
    "channel_array",
    "encode_columns",
    "pad_len",
    "record_size",
]


_LEN = struct.Struct("<I")
_HDR = struct.Struct("<QII")  # time bits, id, len

_PROBE = 16  # headers read one by one before choosing a strategy
_MAX_PERIOD = 8  # longest cycle of record sizes the periodic path looks for
_BLOCK = 256 * 1024  # bytes per pointer-doubling block (stays in L2)
_SHORT_RUN = 256  # a periodic run shorter than this (ended by a mismatch) is retried by doubling

_U8 = np.dtype("<u8")
_U4 = np.dtype("<u4")
_F8 = np.dtype("<f8")
_I8 = np.dtype(np.int64)

_EMPTY_T = np.empty(0, _F8)
_EMPTY_I = np.empty(0, _U4)
_EMPTY_O = np.empty(0, _I8)


Buffer = Union[bytes, bytearray, memoryview, np.ndarray]


class Scan(NamedTuple):
    """The complete records found by :func:`scan` (all arrays are fresh copies).

    ``time`` (f8, bit-exact), ``id`` (u4), ``offset`` (int64, absolute offset of each *payload*),
    ``length`` (u4, payload bytes), ``end`` (absolute offset just after the last complete record).

    >>> s = scan(b"")
    >>> s.count, s.end
    (0, 0)
    """

    time: np.ndarray
    id: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    end: int

    @property
    def time_bits(self) -> np.ndarray:
        """The raw IEEE-754 bits of ``time`` as ``<u8`` (a view)."""
        return self.time.view(_U8)

    @property
    def count(self) -> int:
        """Number of records."""
        return int(self.time.shape[0])


class Columns(NamedTuple):
    """:func:`decode_columns` result: :class:`Scan` columns plus ``leftover`` (bytes after the last
    complete record).

    >>> c = decode_columns(encode_columns([0.5], 1, np.zeros((1, 8), np.uint8)) + b"xy")
    >>> c.offset.tolist(), c.leftover
    ([16], b'xy')
    """

    time: np.ndarray
    id: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    end: int
    leftover: bytes

    @property
    def time_bits(self) -> np.ndarray:
        """The raw IEEE-754 bits of ``time`` as ``<u8`` (a view)."""
        return self.time.view(_U8)

    @property
    def count(self) -> int:
        """Number of records."""
        return int(self.time.shape[0])


def _as_u8(buf: Any) -> np.ndarray:
    """A zero-copy flat uint8 view of any contiguous bytes-like object."""
    if isinstance(buf, np.ndarray):
        if not buf.flags.c_contiguous:
            raise UsageError("buffer must be a C-contiguous array")
        if buf.dtype != np.uint8 or buf.ndim != 1:
            buf = buf.reshape(-1).view(np.uint8)
        return buf
    try:
        return np.frombuffer(buf, dtype=np.uint8)
    except (TypeError, ValueError, BufferError) as e:
        raise UsageError(f"buffer must be a contiguous bytes-like object ({e})") from None


def _limit_error(pos: int, length: int, limit: int, record: int) -> LimitError:
    return LimitError(
        f"record {record} at offset {pos} claims a payload of {length} bytes, "
        f"over max_record_size={limit}",
        offset=pos,
        length=length,
        limit=limit,
        record=record,
    )


def scan(
    buf: Buffer,
    start: int = 0,
    end: Optional[int] = None,
    *,
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
    max_records: Optional[int] = None,
) -> Scan:
    """Find every complete record in ``buf[start:end]`` (records start at ``start``).

    Returns a :class:`Scan`; an incomplete record at the end is not included (``Scan.end`` tells
    where it starts) and is not an error.  A header claiming more than ``max_record_size`` payload
    bytes raises :class:`~fastodin.errors.LimitError` (``offset`` of that header, ``length``,
    ``limit``, ``record`` = good records before it).  At most ``max_records`` records are returned.

    >>> s = scan(encode_columns([1.0, 2.0, 3.0], [1, 2, 1], np.zeros((3, 4), np.uint8)), 24)
    >>> s.id.tolist(), s.offset.tolist(), s.end
    ([2, 1], [40, 64], 72)
    """
    a = _as_u8(buf)
    n = a.shape[0]
    if end is None or end > n:
        end = n
    if start < 0 or end < 0:
        raise UsageError(f"scan: start={start} and end={end} must not be negative")
    limit = -1 if max_records is None else int(max_records)
    if max_records is not None and limit < 0:
        raise UsageError(f"scan: max_records={max_records} must not be negative")
    if start >= end:
        return Scan(_EMPTY_T, _EMPTY_I, _EMPTY_O, _EMPTY_I, start)
    if limit == 0:
        return Scan(_EMPTY_T, _EMPTY_I, _EMPTY_O, _EMPTY_I, start)
    maxlen = int(max_record_size)

    parts: List[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    # Records found one by one (probe) that were not covered by a vectorised run.
    seq_pos: List[int] = []
    count = 0
    p = start
    unpack_len = _LEN.unpack_from
    while True:
        left = limit - count if limit > 0 else _PROBE
        # ---- probe: read up to _PROBE headers one by one -------------------------------------
        want = _PROBE if left >= _PROBE else left
        sizes: List[int] = []
        q = p
        err = None
        while len(sizes) < want and end - q >= 16:
            ln = unpack_len(a, q + 12)[0]
            if ln > maxlen:
                err = (q, ln)
                break
            sz = 16 + ln + (-ln & 7)
            if sz > end - q:
                break
            sizes.append(sz)
            q += sz
        k = len(sizes)
        if k < _PROBE:
            # end of data, the record limit, or an oversized header: the probe is everything.
            if k:
                if parts and seq_pos:
                    parts.append(_from_positions(a, seq_pos))
                    seq_pos = []
                _append_probe(seq_pos, p, sizes)
                count += k
            if err is not None:
                raise _limit_error(err[0], err[1], maxlen, count)
            p = q
            break
        # ---- choose a vectorised strategy ---------------------------------------------------
        got = None
        period = 0
        for per in range(1, _MAX_PERIOD + 1):
            if sizes[per:] == sizes[:-per]:
                period = per
                break
        if period:
            got = _periodic(a, p, end, sizes[:period])
            if got is not None and got[0].shape[0] < _SHORT_RUN and end - got[4] >= 16 and q - p <= _PROBE * 1024:
                # the pattern broke soon: short runs are cheaper through pointer doubling
                irr = _irregular(a, p, end, maxlen, (q - p) // k)
                if irr is not None and irr[0].shape[0] > got[0].shape[0]:
                    got = irr
        if (got is None or got[0].shape[0] < k) and q - p <= _PROBE * 1024:
            # pointer doubling costs per 8-byte slot: for big records reading headers one by
            # one (the probe) is cheaper
            got = _irregular(a, p, end, maxlen, (q - p) // k)
        if got is not None and got[0].shape[0] >= k:
            t, ids, offs, lens, newp = got
            if seq_pos:
                parts.append(_from_positions(a, seq_pos))
                seq_pos = []
            m = t.shape[0]
            if limit > 0 and count + m > limit:
                m = limit - count
                t, ids, offs, lens = t[:m], ids[:m], offs[:m], lens[:m]
                newp = int(offs[-1]) + record_size(int(lens[-1])) - 16
            parts.append((t, ids, offs, lens))
            count += m
            p = newp
        else:
            _append_probe(seq_pos, p, sizes)
            count += k
            p = q
        if limit > 0 and count >= limit:
            break
    if seq_pos:
        parts.append(_from_positions(a, seq_pos))
    if not parts:
        return Scan(_EMPTY_T, _EMPTY_I, _EMPTY_O, _EMPTY_I, p)
    if len(parts) == 1:
        t, ids, offs, lens = parts[0]
        # times and ids of a periodic run are strided views into buf: copy them so the caller
        # may reuse its buffer (offsets and lengths are always computed arrays)
        if not t.flags.owndata:
            t = t.copy()
        if not ids.flags.owndata:
            ids = ids.copy()
    else:
        t = np.concatenate([x[0] for x in parts])
        ids = np.concatenate([x[1] for x in parts])
        offs = np.concatenate([x[2] for x in parts])
        lens = np.concatenate([x[3] for x in parts])
    return Scan(t.view(_F8), ids, offs, lens, p)


def _append_probe(seq_pos: List[int], p: int, sizes: Sequence[int]) -> None:
    for sz in sizes:
        seq_pos.append(p)
        p += sz


def _from_positions(a: np.ndarray, pos: List[int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Columns for a (short) list of header positions read one by one."""
    unpack = _HDR.unpack_from
    rows = [unpack(a, q) for q in pos]
    t = np.array([r[0] for r in rows], dtype=_U8)
    ids = np.array([r[1] for r in rows], dtype=_U4)
    lens = np.array([r[2] for r in rows], dtype=_U4)
    offs = np.array(pos, dtype=_I8) + 16
    return t, ids, offs, lens


def _field(a: np.ndarray, dtype: np.dtype, offset: int, count: int, stride: int) -> np.ndarray:
    return np.ndarray((count,), dtype=dtype, buffer=a, offset=offset, strides=(stride,))


def _periodic(a: np.ndarray, p: int, end: int, sizes: List[int]) -> Optional[tuple]:
    """Records from ``p`` under the hypothesis that record sizes repeat with cycle ``sizes``.

    Verifies the length field of every record of every cycle with one strided compare per cycle
    position; stops at the first cycle that breaks the pattern.
    """
    per = len(sizes)
    cyc = sum(sizes)
    ncyc = (end - p) // cyc
    if ncyc <= 0:
        return None
    starts = []
    o = p
    for sz in sizes:
        starts.append(o)
        o += sz
    lens_ok = [_LEN.unpack_from(a, o + 12)[0] for o in starts]
    # verify in growing windows, so a pattern that breaks early costs little (no O(n^2) rescans)
    good = 0
    win = 256
    while good < ncyc:
        hi = min(ncyc, good + win)
        stop = hi
        for o, ln in zip(starts, lens_ok):
            bad = _field(a, _U4, o + 12 + good * cyc, stop - good, cyc) != ln
            i = int(bad.argmax())
            if bad[i]:
                stop = good + i
                if stop == good:
                    break
        if stop < hi:
            good = stop
            break
        good = hi
        win *= 8
    if good == 0:
        return None
    if per == 1:
        o = starts[0]
        t = _field(a, _U8, o, good, cyc)
        ids = _field(a, _U4, o + 8, good, cyc)
        offs = np.arange(o + 16, o + 16 + good * cyc, cyc, dtype=_I8)
        lens = np.full(good, lens_ok[0], dtype=_U4)
    else:
        t2 = np.empty((good, per), _U8)
        i2 = np.empty((good, per), _U4)
        for j, o in enumerate(starts):
            t2[:, j] = _field(a, _U8, o, good, cyc)
            i2[:, j] = _field(a, _U4, o + 8, good, cyc)
        t = t2.reshape(-1)
        ids = i2.reshape(-1)
        offs = (np.arange(0, good * cyc, cyc, dtype=_I8)[:, None] + (np.array(starts, _I8) + 16)).reshape(-1)
        lens = np.tile(np.array(lens_ok, _U4), good)
    return t, ids, offs, lens, p + good * cyc


def _irregular(a: np.ndarray, p: int, end: int, maxlen: int, mean_size: int) -> Optional[tuple]:
    """Records from ``p`` within one block, found by pointer doubling over all 8-aligned slots."""
    bend = min(end, p + _BLOCK)
    e = (bend - p) >> 3  # slots in the block; records end on slot boundaries <= e
    m = e - 1  # slots with room for a 16-byte header
    if m <= 0:
        return None
    lens_all = _field(a, _U4, p + 12, m, 8)
    jmp = np.empty(e + 1, np.intp)
    nx = jmp[:m]
    np.add(lens_all, 7, out=nx, dtype=np.intp, casting="unsafe")
    nx >>= 3
    nx += np.arange(2, m + 2, dtype=np.intp)
    np.minimum(nx, e, out=nx)
    jmp[m] = e
    jmp[e] = e
    # J_k = J_{k-1}[J_{k-1}] jumps 2^k records.  Build K levels (K ~ log2(records / 64)), walk the
    # chain of J_K from slot 0 one step at a time (~64 steps), then fill in the records between
    # with J_{K-1} ... J_0 (each level doubles the chain).  Slot e is the sentinel (J[e] = e).
    est = (bend - p) // max(16, mean_size)
    levels = [jmp]
    while est > 64:
        jmp = jmp.take(jmp)
        levels.append(jmp)
        est >>= 1
    top = levels.pop()
    x = 0
    pts = [0]
    while x < e:
        x = int(top[x])
        pts.append(x)
    chain = np.array(pts, np.intp)
    for lv in reversed(levels):
        chain = np.column_stack((chain, lv.take(chain))).ravel()
    r = int(np.searchsorted(chain, e))  # chain[:r] are record starts (the last may be incomplete)
    last = int(chain[r - 1])
    if last >= m or last + 2 + ((int(lens_all[last]) + 7) >> 3) > e:
        r -= 1
    recs = chain[:r]
    lens = lens_all.take(recs)
    over = lens > maxlen
    if over.any():  # stop before it: the caller's probe raises the LimitError with context
        r = int(over.argmax())
        recs = recs[:r]
        lens = lens[:r]
    if r == 0:
        return None
    t = _field(a, _U8, p, m, 8).take(recs)
    ids = _field(a, _U4, p + 8, m, 8).take(recs)
    offs = recs.astype(_I8) * 8 + (p + 16)
    newp = p + 8 * int(chain[r])
    return t, ids, offs, lens, newp


def decode_columns(buf: Buffer, *, max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> Columns:
    """All complete records of a whole buffer as columns (raw ids, no namespace), plus the leftover
    bytes after the last complete record.

    >>> c = decode_columns(encode_columns([1.0, 2.0], [3, 4], np.arange(16, dtype=np.uint8).reshape(2, 8)))
    >>> c.id.tolist(), c.length.tolist(), c.leftover
    ([3, 4], [8, 8], b'')
    """
    s = scan(buf, 0, None, max_record_size=max_record_size)
    a = _as_u8(buf)
    return Columns(s.time, s.id, s.offset, s.length, s.end, a[s.end :].tobytes())


# --------------------------------------------------------------------------------------------
# namespaces, vectorised


def _resets(a: np.ndarray, ids: np.ndarray, offs: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Indices of reset records: id 0 with an empty payload or the 1-byte payload b"0"."""
    z = np.flatnonzero(ids == 0)
    if z.shape[0] == 0:
        return z
    lz = lens.take(z)
    one = lz == 1
    first = np.zeros(z.shape[0], bool)
    if one.any():
        first[one] = a.take(offs.take(z[one])) == 0x30
    return z[(lz == 0) | first]


def _namespace_roles(a: np.ndarray, ids: np.ndarray, offs: np.ndarray, lens: np.ndarray):
    """``(epoch, resets)``: per record the number of resets before it (None if there are none) and
    the indices of the reset records.  Within an epoch the first record of an id != 0 whose payload
    is not b"" or b"0" is its definition; the later records of that id are its data.
    """
    n = ids.shape[0]
    resets = _resets(a, ids, offs, lens)
    if resets.shape[0]:
        mark = np.zeros(n, np.int64)
        mark[resets] = 1
        epoch = np.cumsum(mark)
    else:
        epoch = None
    return epoch, resets


def _first_index(keys: np.ndarray, idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(unique keys, index of the first occurrence of each) for the records ``idx`` with ``keys``."""
    if keys.shape[0] == 0:
        return keys, idx
    kmax = int(keys.max())
    if kmax < (1 << 22):
        table = np.full(kmax + 1, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(table, keys, idx)
        uk = np.flatnonzero(table != np.iinfo(np.int64).max)
        return uk, table[uk]
    uk, first = np.unique(keys, return_index=True)
    return uk, idx[first]


def channel_array(
    buf: Buffer,
    channel: Union[int, str],
    dtype: Any,
    *,
    namespace: bool = True,
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
) -> Tuple[np.ndarray, np.ndarray]:
    """Every payload of one channel as a numpy array of ``dtype``, with its times.

    ``channel`` is an int id or (with ``namespace=True``) a name, resolved the FastPack way:
    a record whose id is not defined since the last reset is a definition (payload = UTF-8 name;
    the names ``""`` and ``"0"`` bind nothing, as in Perl), id 0 with an empty payload or the
    payload b"0" is a reset, other id-0 records are metadata.
    Returns ``(times, values)`` -- the order of :meth:`fastodin.Archive.read` and of the record
    (``time | id | payload``); ``values`` has shape ``(n,) + dtype.shape`` and is a zero-copy
    (read-only if ``buf`` is) view of ``buf`` when the channel's records are evenly spaced.

    >>> from fastodin.columns import encode_columns
    >>> data = encode_columns([0.0], 1, np.frombuffer(b"x", np.uint8)[None, :])
    >>> data += encode_columns([1.0, 2.0], 1, np.array([[1.5, 2.5], [3.5, 4.5]]))
    >>> t, v = channel_array(data, "x", ("<f8", 2))
    >>> t.tolist(), v.tolist()
    ([1.0, 2.0], [[1.5, 2.5], [3.5, 4.5]])
    """
    dt = np.dtype(dtype)
    if dt.hasobject:
        raise UsageError(f"channel_array: dtype {dt} holds Python objects; payloads need a plain dtype")
    a = _as_u8(buf)
    s = scan(a, 0, None, max_record_size=max_record_size)
    if s.end != a.shape[0]:
        raise TruncatedError(
            f"channel_array: buffer ends inside a record: {a.shape[0] - s.end} bytes at offset {s.end} "
            f"after {s.count} good records",
            offset=s.end,
            length=a.shape[0] - s.end,
            record=s.count,
            channel=channel,
        )
    ids, offs, lens = s.id, s.offset, s.length
    if not namespace:
        if isinstance(channel, str) or not isinstance(channel, (int, np.integer)):
            raise UsageError(f"channel_array: channel {channel!r} must be an int id when namespace=False")
        sel = np.flatnonzero(ids == int(channel))
    else:
        sel = _select_named(a, ids, offs, lens, channel)
    m = sel.shape[0]
    item = dt.itemsize
    sl = lens.take(sel)
    badl = sl != item
    if badl.any():
        i = int(badl.argmax())
        r = int(sel[i])
        raise DataError(
            f"channel {channel!r}: record {r} at offset {int(offs[r]) - 16} has a {int(sl[i])}-byte payload, "
            f"but dtype {dt} needs {item} bytes",
            offset=int(offs[r]) - 16,
            length=int(sl[i]),
            record=r,
            channel=channel,
        )
    so = offs.take(sel)
    if m == 0:
        return s.time[:0].copy(), np.empty((0,) + dt.shape, dt.base)
    if m == 1:
        stride = 8
    else:
        d = np.diff(so)
        stride = int(d[0])
        if not (d == stride).all():
            stride = 0
    if stride > 0:
        first = int(so[0])
        vals = np.ndarray((m,), dtype=dt, buffer=a, offset=first, strides=(stride,))
        times = np.ndarray((m,), dtype=_F8, buffer=a, offset=first - 16, strides=(stride,))
        return times, vals
    times = s.time.take(sel)
    if item == 0:
        return times, np.empty((m,) + dt.shape, dt.base)
    base = int(so.min())
    # one overlapping view: element i = the ``item`` bytes at base + 8 i; payloads all start on
    # 8-aligned slots relative to the stream, so every payload is one element of it.
    span = (int(so.max()) - base) // 8 + 1
    v = np.ndarray((span,), dtype=np.dtype(("V", item)), buffer=a, offset=base, strides=(8,))
    raw = v.take((so - base) // 8)
    vals = raw.view(dt.base).reshape((m,) + dt.shape)
    return times, vals


def _select_named(a: np.ndarray, ids: np.ndarray, offs: np.ndarray, lens: np.ndarray, channel: Any) -> np.ndarray:
    """Indices of the data records of ``channel`` (a name or an id) under namespace semantics."""
    epoch, resets = _namespace_roles(a, ids, offs, lens)
    if isinstance(channel, (bytes, str)) and channel in ("", "0", b"", b"0") or (
        isinstance(channel, (int, np.integer)) and int(channel) == 0
    ):
        z = np.flatnonzero(ids == 0)
        if resets.shape[0]:
            keep = np.ones(z.shape[0], bool)
            keep[np.searchsorted(z, resets)] = False
            z = z[keep]
        return z
    nz = np.flatnonzero(ids != 0)
    # a definition binds only a name Perl holds true: payload b"" or b"0" leaves the id undefined,
    # so the next record of that id is a definition again (spec/fastpack.md)
    lnz = lens.take(nz)
    falsy = lnz == 0
    one = np.flatnonzero(lnz == 1)
    if one.shape[0]:
        falsy[one] = a.take(offs.take(nz[one])) == 0x30
    idz = ids.take(nz).astype(np.int64)
    base = 1 << 32
    if epoch is None:
        keys = idz
    else:
        if nz.shape[0]:
            top = int(idz.max()) + 1
            if (resets.shape[0] + 1) * top < (1 << 22):
                base = top  # small keys: _first_index can use a table instead of sorting
        keys = epoch.take(nz) * base + idz
    if falsy.any():
        tr = ~falsy
        ukeys, first = _first_index(keys[tr], nz[tr])
    else:
        ukeys, first = _first_index(keys, nz)
    # which keys carry the channel?
    if isinstance(channel, (int, np.integer)):
        want = (ukeys % base) == int(channel)
    elif isinstance(channel, (str, bytes)):
        name = channel.encode("utf-8", "surrogateescape") if isinstance(channel, str) else bytes(channel)
        ln = len(name)
        dl = lens.take(first)
        cand = np.flatnonzero(dl == ln)
        want = np.zeros(ukeys.shape[0], bool)
        if cand.shape[0]:
            if ln:
                po = offs.take(first[cand])
                got = a[po[:, None] + np.arange(ln)]
                want[cand] = (got == np.frombuffer(name, np.uint8)).all(axis=1)
            else:
                want[cand] = True
    else:
        raise UsageError(f"channel_array: channel must be an int id or a str name, not {type(channel).__name__}")
    wk = ukeys[want]
    wf = first[want]
    if wk.shape[0] == 0:
        return np.empty(0, np.intp)
    if wk.shape[0] == 1:
        k0 = int(wk[0])
        sel = nz[(keys == k0)]
        return sel[sel > int(wf[0])]
    # several bindings (re-bound after resets, or several ids with the same name)
    pos = np.searchsorted(wk, keys)
    pos[pos >= wk.shape[0]] = 0
    hit = wk[pos] == keys
    sel_k = np.flatnonzero(hit)
    recs = nz[sel_k]
    return recs[recs > wf[pos[sel_k]]]


def encode_columns(times: Any, ids: Any, payloads: Any) -> bytes:
    """Encode ``n`` records whose payloads all have the same length, vectorised.

    ``times``: n floats (or one, broadcast); ``ids``: n ints or one int; ``payloads``: an ``(n, L)``
    uint8 array or any array whose ``n`` rows are the payloads (each row viewed as its raw bytes).
    Varying-length payloads are not supported here (use :class:`fastodin.codec.Encoder`).

    >>> encode_columns([1.0], 2, np.array([[1, 2, 3]], np.uint8)).hex()
    '000000000000f03f02000000030000000102030000000000'
    """
    pay = np.asarray(payloads)
    if pay.ndim == 0:
        raise UsageError("encode_columns: payloads must be an array with one row per record")
    n = pay.shape[0]
    row = int(np.prod(pay.shape[1:], dtype=np.int64)) * pay.dtype.itemsize
    if n == 0:
        pay = np.empty((0, row), np.uint8)
    else:
        pay = np.ascontiguousarray(pay).reshape(n, -1).view(np.uint8)
    plen = row
    t = np.asarray(times, dtype=_F8)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != n):
        raise UsageError(f"encode_columns: {t.size} times for {n} payload rows")
    i = np.asarray(ids)
    if i.dtype.kind not in "iu" and i.size:
        raise UsageError(f"encode_columns: ids must be integers, not {i.dtype}")
    if i.ndim > 1 or (i.ndim == 1 and i.shape[0] != n):
        raise UsageError(f"encode_columns: {i.size} ids for {n} payload rows")
    if i.size and (int(i.min()) < 0 or int(i.max()) > 0xFFFFFFFF):
        raise UsageError("encode_columns: ids must be in 0..4294967295")
    if plen > 0xFFFFFFFF:
        raise UsageError("encode_columns: payloads longer than 4294967295 bytes")
    size = record_size(plen)
    rec = np.dtype(
        {"names": ["t", "i", "l", "p"], "formats": [_F8, _U4, _U4, (np.uint8, (plen,))], "offsets": [0, 8, 12, 16], "itemsize": size}
    )
    out = np.zeros(n, rec) if plen % 8 else np.empty(n, rec)
    out["t"] = t
    out["i"] = i if i.size else 0
    out["l"] = plen
    if plen:
        out["p"] = pay
    return out.tobytes()
