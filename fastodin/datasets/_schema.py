"""The columns of one channel as a table: how typed values become flat, named columns.

One rule for every kind of channel.  A structured value (a layout, an ODIN set's DATA packet)
becomes one column per scalar field, named as :func:`fastodin.odin.schema.flat_columns` names
them (``imu.accel.x``, ``axis[1]``); a field that is bytes, a fixed string, or an array of more
than :data:`MAX_FLAT` elements (an image, an audio block) stays one ``binary`` column; a layout's
variable strings are ``string`` columns.  A channel without a layout has one ``payload`` column
(``binary``).  Every table also has ``time`` (float64 seconds), which is not in :class:`Schema`.

>>> import numpy as np
>>> s = schema_of_dtype("layout", np.dtype([("acc", "<f8", (3,)), ("img", "u1", (16, 16)), ("ok", "?")]))
>>> [(c.name, c.type) for c in s.columns]
[('acc[0]', '<f8'), ('acc[1]', '<f8'), ('acc[2]', '<f8'), ('img', 'binary'), ('ok', '|b1')]
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["Column", "Schema", "schema_of_dtype", "raw_schema", "layout_schema", "odin_set_schema",
           "odin_set_id", "MAX_FLAT", "BINARY", "STRING", "ODIN_HEADER_SKIPPED", "select_columns"]

#: A field with more elements than this stays one binary column (an image is not 307,200 columns).
MAX_FLAT = 64
BINARY = "binary"
STRING = "string"
#: DATA packet header fields left out of an ODIN set's columns (constant per set); ``timestamp``
#: and ``sequence`` stay, as in :meth:`fastodin.odin.SetTable.columns`.
ODIN_HEADER_SKIPPED = ("type", "set_id", "reserved")

_SET_RE = re.compile(r"^odin/set/0x([0-9a-fA-F]{4})$")


def odin_set_id(channel: str) -> Optional[int]:
    """The set id of an ODIN set's DATA channel (``odin/set/0xSSSS``, spec/odin-mapping.md), else None.

    >>> odin_set_id("odin/set/0x98A8"), odin_set_id("odin/set/0x98A8/identifier"), odin_set_id("imu")
    (39080, None, None)
    """
    from ..odin.mapping import set_channel

    m = _SET_RE.match(channel)
    if m is None:
        return None
    sid = int(m.group(1), 16)
    return sid if set_channel(sid).lower() == channel.lower() else None


class Column(NamedTuple):
    """One output column: ``name``, ``type`` (a numpy dtype string such as ``'<f8'``, or
    ``'binary'``, ``'string'``) and ``path`` (field names and sub-array indices leading to it)."""

    name: str
    type: str
    path: Tuple[Any, ...]


class Schema:
    """The columns of one channel in one file, and how its values are typed: ``kind``
    (``layout``, ``odin-set``, ``raw``, ``metadata``), ``columns``, ``dtype`` (the structured dtype
    the values have: the layout's fixed part or the ODIN DATA packet; None for raw channels),
    ``variable`` (names of a layout's variable fields, taken from the unpacked rows).

    Two files can be one table when their :meth:`signature` (names and types) is equal.
    """

    __slots__ = ("kind", "columns", "dtype", "variable")

    def __init__(self, kind: str, columns: Sequence[Column], dtype: Optional[np.dtype] = None,
                 variable: Sequence[Tuple[str, str]] = ()) -> None:
        self.kind = kind
        self.columns = tuple(columns)
        self.dtype = dtype
        self.variable = tuple(variable)

    def __getstate__(self) -> Tuple[Any, ...]:
        return (self.kind, self.columns, self.dtype, self.variable)

    def __setstate__(self, st: Tuple[Any, ...]) -> None:
        self.kind, self.columns, self.dtype, self.variable = st

    @property
    def names(self) -> List[str]:
        return [c.name for c in self.columns]

    def signature(self) -> Tuple[Tuple[str, str], ...]:
        return tuple((c.name, c.type) for c in self.columns)

    def text(self) -> str:
        """Columns as ``name:type`` text (error messages)."""
        return ", ".join(f"{n}:{t}" for n, t in self.signature())

    def __repr__(self) -> str:
        return f"Schema({self.kind!r}, [{self.text()}])"

    # ---- values -> columns ------------------------------------------------------------------
    def columns_of(self, values: Any, names: Optional[Sequence[str]] = None, where: str = "") -> Dict[str, Any]:
        """The columns ``names`` (None: all) of ``values`` as ``Archive.read`` returns them: a
        numeric column is a 1-d array (a view where it can be), a binary one an ``(n, size)``
        uint8 array or an object array of bytes, a string one an object array of str."""
        want = self.columns if names is None else [c for c in self.columns if c.name in set(names)]
        if self.kind in ("raw", "metadata"):
            return {c.name: values for c in want}
        top = self._structured(values, where)
        return {c.name: _extract(top, c) for c in want}

    def _structured(self, values: Any, where: str) -> Any:
        """``values`` as something whose top-level fields index like a structured array: the
        array itself, or a dict of top-level field -> array."""
        if isinstance(values, np.ndarray) and values.dtype.names is not None:
            return values                         # typed by the reader already
        dt = self.dtype
        assert dt is not None
        if not isinstance(values, np.ndarray):
            raise DataError(f"{where}: unexpected values of type {type(values).__name__}")
        if self.kind == "odin-set" and values.dtype == np.uint8 and values.ndim == 2:
            if values.shape[1] != dt.itemsize:
                raise DataError(f"{where}: DATA packets of {values.shape[1]} bytes, the set's definition says "
                                f"{dt.itemsize}")
            return np.ascontiguousarray(values).reshape(-1).view(dt) if values.size else np.empty(0, dt)
        if self.kind == "layout" and values.dtype == object:
            return _rows_to_columns(values, dt, self.variable)
        if self.kind == "layout" and dt.names:
            return {dt.names[0]: values}          # a plain array given to write_many ("value")
        raise DataError(f"{where}: DATA packets of different sizes (does the set's definition change inside "
                        f"the file?)")


def _extract(top: Any, c: Column) -> Any:
    v = top[c.path[0]]
    for p in c.path[1:]:
        v = v[p] if isinstance(p, str) else v[(slice(None),) + p]
    if c.type == BINARY and v.dtype != object:
        n = v.shape[0]
        v = np.ascontiguousarray(v)
        return v.view(np.uint8).reshape(n, -1) if v.dtype.itemsize else np.zeros((n, 0), np.uint8)
    return v


def _rows_to_columns(rows: np.ndarray, dt: np.dtype, variable: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """The unpacked rows of a layout with variable fields (dicts) as top-level field -> array."""
    n = rows.shape[0]
    fixed = np.zeros(n, dt)
    for name in dt.names or ():
        fixed[name] = [r[name] for r in rows] if n else []
    out: Dict[str, Any] = {name: fixed[name] for name in dt.names or ()}
    for name, typ in variable:
        col = np.empty(n, object)
        if typ == STRING:
            col[:] = [r[name] for r in rows]
        else:
            col[:] = [r[name].tobytes() if isinstance(r[name], np.ndarray) else bytes(r[name]) for r in rows]
        out[name] = col
    return out


def _flatten(dt: np.dtype, prefix: str, path: Tuple[Any, ...], out: List[Column], skip: Sequence[str] = ()) -> None:
    for name in dt.names or ():
        if name in skip:
            continue
        sub = dt.fields[name][0]  # type: ignore[index]
        _field(sub, f"{prefix}.{name}" if prefix else name, path + (name,), out)


def _field(sub: np.dtype, name: str, path: Tuple[Any, ...], out: List[Column]) -> None:
    base, shape = sub.base, sub.shape
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if base.kind in "VSUOc" and base.names is None or size > MAX_FLAT:
        out.append(Column(name, BINARY, path))
        return
    if shape:
        for idx in np.ndindex(*shape):
            label = name + "".join(f"[{k}]" for k in idx)
            if base.names is not None:
                _flatten(base, label, path + (idx,), out)
            else:
                out.append(Column(label, base.str, path + (idx,)))
        return
    if base.names is not None:
        _flatten(base, name, path, out)
        return
    out.append(Column(name, base.str, path))


def schema_of_dtype(kind: str, dt: np.dtype, skip: Sequence[str] = (),
                    variable: Sequence[Tuple[str, str]] = ()) -> Schema:
    """The :class:`Schema` of values of structured dtype ``dt`` (fields in ``skip`` left out)."""
    cols: List[Column] = []
    _flatten(dt, "", (), cols, skip)
    for name, typ in variable:
        cols.append(Column(name, typ, (name,)))
    seen = set()
    for c in cols:
        if c.name in seen:
            raise DataError(f"two fields flatten to the column name {c.name!r}")
        seen.add(c.name)
    return Schema(kind, cols, dt, variable)


def raw_schema(kind: str = "raw") -> Schema:
    """A channel without a layout: one ``payload`` binary column."""
    return Schema(kind, [Column("payload", BINARY, ())])


def layout_schema(layout_json: Dict[str, Any]) -> Schema:
    """The schema of a channel with a layout (``Layout.to_json()``, as the index stores it)."""
    from ..archive.layout import Layout

    lay = Layout.from_json(layout_json)
    variable = [(f["name"], STRING if f["kind"] == "string" else BINARY) for f in lay.variable]
    return schema_of_dtype("layout", lay.dtype, variable=variable)


def odin_set_schema(packet_dtype: np.dtype) -> Schema:
    """The schema of an ODIN set's DATA channel typed by its definition's packet dtype."""
    return schema_of_dtype("odin-set", packet_dtype, skip=ODIN_HEADER_SKIPPED)


def select_columns(schema: Schema, fields: Optional[Sequence[str]]) -> List[str]:
    """The column names ``fields`` selects: a column name, or a field that several columns come
    from (``acc`` -> ``acc[0]``, ``acc[1]``, ...; ``imu.accel`` -> ``imu.accel.x``, ...); None: all.
    ``time`` is always there and may be named.

    >>> s = schema_of_dtype("layout", np.dtype([("acc", "<f8", (2,)), ("t", "<f4")]))
    >>> select_columns(s, ["acc"]), select_columns(s, ["time", "t"])
    (['acc[0]', 'acc[1]'], ['t'])
    """
    names = schema.names
    if fields is None:
        return names
    if isinstance(fields, str):
        fields = [fields]
    out: List[str] = []
    for f in fields:
        if f == "time":
            continue
        hit = [n for n in names if n == f or n.startswith(f + ".") or n.startswith(f + "[")]
        if not hit:
            raise UsageError(f"no column {f!r}; columns: {', '.join(['time'] + names)}")
        out.extend(h for h in hit if h not in out)
    return [n for n in names if n in out]
