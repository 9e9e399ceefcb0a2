"""Set definitions: which entries a parameter set carries, their names, types and numpy dtypes.

A :class:`SetDef` is what a 0x01 IDENTIFIER (sizes only), a complete 0x03 IDENTIFIER_EXT schema
(names and element types), optionally resolved against an OdinDB and 0x04 custom types, tells us.
Its :meth:`SetDef.packet_dtype` describes a whole DATA packet, so a run of DATA packets of one set
decodes with ONE ``np.frombuffer``.

>>> s = SetDef(0x0996, 0x0A0B, (EntryDef(0x01010000, 4, "a", F32), EntryDef(0x01020000, 2, None)))
>>> s.packet_dtype().names
('type', 'set_id', 'reserved', 'timestamp', 'sequence', 'a', '0x01020000')
>>> s.data_size, hex(s.computed_set_id)
(6, '0xa88c')
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import orjson

from ..errors import OdinError
from .crc import set_id as _crc_set_id
from .packets import (ExtItem, Identifier, IdentifierEntry, IdentifierExt, TypeDef, TypeDescriptor,
                      TypeField)
from .types import (CHAR, CUSTOM, ELEMENT_NAMES, F32, element_code, element_size, entry_dtype,
                    is_known_element, raw_dtype)

__all__ = ["EntryDef", "SetDef", "struct_dtype_from_typedef", "SchemaAssembler", "TypeAssembler",
           "PACKET_HEADER_FIELDS", "flat_columns", "MISSING_RANGES_KEPT"]

#: Runs of missing 0x03 ordinals a report lists per set (the counts are always exact).
MISSING_RANGES_KEPT = 8

PACKET_HEADER_FIELDS = [("type", "u1"), ("set_id", "<u2"), ("reserved", "u1"), ("timestamp", "<u4"),
                        ("sequence", "<u2")]


@dataclass(frozen=True)
class EntryDef:
    """One entry of a set: global id, size in DATA, and when known name, element type, dtype.

    ``element_type`` is the ODIN code (None when only a 0x01 told us the size); ``type_name`` is
    ``f32``-style or a custom type's name; ``dtype`` None means raw bytes (``V{size}``).

    >>> EntryDef(1, 4, "x", F32).resolved_dtype()
    dtype('float32')
    """
    global_id: int
    size: int
    name: Optional[str] = None
    element_type: Optional[int] = None
    type_id: int = 0
    type_name: Optional[str] = field(default=None, compare=False)
    dtype: Optional[np.dtype] = field(default=None, compare=False)
    note: Optional[str] = field(default=None, compare=False)

    @property
    def column(self) -> str:
        """Column name: the dotted global name, or the global id in hex when unnamed."""
        return self.name if self.name else "0x%08X" % self.global_id

    def resolved_dtype(self) -> np.dtype:
        """The entry's dtype: typed when known and consistent with ``size``, else ``V{size}``."""
        if self.dtype is not None:
            return self.dtype
        if self.element_type is not None and self.element_type != CUSTOM:
            dt = entry_dtype(self.element_type, self.size)
            if dt is not None:
                return dt
        return raw_dtype(self.size) if self.size > 0 else np.dtype("V0")

    @property
    def count(self) -> int:
        """Number of elements (1 for scalars, raw and char entries)."""
        dt = self.resolved_dtype()
        if dt.subdtype is not None:
            return int(np.prod(dt.shape))
        return 1

    def to_meta(self) -> Dict[str, Any]:
        """JSON-able description (used in id-0 metadata)."""
        d: Dict[str, Any] = {"global_id": self.global_id, "size": self.size}
        if self.name is not None:
            d["name"] = _safe(self.name)
            if d["name"] != self.name:  # bytes that are not UTF-8: keep them exactly
                d["name_hex"] = self.name.encode("utf-8", "surrogateescape").hex()
        if self.element_type is not None:
            d["element_type"] = self.element_type
            d["type"] = _safe(self.type_name or ELEMENT_NAMES.get(self.element_type, "unknown_%d" % self.element_type))
        if self.type_id:
            d["type_id"] = self.type_id
        dt = self.resolved_dtype()
        d["count"] = self.count
        d["dtype"] = _dtype_to_meta(dt)
        if self.note:
            d["note"] = self.note
        return d


def _safe(name: str) -> str:
    """A name that JSON/MessagePack can carry: non-UTF-8 bytes (kept as surrogates) -> ``\\xNN``."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _dtype_to_meta(dt: np.dtype) -> Any:
    if dt.fields is not None:
        return {"names": [_safe(n) for n in dt.names], "formats": [_dtype_to_meta(dt.fields[n][0]) for n in dt.names],
                "offsets": [dt.fields[n][1] for n in dt.names], "itemsize": dt.itemsize}
    if dt.subdtype is not None:
        return [_dtype_to_meta(dt.subdtype[0]), list(dt.subdtype[1])]
    return dt.str


def _dtype_from_meta(m: Any) -> np.dtype:
    if isinstance(m, dict):
        return np.dtype({"names": m["names"], "formats": [_dtype_from_meta(f) for f in m["formats"]],
                         "offsets": m["offsets"], "itemsize": m["itemsize"]})
    if isinstance(m, list):
        return np.dtype((_dtype_from_meta(m[0]), tuple(m[1])))
    return np.dtype(m)


@dataclass(frozen=True)
class SetDef:
    """A parameter set's definition (header set id, od identifier, entries in DATA order).

    >>> SetDef(0xFFFF, 0, ()).computed_set_id
    65535
    """
    set_id: int
    definition_identifier: int
    entries: Tuple[EntryDef, ...]
    source: str = field(default="identifier", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_data_size", sum(e.size for e in self.entries))

    @property
    def computed_set_id(self) -> int:
        """CRC-16 over the entries' global ids: what ``set_id`` should be."""
        return _crc_set_id(e.global_id for e in self.entries)

    @property
    def set_id_ok(self) -> bool:
        return self.computed_set_id == self.set_id

    @property
    def data_size(self) -> int:
        """Bytes of entry data in one DATA packet."""
        return self._data_size  # type: ignore[attr-defined]

    @property
    def packet_size(self) -> int:
        """Total length of one DATA packet of this set."""
        return 10 + self._data_size  # type: ignore[attr-defined]

    def _entry_fields(self) -> Tuple[List[str], List[np.dtype], List[int]]:
        names, fmts, offs = [], [], []
        seen: Dict[str, int] = {}
        off = 0
        for e in self.entries:
            nm = e.column
            if nm in seen or nm in ("type", "set_id", "reserved", "timestamp", "sequence"):
                seen[nm] = seen.get(nm, 1) + 1
                nm = "%s#%d" % (nm, seen[nm])
            else:
                seen[nm] = 1
            names.append(nm)
            fmts.append(e.resolved_dtype())
            offs.append(off)
            off += e.size
        return names, fmts, offs

    def packet_dtype(self) -> np.dtype:
        """Structured dtype of a whole DATA packet (header fields then entries, packed).

        >>> SetDef(1, 0, (EntryDef(5, 4, "v", F32),)).packet_dtype().itemsize
        14
        """
        names, fmts, offs = self._entry_fields()
        hn = [n for n, _ in PACKET_HEADER_FIELDS]
        hf = [np.dtype(f) for _, f in PACKET_HEADER_FIELDS]
        ho = [0, 1, 3, 4, 8]
        return np.dtype({"names": hn + names, "formats": hf + fmts, "offsets": ho + [10 + o for o in offs],
                         "itemsize": 10 + self.data_size})

    def record_dtype(self) -> np.dtype:
        """Structured dtype of ``timestamp u4, sequence u2`` + entries (a DATA packet minus its header).

        >>> SetDef(1, 0, (EntryDef(5, 4, "v", F32),)).record_dtype().names
        ('timestamp', 'sequence', 'v')
        """
        names, fmts, offs = self._entry_fields()
        return np.dtype({"names": ["timestamp", "sequence"] + names,
                         "formats": [np.dtype("<u4"), np.dtype("<u2")] + fmts,
                         "offsets": [0, 4] + [6 + o for o in offs], "itemsize": 6 + self.data_size})

    def identifier_packet(self, reserved: int = 0) -> Identifier:
        """The 0x01 IDENTIFIER packet announcing this set."""
        return Identifier(self.set_id, self.definition_identifier,
                          tuple(IdentifierEntry(e.global_id, e.size) for e in self.entries), reserved)

    def identifier_ext_packets(self, max_packet: int = 512) -> List[IdentifierExt]:
        """The 0x03 IDENTIFIER_EXT chunks describing this set (names/types), each <= max_packet bytes."""
        out: List[IdentifierExt] = []
        cur: List[ExtItem] = []
        size = 12
        start = 0
        total = len(self.entries)
        for i, e in enumerate(self.entries):
            nb = len((e.name or "").encode("utf-8", "surrogateescape"))
            it = ExtItem(e.global_id, e.size, e.element_type if e.element_type is not None else 1,
                         e.type_id, e.name or "")
            if cur and size + 10 + nb > max_packet:
                out.append(IdentifierExt(self.set_id, self.definition_identifier, total, start, tuple(cur)))
                start, cur, size = i, [], 12
            cur.append(it)
            size += 10 + nb
        if cur or not out:
            out.append(IdentifierExt(self.set_id, self.definition_identifier, total, start, tuple(cur)))
        return out

    def to_meta(self, max_size: Optional[int] = None) -> Dict[str, Any]:
        """JSON-able description of the definition (what id-0 metadata carries).

        ``max_size``: when the entries' JSON would exceed that many bytes (hostile definitions:
        65,535 entries each repeating a large custom type), ``entries`` is left out and
        ``entries_omitted`` says how many there are (the identifier packets, stored verbatim,
        still hold the definition); the object is built entry by entry, so memory stays bounded.

        >>> s = SetDef(1, 2, (EntryDef(5, 4, "v", F32),) * 3)
        >>> len(s.to_meta()["entries"]), s.to_meta(max_size=100)["entries_omitted"]
        (3, 3)
        """
        m: Dict[str, Any] = {"set_id": self.set_id, "definition_identifier": self.definition_identifier,
                             "computed_set_id": self.computed_set_id, "source": self.source,
                             "data_size": self.data_size}
        if max_size is None:
            m["entries"] = [e.to_meta() for e in self.entries]
            return m
        ents: List[Dict[str, Any]] = []
        size = 0
        for e in self.entries:
            em = e.to_meta()
            size += len(orjson.dumps(em)) + 1
            if size > max_size:
                m["entries_omitted"] = len(self.entries)
                m["note"] = (f"definition metadata exceeds {max_size} bytes: entries omitted (the identifier "
                             f"packets on odin/set/0x{self.set_id:04X}/identifier hold them)")
                return m
            ents.append(em)
        m["entries"] = ents
        return m

    @classmethod
    def from_meta(cls, m: Dict[str, Any]) -> "SetDef":
        """Inverse of :meth:`to_meta`.

        >>> s = SetDef(1, 2, (EntryDef(5, 4, "v", F32),)); SetDef.from_meta(s.to_meta()) == s
        True
        """
        if isinstance(m, dict) and "entries" not in m and "entries_omitted" in m:
            raise OdinError(f"ODIN set definition metadata without its entries ({m['entries_omitted']!r} omitted: "
                            f"over the size limit; the identifier packets hold them)")
        try:
            ents = []
            for e in m["entries"]:
                dt = _dtype_from_meta(e["dtype"]) if "dtype" in e else None
                name = e.get("name")
                if "name_hex" in e:
                    name = bytes.fromhex(e["name_hex"]).decode("utf-8", "surrogateescape")
                ents.append(EntryDef(int(e["global_id"]), int(e["size"]), name, e.get("element_type"),
                                     int(e.get("type_id", 0)), e.get("type"), dt, e.get("note")))
            return cls(int(m["set_id"]), int(m["definition_identifier"]), tuple(ents), m.get("source", "meta"))
        except (KeyError, TypeError, ValueError) as ex:
            raise OdinError("bad ODIN set definition metadata: %s" % ex) from None

    def layout_key(self) -> Tuple[Any, ...]:
        """What decides how DATA decodes: set id and each entry's global id, size, dtype and name
        (computed once per definition).

        >>> SetDef(1, 0, (EntryDef(5, 4, "v", F32),)).layout_key()
        (1, ((5, 4, dtype('float32'), 'v'),))
        """
        k = self.__dict__.get("_layout_key")
        if k is None:
            k = (self.set_id, tuple((e.global_id, e.size, e.resolved_dtype(), e.name) for e in self.entries))
            object.__setattr__(self, "_layout_key", k)
        return k

    def same_layout(self, other: "SetDef") -> bool:
        """True when both decode DATA identically (same ids, sizes and dtypes)."""
        return self.layout_key() == other.layout_key()


def struct_dtype_from_typedef(td: TypeDef) -> Tuple[np.dtype, Optional[str]]:
    """numpy structured dtype for a 0x04 custom type, honouring field offsets and the type's size.

    Fields we cannot type (nested custom, unknown codes, sizes that are not a multiple of the
    element) become raw ``V{size}``; the second value then says why.  Overlapping or
    out-of-bounds fields make the whole type raw.

    >>> td = TypeDef(66, 8, "pad", (TypeField(2, 1, 0, "a"), TypeField(10, 4, 4, "b")))
    >>> dt, note = struct_dtype_from_typedef(td); dt.fields["b"][1], dt.itemsize, note
    (4, 8, None)
    """
    names, fmts, offs = [], [], []
    notes = []
    for f in td.fields:
        dt = None
        if is_known_element(f.element_type) and f.element_type != CUSTOM:
            dt = entry_dtype(f.element_type, f.size)
        if dt is None:
            dt = raw_dtype(max(f.size, 0))
            notes.append("field %r (element type %d, %d bytes) kept raw" % (f.name, f.element_type, f.size))
        nm = f.name or "f%d" % len(names)
        if nm in names:
            nm = "%s#%d" % (nm, len(names))
        names.append(nm)
        fmts.append(dt)
        offs.append(f.offset)
    # bounds / overlap check
    spans = sorted(zip(offs, [d.itemsize for d in fmts]))
    end = 0
    for o, s in spans:
        if o < end or o + s > td.size:
            return raw_dtype(td.size), "type %r: fields overlap or exceed its size %d; kept raw" % (td.name, td.size)
        end = o + s
    try:
        dt = np.dtype({"names": names, "formats": fmts, "offsets": offs, "itemsize": td.size})
    except (ValueError, TypeError) as ex:
        return raw_dtype(td.size), "type %r: %s; kept raw" % (td.name, ex)
    return dt, ("; ".join(notes) or None)


class SchemaAssembler:
    """Collects the 0x03 IDENTIFIER_EXT chunks of one set until ordinals 0..total_count-1 are seen.

    >>> a = SchemaAssembler()
    >>> a.add(IdentifierExt(7, 1, 2, 1, (ExtItem(2, 4, 10, 0, "b"),)))
    False
    >>> a.add(IdentifierExt(7, 1, 2, 0, (ExtItem(1, 4, 10, 0, "a"),)))
    True
    >>> [i.name for i in a.items()]
    ['a', 'b']
    """

    def __init__(self) -> None:
        self.total: Optional[int] = None
        self.definition_identifier: Optional[int] = None
        self.set_id: Optional[int] = None
        self._items: Dict[int, ExtItem] = {}
        self.conflicts = 0
        self.changed = False  # whether the last add() changed the items

    def add(self, p: IdentifierExt) -> bool:
        """Add a chunk; returns True when the schema is complete (``changed`` says whether this
        chunk changed it).  A chunk announcing a different total_count or od identifier restarts
        the assembly (the device changed its definition)."""
        changed = False
        if self.total is not None and (p.total_count != self.total
                                       or p.definition_identifier != self.definition_identifier):
            self._items.clear()
            self.conflicts += 1
            changed = True
        if self.total is None:
            changed = True
        self.total = p.total_count
        self.definition_identifier = p.definition_identifier
        self.set_id = p.set_id
        for k, it in enumerate(p.items):
            o = p.start_ordinal + k
            if o < self.total:
                old = self._items.get(o)
                if old != it:
                    if old is not None:
                        self.conflicts += 1
                    self._items[o] = it
                    changed = True
        self.changed = changed
        return self.complete

    @property
    def complete(self) -> bool:
        return self.total is not None and len(self._items) == self.total

    @property
    def missing(self) -> List[int]:
        """Ordinals not yet seen (at most ``total_count`` <= 65535 ints; reports use
        :meth:`missing_summary`, which stays small whatever the chunks claim)."""
        if self.total is None:
            return []
        return [i for i in range(self.total) if i not in self._items]

    @property
    def missing_count(self) -> int:
        """How many ordinals below ``total_count`` are not yet seen.

        >>> a = SchemaAssembler(); _ = a.add(IdentifierExt(7, 1, 65535, 3, ())); a.missing_count
        65535
        """
        return 0 if self.total is None else self.total - len(self._items)

    def missing_ranges(self, limit: int = MISSING_RANGES_KEPT) -> Tuple[List[List[int]], int]:
        """The first ``limit`` runs of missing ordinals as inclusive ``[first, last]`` pairs, and
        how many further runs there are (time linear in the ordinals seen, output bounded).

        >>> a = SchemaAssembler(); _ = a.add(IdentifierExt(7, 1, 6, 2, (ExtItem(1, 4, 10, 0, "a"),)))
        >>> a.missing_ranges()
        ([[0, 1], [3, 5]], 0)
        >>> a.missing_ranges(1)
        ([[0, 1]], 1)
        """
        if self.total is None:
            return [], 0
        out: List[List[int]] = []
        more = 0
        nxt = 0  # first ordinal not yet accounted for
        for o in sorted(self._items):
            if o > nxt:
                if len(out) < limit:
                    out.append([nxt, o - 1])
                else:
                    more += 1
            nxt = o + 1
        if nxt < self.total:
            if len(out) < limit:
                out.append([nxt, self.total - 1])
            else:
                more += 1
        return out, more

    def missing_summary(self, limit: int = MISSING_RANGES_KEPT) -> Dict[str, Any]:
        """What a report says about an incomplete schema: counts and at most ``limit`` ranges.

        >>> a = SchemaAssembler(); _ = a.add(IdentifierExt(7, 1, 65535, 0, ())); a.missing_summary()
        {'total_count': 65535, 'received': 0, 'missing': 65535, 'missing_ranges': [[0, 65534]], 'more_ranges': 0}
        """
        ranges, more = self.missing_ranges(limit)
        return {"total_count": self.total or 0, "received": len(self._items), "missing": self.missing_count,
                "missing_ranges": ranges, "more_ranges": more}

    def items(self) -> List[ExtItem]:
        """Items in ordinal order (only meaningful once complete)."""
        return [self._items[i] for i in sorted(self._items)]


class TypeAssembler:
    """Collects custom types from 0x04 TYPE_DESCRIPTOR packets (by type id, across chunks).

    >>> t = TypeAssembler(); t.add(TypeDescriptor(1, 1, 0, (TypeDef(66, 4, "t", (TypeField(10, 4, 0, "x"),)),)))
    >>> t.dtype(66).names
    ('x',)
    """

    def __init__(self) -> None:
        self.types: Dict[int, TypeDef] = {}
        self._dtypes: Dict[int, Tuple[np.dtype, Optional[str]]] = {}

    def add(self, p: TypeDescriptor) -> None:
        for td in p.types:
            self.types[td.type_id] = td
            self._dtypes[td.type_id] = struct_dtype_from_typedef(td)

    def dtype(self, type_id: int) -> Optional[np.dtype]:
        r = self._dtypes.get(type_id)
        return r[0] if r else None

    def note(self, type_id: int) -> Optional[str]:
        r = self._dtypes.get(type_id)
        return r[1] if r else None

    def name(self, type_id: int) -> Optional[str]:
        td = self.types.get(type_id)
        return td.name if td else None


def flat_columns(arr: np.ndarray, prefix: str = "", expand_arrays: bool = True) -> Dict[str, np.ndarray]:
    """Flatten a structured array into ``{dotted name: 1-D array}`` (``a.b.x``, ``axis[0]``).

    >>> a = np.zeros(2, dtype=[("s.axis", "<i2", (2,)), ("imu", [("x", "<f4")])])
    >>> list(flat_columns(a))
    ['s.axis[0]', 's.axis[1]', 'imu.x']
    """
    out: Dict[str, np.ndarray] = {}
    if arr.ndim > 1 and expand_arrays:
        for idx in np.ndindex(*arr.shape[1:]):
            out.update(flat_columns(arr[(slice(None),) + idx], prefix + "".join("[%d]" % k for k in idx),
                                    expand_arrays))
        return out
    if arr.dtype.names is not None:
        for n in arr.dtype.names:
            out.update(flat_columns(arr[n], "%s.%s" % (prefix, n) if prefix else n, expand_arrays))
        return out
    out[prefix] = arr
    return out
