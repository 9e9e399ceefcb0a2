"""OdinDB (``.odin`` JSON, as ``odin generate ... --target DB`` exports it) -> typed parameters.

The export is a tree ``root`` of ``parameter_group`` nodes holding ``parameter``, ``array``
(``element_count``) and ``vector`` (``max_element_count``) nodes, each with ``global_id``,
``global_name`` (dotted), ``element_type`` (``f32`` ... ``char``, ``bool``, or a custom type name)
and ``element_size``; plus ``types``: custom types ``{size, structure, count}`` where
``structure`` is a primitive name, a list of primitive names, or ``{field: primitive | type}``.

odin-stream 0.2.0 only flattens ``parameter`` nodes (arrays and vectors as exported are never
resolved), ignores padding and cannot decode ``char``.  Here every node kind is resolved; struct
offsets come from an explicit ``offset`` when the export has one, else packed when the fields
fill ``size`` exactly, else C natural alignment when that fills ``size``; anything else is a clear
:class:`~fastodin.errors.OdinError`.

>>> db = OdinDB.from_dict({"name": "x", "types": {}, "root": {"type": "parameter_group",
...     "global_id": 0, "global_name": "root", "name": "root", "parameters": [
...     {"type": "array", "global_id": 5, "global_name": "s.axis", "name": "axis",
...      "element_type": "i16", "element_size": 2, "element_count": 2}]}})
>>> db.entry(5, 4).resolved_dtype(), db.entry(5, 4).name
(dtype(('<i2', (2,))), 's.axis')
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import OdinError
from .schema import EntryDef
from .types import CHAR, CUSTOM, element_code, element_dtype, _natural_layout

__all__ = ["Parameter", "OdinDB", "load_odin_db"]


@dataclass(frozen=True)
class Parameter:
    """One leaf of the OdinDB tree.

    ``kind`` is ``parameter``, ``array`` or ``vector``; ``count`` is ``element_count`` (arrays),
    ``max_element_count`` (vectors) or 1; ``element`` the dtype of one element (None if unknown).

    >>> Parameter(1, "a.b", "parameter", "f32", 4, 1, np.dtype("<f4")).code
    10
    """
    global_id: int
    name: str
    kind: str
    element_type: str
    element_size: int
    count: int
    element: Optional[np.dtype]
    description: str = ""

    @property
    def code(self) -> Optional[int]:
        """ODIN element type code (CUSTOM for custom types)."""
        c = element_code(self.element_type)
        return c if c is not None else CUSTOM


def _prim(name: str) -> Optional[np.dtype]:
    c = element_code(name)
    if c is None or c == CUSTOM:
        return None
    return element_dtype(c) if c != CHAR else np.dtype("S1")


class OdinDB:
    """Parameters (by global id) and custom types (by name) of one OdinDB export.

    >>> db = load_odin_db("tests/vectors/odin/golden_od.odin.json")
    >>> db.params[0x02030000].name, db.params[0x02030000].count
    ('system.axis', 2)
    """

    def __init__(self, name: str, params: Dict[int, Parameter], types: Dict[str, np.dtype],
                 raw: Optional[dict] = None) -> None:
        self.name = name
        self.params = params
        self.types = types
        self.raw = raw
        self.by_name = {p.name: p for p in params.values()}

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "OdinDB":
        """Build from the parsed JSON object."""
        if not isinstance(d, dict) or "root" not in d:
            raise OdinError("OdinDB: not an .odin export (no 'root' object)")
        types: Dict[str, np.dtype] = {}
        raw_types = d.get("types") or {}
        if not isinstance(raw_types, dict):
            raise OdinError("OdinDB: 'types' must be an object")
        resolving: set = set()

        def type_dtype(tname: str) -> np.dtype:
            if tname in types:
                return types[tname]
            p = _prim(tname)
            if p is not None:
                return p
            if tname not in raw_types:
                raise OdinError("OdinDB: unknown element type %r" % tname)
            if tname in resolving:
                raise OdinError("OdinDB: type %r is recursive" % tname)
            resolving.add(tname)
            types[tname] = _typedef_dtype(tname, raw_types[tname], type_dtype)
            resolving.discard(tname)
            return types[tname]

        for tname in raw_types:
            type_dtype(tname)
        params: Dict[int, Parameter] = {}
        _walk(d["root"], params, type_dtype, "root")
        return cls(str(d.get("name", "")), params, types, d)

    @classmethod
    def load(cls, path: "str | os.PathLike") -> "OdinDB":
        """Load a ``.odin`` JSON file."""
        try:
            with open(path, "rb") as f:
                d = json.loads(f.read())
        except (OSError, ValueError) as ex:
            raise OdinError("OdinDB %s: cannot read: %s" % (path, ex)) from None
        return cls.from_dict(d)

    # -- resolution ------------------------------------------------------------------------
    def entry(self, global_id: int, size: int) -> EntryDef:
        """Typed :class:`EntryDef` for a set entry (id and size from a 0x01 IDENTIFIER).

        Unknown ids or sizes that do not fit the parameter's type stay raw, with a ``note``.
        """
        p = self.params.get(global_id)
        if p is None:
            return EntryDef(global_id, size, note="global id not in OdinDB")
        code = p.code
        dt = _param_entry_dtype(p, size)
        note = None
        if dt is None:
            note = "size %d does not fit %s %s[%d]" % (size, p.kind, p.element_type, p.count)
        return EntryDef(global_id, size, p.name, code, 0, p.element_type, dt, note)

    def __len__(self) -> int:
        return len(self.params)


def _param_entry_dtype(p: Parameter, size: int) -> Optional[np.dtype]:
    if p.element is None or size <= 0:
        return None
    el = p.element
    if p.code == CHAR:
        return np.dtype("S%d" % size)
    if el.itemsize == 0 or size % el.itemsize:
        return None
    n = size // el.itemsize
    if p.kind == "vector":
        if n > max(p.count, 1):
            return None
    elif p.kind == "array":
        if n != p.count:
            return None
    return el if n == 1 else np.dtype((el, (n,)))


def _walk(node: Any, params: Dict[int, Parameter], type_dtype, path: str) -> None:
    if not isinstance(node, dict):
        raise OdinError("OdinDB: node at %s is not an object" % path)
    kind = node.get("type")
    name = node.get("global_name") or node.get("name") or path
    if kind == "parameter_group" or (kind is None and "parameters" in node):
        for i, ch in enumerate(node.get("parameters") or []):
            _walk(ch, params, type_dtype, "%s.%s" % (name, i))
        return
    if kind not in ("parameter", "array", "vector"):
        raise OdinError("OdinDB: node %r has unknown type %r" % (name, kind))
    try:
        gid = int(node["global_id"])
        et = str(node["element_type"])
        esize = int(node.get("element_size") or 0)
    except (KeyError, TypeError, ValueError) as ex:
        raise OdinError("OdinDB: parameter %r lacks %s" % (name, ex)) from None
    if kind == "array":
        count = int(node.get("element_count") or 1)
    elif kind == "vector":
        count = int(node.get("max_element_count") or node.get("element_count") or 1)
    else:
        count = 1
    el: Optional[np.dtype]
    try:
        el = type_dtype(et)
    except OdinError:
        el = None
    if el is not None and element_code(et) == CHAR:
        el = np.dtype("S1")
    if el is not None and esize and el.itemsize != esize and element_code(et) not in (CHAR,):
        # element_size disagrees with the type: trust neither, keep raw
        el = None
    params[gid] = Parameter(gid, str(name), kind, et, esize, count, el, str(node.get("description", "")))


def _typedef_dtype(tname: str, td: Any, type_dtype) -> np.dtype:
    if not isinstance(td, dict):
        raise OdinError("OdinDB: type %r is not an object" % tname)
    size = td.get("size")
    structure = td.get("structure")
    count = td.get("count")
    if isinstance(structure, str):
        base = type_dtype(structure)
        n = int(count or 1)
        dt = base if n == 1 else np.dtype((base, (n,)))
        if size is not None and int(size) != dt.itemsize:
            raise OdinError("OdinDB: type %r: size %s but %s x %d is %d bytes" % (tname, size, structure, n, dt.itemsize))
        return dt
    fields: List[Tuple[str, np.dtype, Optional[int]]] = []
    if isinstance(structure, list):
        for i, s in enumerate(structure):
            fields.append(("%d" % i, type_dtype(str(s)), None))
    elif isinstance(structure, dict):
        for fname, s in structure.items():
            off = None
            if isinstance(s, str):
                dt = type_dtype(s)
            elif isinstance(s, dict):
                off = s.get("offset")
                if "structure" in s:
                    dt = _typedef_dtype("%s.%s" % (tname, fname), s, type_dtype)
                elif "type" in s and isinstance(s["type"], str) and s["type"] != "type_definition":
                    dt = type_dtype(s["type"])
                    if s.get("count"):
                        dt = np.dtype((dt, (int(s["count"]),)))
                else:
                    raise OdinError("OdinDB: type %r field %r has no structure" % (tname, fname))
            else:
                raise OdinError("OdinDB: type %r field %r: unsupported %r" % (tname, fname, type(s).__name__))
            fields.append((str(fname), dt, None if off is None else int(off)))
    else:
        raise OdinError("OdinDB: type %r has no usable 'structure'" % tname)
    names = [f[0] for f in fields]
    fmts = [f[1] for f in fields]
    packed_end = sum(d.itemsize for d in fmts)
    if any(f[2] is not None for f in fields):
        if not all(f[2] is not None for f in fields):
            raise OdinError("OdinDB: type %r gives offsets for some fields only" % tname)
        offs = [int(f[2]) for f in fields]  # type: ignore[arg-type]
        isz = int(size) if size is not None else max(o + d.itemsize for o, d in zip(offs, fmts))
    elif size is None or int(size) == packed_end:
        offs, o = [], 0
        for d in fmts:
            offs.append(o)
            o += d.itemsize
        isz = packed_end
    else:
        offs, end, al = _natural_layout([(n, d) for n, d in zip(names, fmts)])
        isz = int(size)
        aligned = (end + al - 1) // al * al
        if end > isz or aligned != isz:
            raise OdinError("OdinDB: type %r: size %d fits neither packed (%d) nor C-aligned (%d) layout"
                            % (tname, isz, packed_end, aligned))
    try:
        dt = np.dtype({"names": names, "formats": fmts, "offsets": offs, "itemsize": isz})
    except (ValueError, TypeError) as ex:
        raise OdinError("OdinDB: type %r: %s" % (tname, ex)) from None
    if count and int(count) > 1:
        dt = np.dtype((dt, (int(count),)))
    return dt


def load_odin_db(source: "str | os.PathLike | dict | OdinDB") -> OdinDB:
    """Load an OdinDB from a path, a parsed dict, or pass an :class:`OdinDB` through.

    >>> len(load_odin_db("tests/vectors/odin/golden_od.odin.json"))
    8
    """
    if isinstance(source, OdinDB):
        return source
    if isinstance(source, dict):
        return OdinDB.from_dict(source)
    return OdinDB.load(source)
