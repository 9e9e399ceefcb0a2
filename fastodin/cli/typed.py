"""Typed values of records for ``cat`` and ``export``: archive layouts, ODIN set definitions, metadata.

:class:`Typer` looks at an open archive once (layouts from the index, ODIN set definitions from the
id-0 metadata the mapping writes) and then turns a record into a flat ``{column: value}`` dict of
plain Python values, or ``None`` when nothing is known about its payload.

>>> plain(np.float32(1.5)), plain(b"ab\\x00\\x00"), plain(np.array([1, 2])), plain(np.void(bytes(2)))
(1.5, 'ab', [1, 2], '0000')
>>> plain(np.float32(0.1)), plain(np.array([0.1, 3.3], np.float32))   # float32: its own shortest form
(0.1, [0.1, 3.3])
"""
from __future__ import annotations

import bisect
import struct
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .._fmt import f32

__all__ = ["Typer", "plain"]

_EVENT = struct.Struct("<BHBIH")
_EVENT_COLUMNS = ("event_id", "timestamp", "sequence", "payload")
_ODIN_HEADER = ("type", "set_id", "reserved")   # packet header fields that are not values


def plain(v: Any) -> Any:
    """A JSON-friendly Python value: numpy -> Python, NUL-padded ASCII bytes -> str, else hex."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "V" and v.dtype.names is None:
            return [bytes(x).hex() for x in v.reshape(-1)]
        if v.dtype.kind in "SV":
            return [plain(x) for x in v.tolist()]
        if v.dtype.kind == "f" and v.dtype.itemsize < 8:
            return np.vectorize(f32, otypes=[object])(v).tolist() if v.size else v.tolist()
        return v.tolist()
    if isinstance(v, np.void) and v.dtype.names is None:
        return bytes(v).hex()  # raw entry bytes (no type known): hex, never guessed as text
    if isinstance(v, np.floating) and v.dtype.itemsize < 8:
        return f32(v)  # float32 printed as float32, not with float64 noise (0.1, not 0.10000000149011612)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v).rstrip(b"\0")
        try:
            s = b.decode("ascii")
            if s.isprintable():
                return s
        except UnicodeDecodeError:
            pass
        return bytes(v).hex()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


class Typer:
    """Record -> flat typed values for one open archive."""

    def __init__(self, ar: Any, odin_db: Any = None) -> None:
        from .sources import file_meta

        self.ar = ar
        self.layouts = dict(getattr(ar, "layouts", {}) or {})
        self.sets: Dict[str, Tuple[List[float], List[Any]]] = {}
        self._dtypes: Dict[int, Tuple[np.dtype, List[str]]] = {}
        self.odin_db = odin_db
        if any(isinstance(n, str) and n.startswith("odin/") for n in getattr(ar, "ids", {})):
            try:
                from ..odin.decode import stored_set_def
            except ImportError:  # pragma: no cover
                stored_set_def = None
            if stored_set_def is not None:
                for t, m in file_meta(ar):
                    if isinstance(m, dict) and m.get("odin") == "set" and isinstance(m.get("channel"), str):
                        try:  # checked: an entry whose stored type does not fit stays raw bytes
                            d = stored_set_def(m)
                        except Exception:
                            continue
                        ts, ds = self.sets.setdefault(m["channel"], ([], []))
                        ts.append(t)
                        ds.append(d)

    def set_def(self, channel: str, t: float) -> Any:
        """The ODIN set definition in force for ``channel`` at time ``t``."""
        got = self.sets.get(channel)
        if not got:
            return None
        ts, ds = got
        i = bisect.bisect_right(ts, t) - 1
        return ds[max(i, 0)]

    def _packet_view(self, d: Any) -> Tuple[np.dtype, List[str]]:
        """The packet dtype of set definition ``d`` and the value columns it gives (as :meth:`values`)."""
        key = id(d)
        got = self._dtypes.get(key)
        if got is None:
            from ..odin.schema import flat_columns

            dt = d.packet_dtype()
            got = (dt, [k for k in flat_columns(np.zeros(1, dt)) if k not in _ODIN_HEADER])
            self._dtypes[key] = got
        return got

    def columns(self, name: Any) -> Optional[List[str]]:
        """The value columns :meth:`values` gives for records of channel ``name`` (``0``: id-0
        metadata gives ``["meta"]``), known before reading any record; None when its records are
        untyped.  An ODIN set redefined during the recording gives the union of its definitions'
        columns.

        >>> from fastodin.archive.reader import open_archive
        >>> import os, tempfile, fastodin
        >>> p = os.path.join(tempfile.mkdtemp(), "c.fastpack.zst")
        >>> with fastodin.Writer(p) as w:
        ...     s = w.create_stream("imu", data=fastodin.Layout().scalar("t", "float32").vector3d("acc"))
        ...     s.config(0.0); s.data(0.0, 1.0, (0, 0, 1))
        >>> with open_archive(p) as ar: Typer(ar).columns("imu"), Typer(ar).columns("nothing")
        (['t', 'acc'], None)
        """
        if name == 0:
            return ["meta"]
        if not isinstance(name, str):
            return None
        lay = self.layouts.get(name)
        if lay is not None:
            from ..codec import Record

            zero = bytes(lay.dtype.itemsize) + bytes(4 * len(lay.variable))  # every variable field empty
            v = self.values(Record(0.0, 1, memoryview(zero), name))
            return None if v is None else list(v)
        if name.startswith("odin/event/"):
            return list(_EVENT_COLUMNS)
        if name.startswith("odin/set/") and not name.endswith("/identifier"):
            out: Dict[str, None] = {}
            for d in (self.sets.get(name) or ([], []))[1]:
                out.update(dict.fromkeys(self._packet_view(d)[1]))
            return list(out) or None
        return None

    def values(self, r: Any) -> Optional[Dict[str, Any]]:
        """Flat typed values of record ``r`` (``time``, ``id``, ``name``, ``payload``) or None."""
        name = r.name
        if r.id == 0:
            from ..metadata import decode_meta

            try:
                return {"meta": decode_meta(r.payload)}
            except Exception:
                return None
        if name is None:
            return None
        lay = self.layouts.get(name)
        if lay is not None:
            try:
                u = lay.unpack(r.payload)
            except Exception:
                return None
            out: Dict[str, Any] = {}
            for k, v in u.items():
                _flatten(out, k, v)
            return out
        if name.startswith("odin/"):
            return self._odin(name, r)
        return None

    def _odin(self, name: str, r: Any) -> Optional[Dict[str, Any]]:
        p = r.payload
        if name.startswith("odin/set/") and not name.endswith("/identifier"):
            d = self.set_def(name, r.time)
            if d is None or len(p) != d.packet_size:
                return None
            dt, _cols = self._packet_view(d)
            from ..odin.schema import flat_columns

            a = np.frombuffer(p, dt, count=1)
            cols = flat_columns(a)
            out = {}
            for k, v in cols.items():
                if k in _ODIN_HEADER:
                    continue
                out[k] = plain(v[0])
            return out
        if name.startswith("odin/event/") and len(p) >= 10:
            typ, eid, _res, ts, seq = _EVENT.unpack_from(p, 0)
            # opaque bytes (spec/odin.md): always hex, never guessed as text ("ab" would be ambiguous)
            return dict(zip(_EVENT_COLUMNS, (eid, ts, seq, bytes(p[10:]).hex())))
        return None


def _flatten(out: Dict[str, Any], key: str, v: Any) -> None:
    if isinstance(v, np.ndarray) and v.dtype.names:
        for n in v.dtype.names:
            _flatten(out, f"{key}.{n}", v[n])
        return
    if isinstance(v, np.void) and v.dtype.names:
        for n in v.dtype.names:
            _flatten(out, f"{key}.{n}", v[n])
        return
    if isinstance(v, dict):
        for n, x in v.items():
            _flatten(out, f"{key}.{n}", x)
        return
    out[key] = plain(v)
