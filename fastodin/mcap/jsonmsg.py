"""Typed columns as JSON messages and JSON Schemas, in the form Foxglove reads without plugins.

:func:`fields_of` turns a typed array (a structured array from ``Archive.read``, ODIN set rows, a
plain ``(n, k)`` array) into named columns; :func:`json_schema` describes them (``"type": "object"``,
every field named, the subset of JSON Schema Foxglove's jsonschema parser understands:
``boolean``, ``integer``, ``number``, ``string`` (``contentEncoding: base64`` for bytes),
``object``, one-level ``array``); :func:`encode` writes one JSON object per row, vectorised: numeric
columns go through orjson's numpy serializer once per column and the rows are assembled with
one gather (spec/mcap.md §3 has the value rules).

Rules: dotted field names nest (``imu.accel`` → ``{"imu": {"accel": …}}``) unless that would
clash; arrays of any shape become flat row-major arrays; ``S`` bytes become a string (trailing
NULs dropped, one Latin-1 character per byte); opaque bytes (``V``) base64; NaN and ±Inf (which
JSON cannot hold) are left out of their message (the field is not ``required``), a float array
holding one is left out whole -- both counted in ``Tokens.omitted``.

>>> rows = np.zeros(2, [("t", "<u4"), ("acc", "<f4", (3,)), ("ok", "?")]); rows["t"] = [1, 2]
>>> rows["acc"][1] = [0.5, float("nan"), 1]
>>> tok = encode(fields_of(rows))
>>> [tok.message(k) for k in range(2)], tok.omitted
([b'{"t":1,"acc":[0.0,0.0,0.0],"ok":false}', b'{"t":2,"ok":false}'], 1)
>>> json_schema(fields_of(rows), "x")["properties"]["acc"]["items"]
{'type': 'number'}
"""
from __future__ import annotations

import base64
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import orjson

from .writer import ragged_rows

__all__ = ["Tokens", "Obj", "ObjectColumn", "fields_of", "columns_obj", "json_schema", "encode", "plain_value"]

_OPT = orjson.OPT_SERIALIZE_NUMPY


class Tokens:
    """``n`` JSON values: value k is ``buf[starts[k]:starts[k] + lens[k]]``; ``omitted``: non-finite
    values left out."""

    __slots__ = ("buf", "starts", "lens", "omitted", "present")

    def __init__(self, buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, omitted: int = 0,
                 present: Optional[np.ndarray] = None) -> None:
        self.buf = buf
        self.starts = starts
        self.lens = lens
        self.omitted = omitted
        self.present = present      # rows that hold a value (None: all)

    def __len__(self) -> int:
        return int(self.lens.shape[0])

    def message(self, k: int) -> bytes:
        s = int(self.starts[k])
        return self.buf[s:s + int(self.lens[k])].tobytes()


class ObjectColumn:
    """A column of Python values (variable-length layout fields) with its JSON Schema."""

    __slots__ = ("values", "schema")

    def __init__(self, values: List[Any], schema: Dict[str, Any]) -> None:
        self.values = values
        self.schema = schema


Node = Union[np.ndarray, "Obj", ObjectColumn]


class Obj:
    """An object: ordered ``(key, column or Obj)`` fields."""

    __slots__ = ("fields",)

    def __init__(self, fields: List[Tuple[str, Node]]) -> None:
        self.fields = fields


def _nest(items: List[Tuple[str, Node]]) -> Obj:
    """Nest dotted keys into sub-objects when no key is both a value and a prefix."""
    keys = {k for k, _ in items}
    tree: Dict[str, Any] = {}
    order: List[str] = []
    for k, v in items:
        parts = k.split(".")
        clash = len(parts) > 1 and any(".".join(parts[:i]) in keys for i in range(1, len(parts)))
        if len(parts) == 1 or clash or "" in parts:
            if k not in tree:
                order.append(k)
            tree[k] = v
            continue
        head = parts[0]
        if head not in tree:
            order.append(head)
            tree[head] = []
        tree[head].append((".".join(parts[1:]), v))
    return Obj([(k, _nest(tree[k]) if isinstance(tree[k], list) else tree[k]) for k in order])


def _struct(arr: np.ndarray) -> Obj:
    return columns_obj([(name, arr[name]) for name in arr.dtype.names or ()])


def columns_obj(items: List[Tuple[str, Any]]) -> Obj:
    """An object of named columns (a struct column becomes a nested object; dotted names nest)."""
    return _nest([(k, _struct(c) if isinstance(c, np.ndarray) and c.dtype.names is not None and c.ndim == 1 else c)
                  for k, c in items])


def fields_of(values: Any, name: str = "value") -> Obj:
    """The object tree of a typed column: fields of a structured array, else one field ``name``."""
    if isinstance(values, Obj):
        return values
    arr = np.asarray(values)
    if arr.dtype.names is not None:
        return _struct(arr.reshape(-1))
    return Obj([(name, arr)])


# ---- schema ----------------------------------------------------------------------------------------

def _leaf_schema(dt: np.dtype) -> Dict[str, Any]:
    k = dt.kind
    if k == "b":
        return {"type": "boolean"}
    if k in "iumM":
        return {"type": "integer"}
    if k == "f":
        return {"type": "number"}
    if k in "SU":
        return {"type": "string"}
    if k == "V":
        return {"type": "string", "contentEncoding": "base64"}
    raise TypeError(f"no JSON form for dtype {dt}")


def _node_schema(node: Node) -> Tuple[Dict[str, Any], bool]:
    """(schema, always present)."""
    if isinstance(node, Obj):
        return _obj_schema(node), True
    if isinstance(node, ObjectColumn):
        return dict(node.schema), False
    dt = node.dtype
    shape = node.shape[1:]
    if dt.names is not None:       # an array of structs (rare): JSON objects in an array
        return {"type": "array", "items": _obj_schema(_struct(np.zeros(1, dt)))}, True
    if dt.kind == "c":
        shape = shape + (2,)
        dt = np.dtype(f"f{dt.itemsize // 2}")
    if not shape:
        return _leaf_schema(dt), dt.kind != "f"
    m = int(np.prod(shape))
    if dt.kind == "V":
        return {"type": "string", "contentEncoding": "base64",
                "description": f"{m} items of {dt.itemsize} bytes, shape {list(shape)}"}, True
    s: Dict[str, Any] = {"type": "array", "items": _leaf_schema(dt), "minItems": m, "maxItems": m}
    if len(shape) > 1:
        s["description"] = f"shape {list(shape)}, row-major"
    return s, dt.kind != "f"


def _obj_schema(obj: Obj) -> Dict[str, Any]:
    props: Dict[str, Any] = {}
    req: List[str] = []
    for k, v in obj.fields:
        props[k], always = _node_schema(v)
        if always:
            req.append(k)
    s: Dict[str, Any] = {"type": "object", "properties": props}
    if req:
        s["required"] = req
    return s


def json_schema(obj: Obj, title: str) -> Dict[str, Any]:
    """The JSON Schema of the messages :func:`encode` writes for ``obj``."""
    s = _obj_schema(obj)
    return {"title": title, **s}


# ---- values ---------------------------------------------------------------------------------------------

def _toks_from_list(items: List[bytes], omitted: int = 0) -> Tokens:
    lens = np.fromiter(map(len, items), np.int64, len(items))
    starts = np.cumsum(lens) - lens
    return Tokens(np.frombuffer(b"".join(items), np.uint8), starts, lens, omitted)


def _numeric_1d(col: np.ndarray) -> Tokens:
    b = orjson.dumps(np.ascontiguousarray(col), option=_OPT)
    a = np.frombuffer(b, np.uint8)
    n = col.shape[0]
    if n == 0:
        return Tokens(a, np.zeros(0, np.int64), np.zeros(0, np.int64))
    commas = np.flatnonzero(a == 44)
    starts = np.empty(n, np.int64)
    starts[0] = 1
    starts[1:] = commas + 1
    ends = np.empty(n, np.int64)
    ends[:-1] = commas
    ends[-1] = a.shape[0] - 1
    return Tokens(a, starts, ends - starts)


def _numeric_2d(col: np.ndarray) -> Tokens:
    b = orjson.dumps(np.ascontiguousarray(col), option=_OPT)
    a = np.frombuffer(b, np.uint8)
    n = col.shape[0]
    if n == 0:
        return Tokens(a, np.zeros(0, np.int64), np.zeros(0, np.int64))
    opens = np.flatnonzero(a == 91)[1:]
    closes = np.flatnonzero(a == 93)[:-1]
    return Tokens(a, opens, closes + 1 - opens)


def _b64(col: np.ndarray) -> Tokens:
    """Fixed-size byte items as quoted base64 strings, vectorised (one encode for the column)."""
    n = col.shape[0]
    s = col.dtype.itemsize * int(np.prod(col.shape[1:], dtype=np.int64))
    raw = np.ascontiguousarray(col).view(np.uint8).reshape(n, s)
    s3 = -(-s // 3) * 3
    pad = np.zeros((n, s3), np.uint8)
    pad[:, :s] = raw
    enc = np.frombuffer(base64.b64encode(pad.tobytes()), np.uint8).reshape(n, s3 // 3 * 4)
    w = enc.shape[1]
    out = np.empty((n, w + 2), np.uint8)
    out[:, 0] = out[:, -1] = 34
    out[:, 1:-1] = enc
    if s % 3:
        out[:, w + 1 - (3 - s % 3):w + 1] = 61      # '=' padding of the item's last group
    return Tokens(out.reshape(-1), np.arange(n, dtype=np.int64) * (w + 2), np.full(n, w + 2, np.int64))


def _text(v: Any) -> str:
    return bytes(v).rstrip(b"\0").decode("latin-1")


def plain_value(v: Any) -> Any:
    """A JSON-ready Python value: bytes base64, arrays flat lists, numpy scalars Python; None for
    a non-finite float (the caller leaves it out)."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "V" or v.dtype.kind == "S":
            return base64.b64encode(v.tobytes()).decode("ascii")
        return v.reshape(-1).tolist()
    if isinstance(v, np.generic):
        if v.dtype.kind == "S":
            return _text(v)
        if v.dtype.kind == "V":
            return base64.b64encode(v.tobytes()).decode("ascii")
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def _leaf(col: Any) -> Tokens:
    """JSON tokens of one column (``present``: the rows that hold a value)."""
    if isinstance(col, ObjectColumn):
        vals = [plain_value(v) for v in col.values]
        present = np.array([v is not None for v in vals], bool)
        if isinstance(col.values, list) and col.values and isinstance(col.values[0], np.ndarray) and \
                col.values[0].dtype.kind == "f":
            bad = [k for k, x in enumerate(col.values) if not np.isfinite(x).all()]
            present[bad] = False
        toks = _toks_from_list([orjson.dumps(v if p else 0) for v, p in zip(vals, present.tolist())])
        toks.present = present
        return toks
    dt = col.dtype
    n = col.shape[0]
    if dt.names is not None:   # array of structs: one object per item, in a JSON array
        flat = col.reshape(n, -1)
        inner = encode(_struct(flat.reshape(-1)))
        m = flat.shape[1]
        rows = [b"[" + b",".join(inner.message(k * m + j) for j in range(m)) + b"]" for k in range(n)]
        t = _toks_from_list(rows, inner.omitted)
        return t
    if dt.kind == "c":
        col = col.view(np.dtype(f"f{dt.itemsize // 2}")).reshape(col.shape + (2,)) if col.ndim == 1 else \
            np.ascontiguousarray(col).view(np.dtype(f"f{dt.itemsize // 2}")).reshape(col.shape[:-1] + (-1,))
        dt = col.dtype
    if dt.kind == "V" and dt.names is None:
        return _b64(col)
    if dt.kind in "SU":
        if col.ndim == 1:
            items = [orjson.dumps(_text(x) if dt.kind == "S" else str(x)) for x in col.tolist()]
        else:
            flat = col.reshape(n, -1)
            items = [orjson.dumps([_text(x) if dt.kind == "S" else str(x) for x in row]) for row in flat.tolist()]
        return _toks_from_list(items)
    if dt.kind in "mM":
        col = col.astype(np.int64)
        dt = col.dtype
    if dt.kind == "f" and dt.itemsize == 2:
        col = col.astype(np.float32)
        dt = col.dtype
    if not dt.isnative:
        col = col.astype(dt.newbyteorder("="))
    if col.ndim == 1:
        toks = _numeric_1d(col)
        if dt.kind == "f":
            present = np.isfinite(col)
            if not present.all():
                toks.present = present
                toks.omitted = int(n - present.sum())
        return toks
    flat = col.reshape(n, -1)
    toks = _numeric_2d(flat)
    if dt.kind == "f" and flat.shape[1]:
        present = np.isfinite(flat).all(axis=1)
        if not present.all():
            toks.present = present
            toks.omitted = int(n - present.sum())
    return toks


def encode(obj: Obj, n: Optional[int] = None) -> Tokens:
    """One JSON object per row of ``obj`` (every column must have the same length)."""
    parts: List[Tuple[bytes, Tokens, Optional[np.ndarray]]] = []
    omitted = 0
    for k, node in obj.fields:
        t = encode(node) if isinstance(node, Obj) else _leaf(node)
        omitted += t.omitted
        parts.append((b"," + orjson.dumps(k) + b":", t, t.present))
        if n is None:
            n = len(t)
    if n is None:
        n = 0
    rows: List[Any] = [("lit", b"{", None)]
    present = np.ones((n, len(parts)), bool)
    for j, (_lit, _t, pm) in enumerate(parts):
        if pm is not None:
            present[:, j] = pm
    # the first field present in a row has no leading comma
    first = np.argmax(present, axis=1)
    for j, (lit, t, pm) in enumerate(parts):
        keep = np.where(first == j, 1, 0) if pm is None else np.where(pm, np.where(first == j, 1, 0), len(lit))
        rows.append(("lit", lit, keep))
        rows.append(("buf", t.buf, t.starts, t.lens if pm is None else np.where(pm, t.lens, 0)))
    rows.append(("lit", b"}", None))
    out, lens = ragged_rows(rows, n)
    return Tokens(out, np.cumsum(lens) - lens, lens, omitted)
