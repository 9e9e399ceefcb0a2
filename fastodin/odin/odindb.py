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
import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import OdinError
from .schema import EntryDef
from .types import CHAR, CUSTOM, element_code, element_dtype, _natural_layout

__all__ = ["Parameter", "OdinDB", "load_odin_db", "MAX_DEPTH", "MAX_SIZE"]


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
    def from_dict(cls, d: Dict[str, Any], where: str = "") -> "OdinDB":
        """Build from the parsed JSON object (``where``: the file, for error messages).

        Anything the export does not say properly (a count that is not a non-negative integer
        in range, an id that is not a u32, a node that is not an object, nesting deeper than
        :data:`MAX_DEPTH`) is an :class:`~fastodin.errors.OdinError` naming the place and field.

        >>> OdinDB.from_dict({"root": {"parameters": [{"type": "array", "global_id": 1,
        ...     "element_type": "u8", "element_count": "abc"}]}})
        Traceback (most recent call last):
        ...
        fastodin.errors.OdinError: OdinDB: root.parameters[0]: element_count: 'abc' is not an integer
        """
        return _Loader(where).load(d, cls)

    @classmethod
    def load(cls, path: "str | os.PathLike") -> "OdinDB":
        """Load a ``.odin`` JSON file."""
        try:
            with open(path, "rb") as f:
                d = json.loads(f.read())
        except RecursionError:
            raise OdinError(f"OdinDB {os.fspath(path)}: cannot read: JSON nested too deeply") from None
        except (OSError, ValueError) as ex:
            raise OdinError(f"OdinDB {os.fspath(path)}: cannot read: {ex}") from None
        return cls.from_dict(d, os.fspath(path))

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


#: Deepest nesting of parameter groups, or of types inside types, an OdinDB may have (exports: < 10).
MAX_DEPTH = 64
#: Largest size, count or offset in an OdinDB: an entry and a type are at most 65,535 bytes on the wire.
MAX_SIZE = 0xFFFF
_MAX_ID = 0xFFFFFFFF


def _show(v: Any) -> str:
    """A short repr for messages (a crafted value may be huge or deeply nested)."""
    if isinstance(v, (dict, list)):
        return "an object" if isinstance(v, dict) else "a list"
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


class _Loader:
    """One OdinDB load: the checks of every field, errors naming the file, the place and the field."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.raw_types: Dict[Any, Any] = {}
        self.types: Dict[str, np.dtype] = {}
        self.resolving: List[str] = []

    def err(self, loc: str, msg: str) -> OdinError:
        return OdinError(f"OdinDB{' ' + self.where if self.where else ''}: {loc}: {msg}")

    def int_field(self, node: Dict[str, Any], key: str, loc: str, lo: int, hi: int,
                  default: Optional[int] = None) -> int:
        """``node[key]`` as an int in lo..hi (integral floats and decimal strings accepted);
        missing or null gives ``default`` (an error when there is none)."""
        v = node.get(key)
        if v is None:
            if default is None:
                raise self.err(loc, f"{key}: missing")
            return default
        n: Optional[int] = None  # bools are not counts
        if isinstance(v, int) and not isinstance(v, bool):
            n = v
        elif (isinstance(v, float) and math.isfinite(v) and v.is_integer()) or (
                isinstance(v, str) and v.strip().isdigit() and len(v) < 20):
            n = int(v)
        if n is None:
            raise self.err(loc, f"{key}: {_show(v)} is not an integer")
        if not lo <= n <= hi:
            raise self.err(loc, f"{key}: {_show(v)} is out of range {lo}..{hi}")
        return n

    def str_field(self, node: Dict[str, Any], key: str, loc: str, default: Optional[str] = None) -> str:
        v = node.get(key)
        if v is None and default is not None:
            return default
        if not isinstance(v, str):
            raise self.err(loc, f"{key}: {'missing' if v is None else _show(v) + ' is not a string'}")
        return v

    def load(self, d: Any, cls: Any) -> OdinDB:
        if not isinstance(d, dict) or "root" not in d:
            raise self.err("top level", "not an .odin export (no 'root' object)")
        raw_types = d.get("types") or {}
        if not isinstance(raw_types, dict):
            raise self.err("types", "must be an object")
        self.raw_types = raw_types
        for tname in raw_types:
            self.type_dtype(str(tname), f"types[{str(tname)!r}]")
        params: Dict[int, Parameter] = {}
        self.walk(d["root"], params, "root", 0)
        name = d.get("name")
        return cls(name if isinstance(name, str) else "", params, self.types, d)

    # -- the parameter tree ------------------------------------------------------------------
    def walk(self, node: Any, params: Dict[int, Parameter], loc: str, depth: int) -> None:
        if not isinstance(node, dict):
            raise self.err(loc, "not an object")
        if depth > MAX_DEPTH:
            raise self.err(loc, f"groups nested deeper than {MAX_DEPTH}")
        kind = node.get("type")
        gname = node.get("global_name") or node.get("name") or loc
        if not isinstance(gname, str):
            raise self.err(loc, f"global_name: {_show(gname)} is not a string")
        if kind == "parameter_group" or (kind is None and "parameters" in node):
            children = node.get("parameters")
            if children is None:
                return
            if not isinstance(children, list):
                raise self.err(loc, f"parameters: {_show(children)} is not a list")
            for i, ch in enumerate(children):
                self.walk(ch, params, f"{loc}.parameters[{i}]", depth + 1)
            return
        if kind not in ("parameter", "array", "vector"):
            raise self.err(loc, f"node {gname!r} has unknown type {_show(kind)}")
        where = f"{loc} ({gname})" if gname != loc else loc
        if "global_id" not in node or "element_type" not in node:
            raise self.err(where, f"parameter lacks {'global_id' if 'global_id' not in node else 'element_type'}")
        gid = self.int_field(node, "global_id", where, 0, _MAX_ID)
        et = self.str_field(node, "element_type", where)
        esize = self.int_field(node, "element_size", where, 0, MAX_SIZE, default=0)
        if kind == "array":
            count = self.int_field(node, "element_count", where, 0, MAX_SIZE, default=1) or 1
        elif kind == "vector":
            key = "max_element_count" if node.get("max_element_count") is not None else "element_count"
            count = self.int_field(node, key, where, 0, MAX_SIZE, default=1) or 1
        else:
            count = 1
        el: Optional[np.dtype]
        try:
            el = self.type_dtype(et, where + ".element_type")
        except OdinError as ex:
            if not str(ex).endswith(f"unknown element type {et!r}"):
                raise
            el = None  # a type the export does not describe: the entry stays raw
        if el is not None and element_code(et) == CHAR:
            el = np.dtype("S1")
        if el is not None and esize and el.itemsize != esize and element_code(et) not in (CHAR,):
            # element_size disagrees with the type: trust neither, keep raw
            el = None
        desc = node.get("description")
        params[gid] = Parameter(gid, gname, kind, et, esize, count, el, desc if isinstance(desc, str) else "")

    # -- types -------------------------------------------------------------------------------
    def type_dtype(self, tname: str, loc: str) -> np.dtype:
        if tname in self.types:
            return self.types[tname]
        p = _prim(tname)
        if p is not None:
            return p
        if tname not in self.raw_types:
            raise self.err(loc, f"unknown element type {tname!r}")
        if tname in self.resolving:
            raise self.err(loc, f"type {tname!r} is recursive")
        if len(self.resolving) >= MAX_DEPTH:
            raise self.err(loc, f"types nested deeper than {MAX_DEPTH}")
        self.resolving.append(tname)
        try:
            self.types[tname] = self.typedef(tname, self.raw_types[tname], f"types[{tname!r}]", 0)
        finally:
            self.resolving.pop()
        return self.types[tname]

    def sized(self, dt_args: Any, loc: str) -> np.dtype:
        """``np.dtype(dt_args)``, refused beyond MAX_SIZE bytes or when numpy refuses it."""
        try:
            dt = np.dtype(dt_args)
        except (ValueError, TypeError, OverflowError) as ex:
            raise self.err(loc, str(ex).splitlines()[0] if str(ex) else type(ex).__name__) from None
        if dt.itemsize > MAX_SIZE:
            raise self.err(loc, f"{dt.itemsize} bytes, more than an entry can hold ({MAX_SIZE})")
        return dt

    def typedef(self, tname: str, td: Any, loc: str, depth: int) -> np.dtype:
        if not isinstance(td, dict):
            raise self.err(loc, f"type {tname!r} is not an object")
        if depth > MAX_DEPTH:
            raise self.err(loc, f"structures nested deeper than {MAX_DEPTH}")
        size = None if td.get("size") is None else self.int_field(td, "size", loc, 0, MAX_SIZE)
        count = self.int_field(td, "count", loc, 0, MAX_SIZE, default=1)
        structure = td.get("structure")
        if isinstance(structure, str):
            base = self.type_dtype(structure, loc + ".structure")
            n = count or 1
            dt = base if n == 1 else self.sized((base, (n,)), loc)
            if size is not None and size != dt.itemsize:
                raise self.err(loc, f"type {tname!r}: size {size} but {structure} x {n} is {dt.itemsize} bytes")
            return dt
        fields: List[Tuple[str, np.dtype, Optional[int]]] = []
        if isinstance(structure, list):
            for i, s in enumerate(structure):
                if not isinstance(s, str):
                    raise self.err(f"{loc}.structure[{i}]", f"{_show(s)} is not a type name")
                fields.append(("%d" % i, self.type_dtype(s, f"{loc}.structure[{i}]"), None))
        elif isinstance(structure, dict):
            for fname, s in structure.items():
                floc = f"{loc}.structure.{fname}"
                off = None
                if isinstance(s, str):
                    dt = self.type_dtype(s, floc)
                elif isinstance(s, dict):
                    if s.get("offset") is not None:
                        off = self.int_field(s, "offset", floc, 0, MAX_SIZE)
                    if "structure" in s:
                        dt = self.typedef(f"{tname}.{fname}", s, floc, depth + 1)
                    elif isinstance(s.get("type"), str) and s["type"] != "type_definition":
                        dt = self.type_dtype(s["type"], floc)
                        n = self.int_field(s, "count", floc, 0, MAX_SIZE, default=0)
                        if n:
                            dt = self.sized((dt, (n,)), floc)
                    else:
                        raise self.err(floc, f"type {tname!r} field {str(fname)!r} has no structure")
                else:
                    raise self.err(floc, f"type {tname!r} field {str(fname)!r}: unsupported {type(s).__name__!r}")
                fields.append((str(fname), dt, off))
        else:
            raise self.err(loc, f"type {tname!r} has no usable 'structure'")
        names = [f[0] for f in fields]
        fmts = [f[1] for f in fields]
        packed_end = sum(d.itemsize for d in fmts)
        if any(f[2] is not None for f in fields):
            if not all(f[2] is not None for f in fields):
                raise self.err(loc, f"type {tname!r} gives offsets for some fields only")
            offs = [int(f[2]) for f in fields]  # type: ignore[arg-type]
            isz = size if size is not None else max(o + d.itemsize for o, d in zip(offs, fmts))
        elif size is None or size == packed_end:
            offs, o = [], 0
            for d in fmts:
                offs.append(o)
                o += d.itemsize
            isz = packed_end
        else:
            offs, end, al = _natural_layout([(n, d) for n, d in zip(names, fmts)])
            isz = size
            aligned = (end + al - 1) // al * al
            if end > isz or aligned != isz:
                raise self.err(loc, f"type {tname!r}: size {isz} fits neither packed ({packed_end}) nor C-aligned "
                                    f"({aligned}) layout")
        dt = self.sized({"names": names, "formats": fmts, "offsets": offs, "itemsize": isz}, loc)
        if count > 1:
            dt = self.sized((dt, (count,)), loc)
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
