"""Which typed fields a channel has, and their values in a chunk of its payloads.

Field names are those of :meth:`fastodin.Archive.read`'s typed columns, flattened by
:func:`fastodin.odin.schema.flat_columns` (the one flattening rule): a layout's fields (``acc[0]``
for an array, ``pose.x`` for a nested struct; ``value`` for a plain array given to
``write_many``), and for an ODIN set channel (``odin/set/0xSSSS``) the columns
:func:`fastodin.odin.decode` gives it (``imu.accel.x``, ``system.axis[1]``, ``sequence``; the
time columns ``timestamp``/``ticks``/``time`` are left out: the plot's time is the record's time).
Only numeric fields (bool, integers, floats) are plotted; a channel without any is *raw*:
listed, not plotted.

ODIN typed values come through :class:`OdinSetFields`: the set's definition as
:func:`fastodin.odin.decode.decode_archive_set` (what ``Archive.read`` uses for ODIN sets) learns
it, each frame's packets viewed with that definition's packet dtype, columns by
:class:`~fastodin.odin.table.SetTable` -- the values ``Archive.read`` and ``decode`` give, read
frame by frame.

>>> import numpy as np
>>> from fastodin.archive.layout import Layout
>>> f = LayoutFields(Layout().vector3d("acc").scalar("temp", "float32"))
>>> [(x.name, x.dtype) for x in f.fields]
[('acc[0]', '<f8'), ('acc[1]', '<f8'), ('acc[2]', '<f8'), ('temp', '<f4')]
>>> rows = np.frombuffer(Layout().vector3d("acc").scalar("temp", "float32").pack((1, 2, 3), 4.5), np.uint8)
>>> vals, missing = f.values(rows.reshape(1, -1)); vals["temp"].tolist(), missing
([4.5], None)
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..archive.layout import Layout
from ..odin.schema import flat_columns

__all__ = ["Field", "ChannelFields", "LayoutFields", "OdinSetFields", "channel_fields", "stat_dtype", "kind_of"]

#: ODIN columns that are times (the plot's time axis is the record time).
_ODIN_TIME_COLUMNS = ("timestamp", "ticks", "time")


def stat_dtype(dt: np.dtype) -> Optional[np.dtype]:
    """The dtype min/max of a field are kept in (exact for every value of ``dt``); None: not plotted.

    >>> stat_dtype(np.dtype("<f4")), stat_dtype(np.dtype("<u2")), stat_dtype(np.dtype("S4"))
    (dtype('float64'), dtype('int64'), None)
    """
    k = dt.kind
    if k == "f" and dt.itemsize <= 8:
        return np.dtype(np.float64)
    if k in "bi" or (k == "u" and dt.itemsize < 8):
        return np.dtype(np.int64)
    if k == "u":
        return np.dtype(np.uint64)
    return None


def kind_of(dt: np.dtype) -> str:
    """``"float"`` (NaN possible) or ``"int"``."""
    return "float" if np.dtype(dt).kind == "f" else "int"


class Field:
    """One plottable field: ``name``, numpy ``dtype`` string, ``stat`` (dtype of its min/max).

    >>> Field("x", np.dtype("<f4")).as_json()
    {'name': 'x', 'dtype': '<f4'}
    """

    __slots__ = ("name", "dtype", "stat")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name = name
        self.dtype = np.dtype(dtype).str
        stat = stat_dtype(np.dtype(dtype))
        assert stat is not None
        self.stat = stat

    def as_json(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Field) and (self.name, self.dtype) == (other.name, other.dtype)

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.dtype!r})"


def _numeric(cols: Dict[str, np.ndarray]) -> List[Field]:
    return [Field(k, v.dtype) for k, v in cols.items() if stat_dtype(v.dtype) is not None]


class ChannelFields:
    """The typed fields of one channel and how to get them from payload rows."""

    kind = "raw"
    fields: List[Field] = []

    def values(self, rows: Any) -> Tuple[Dict[str, np.ndarray], Optional[np.ndarray]]:
        """``({field: 1-d array}, missing)`` for payload ``rows`` (an ``(n, size)`` uint8 array or
        an object array of bytes, as :meth:`fastodin.Archive.chunks` gives them).  ``missing`` is
        None, or a bool mask of the records whose payload does not fit the fields (their values
        are meaningless; they count as NaN)."""
        return {}, None

    def same(self, other: "ChannelFields") -> bool:
        return type(self) is type(other) and self.fields == other.fields


def _structured(rows: Any, dt: np.dtype) -> Optional[np.ndarray]:
    """``rows`` viewed as a 1-d array of ``dt`` (no copy when possible); None when the payload
    size is not the dtype's."""
    if isinstance(rows, np.ndarray) and rows.dtype == np.uint8 and rows.ndim == 2:
        if rows.shape[1] != dt.itemsize or dt.itemsize == 0:
            return None
        if rows.strides[1] != 1:
            rows = np.ascontiguousarray(rows)
        return rows.view(dt)[:, 0]
    return None


def _with_missing(rows: Any, dt: np.dtype) -> np.ndarray:
    """Object rows of mixed sizes: those of the dtype's size decoded, the others zero (marked by
    the caller)."""
    out = np.zeros(len(rows), dt)
    for k, p in enumerate(rows):
        if len(p) == dt.itemsize:
            out[k] = np.frombuffer(p, dt)[0]
    return out


class _StructFields(ChannelFields):
    """Fields of a fixed structured dtype at the start of every payload."""

    def __init__(self, dt: np.dtype) -> None:
        self.dtype = dt
        self.fields = _numeric(self._flat(np.zeros(0, dt)))

    def _flat(self, arr: np.ndarray) -> Dict[str, np.ndarray]:
        return flat_columns(arr)

    def values(self, rows: Any) -> Tuple[Dict[str, np.ndarray], Optional[np.ndarray]]:
        arr = _structured(rows, self.dtype)
        bad: Optional[np.ndarray] = None
        if arr is None:
            n = rows.shape[0] if isinstance(rows, np.ndarray) else len(rows)
            if isinstance(rows, np.ndarray) and rows.dtype != object:
                arr, bad = np.zeros(n, self.dtype), np.ones(n, bool)
            else:
                arr = _with_missing(rows, self.dtype)
                bad = np.fromiter((len(p) != self.dtype.itemsize for p in rows), bool, n)
                if not bad.any():
                    bad = None
        cols = self._flat(arr)
        return {f.name: cols[f.name] for f in self.fields}, bad


class LayoutFields(_StructFields):
    """A fixed :class:`~fastodin.archive.layout.Layout` (streams, ``define_channel``, ``write_many``)."""

    kind = "layout"

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout.dtype)


class OdinSetFields(_StructFields):
    """An ODIN set channel: its DATA packets as :func:`fastodin.odin.decode` types them.

    ``definition``: the :class:`~fastodin.odin.schema.SetDef` decode uses for the set's first
    DATA packet; packets of another size (a definition that changed) are missing values (NaN).
    """

    kind = "odin-set"

    def __init__(self, definition: Any) -> None:
        self.definition = definition
        super().__init__(definition.packet_dtype())

    def _flat(self, arr: np.ndarray) -> Dict[str, np.ndarray]:
        from ..odin.table import SetTable

        cols = SetTable(self.definition, arr).columns(expand=True)
        return {k: v for k, v in cols.items() if k not in _ODIN_TIME_COLUMNS}

    def same(self, other: ChannelFields) -> bool:
        return super().same(other) and isinstance(other, OdinSetFields) and \
            other.definition.packet_dtype() == self.definition.packet_dtype()


class RawFields(ChannelFields):
    """No typed field: listed, not plotted (opaque payloads, ODIN identifiers, events...)."""

    def __init__(self, kind: str = "raw") -> None:
        self.kind = kind
        self.fields = []


def _odin_definition(ar: Any, channel: str) -> Any:
    """The SetDef :func:`fastodin.odin.decode` uses for the first DATA packet of ``channel``
    (:func:`fastodin.odin.decode.decode_archive_set` over the records up to its time: only the
    first frames are read)."""
    from ..odin.decode import decode_archive_set

    first = next(iter(ar.records(channels=channel)), None)
    if first is None:
        return None
    upto = math.nextafter(first.time, math.inf) if math.isfinite(first.time) else None
    _t, tab = decode_archive_set(ar, int(channel.rsplit("0x", 1)[1], 16), end=upto)
    return None if tab is None else tab.definition


def channel_fields(ar: Any, name: str) -> ChannelFields:
    """The fields of channel ``name`` of an open archive.

    >>> import os, tempfile, numpy as np, fastodin
    >>> path = os.path.join(tempfile.mkdtemp(), "f.fastpack.zst")
    >>> with fastodin.Writer(path) as w:
    ...     w.write_many([0.0, 1.0], "p", np.zeros((2, 2)))
    ...     w.write(0.0, "raw", b"xy")
    >>> with fastodin.open(path) as ar:
    ...     [f.name for f in channel_fields(ar, "p").fields], channel_fields(ar, "raw").kind
    (['value[0]', 'value[1]'], 'raw')
    """
    lay = ar.layouts.get(name)
    if lay is not None and lay.fixed and lay.dtype.itemsize:
        lf = LayoutFields(lay)
        return lf if lf.fields else RawFields()
    if name.startswith("odin/event/"):
        return RawFields("odin-event")
    if name.startswith("odin/set/0x") and "/" not in name[len("odin/set/"):]:
        try:
            defn = _odin_definition(ar, name)
        except (ValueError, KeyError, IndexError):   # a damaged set: listed, not plotted
            defn = None
        if defn is not None:
            got = OdinSetFields(defn)
            if got.fields:
                return got
        return RawFields("odin-set")
    return RawFields()
