"""The state of an ODIN packet stream: definitions learned so far, sequence and tick tracking, counters.

:class:`OdinStream` takes packets one by one (``process``) and classifies each, keeping:
definitions per set (from 0x01, complete 0x03 schemas, 0x04 types and an optional OdinDB),
set-id CRC verification, per-set :class:`SequenceTracker`, one :class:`TickUnwrapper` for the
device clock, and counters of everything odd (unknown types, malformed packets, length
mismatches, unknown element types).  It never raises on bad packets: they are counted and
classified ``malformed``; ``report()`` says what happened.

>>> s = OdinStream()
>>> s.process(open("tests/vectors/odin/01_identifier.bin", "rb").read()).kind
'identifier'
>>> r = s.process(open("tests/vectors/odin/02_data_seq0.bin", "rb").read())
>>> (r.kind, r.key, r.ticks, r.defined)
('data', 2454, 1000, True)
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Set

from ..errors import OdinError
from .odindb import OdinDB, load_odin_db
from .packets import (DATA, EVENT, IDENTIFIER, IDENTIFIER_EXT, TYPE_DESCRIPTOR, Identifier, IdentifierExt,
                      TypeDescriptor, parse_packet)
from .schema import EntryDef, SchemaAssembler, SetDef, TypeAssembler
from .sequence import SequenceTracker, TickUnwrapper
from .types import CUSTOM, is_known_element

__all__ = ["OdinStream", "PacketInfo", "StreamStats", "MAX_LAYOUTS_KEPT"]

_TS = struct.Struct("<IH")
#: Distinct layouts of one set kept in ``OdinStream.history`` (decode() picks by packet length);
#: older ones are dropped and counted in ``stats.layouts_dropped``.
MAX_LAYOUTS_KEPT = 64


@dataclass
class PacketInfo:
    """What :meth:`OdinStream.process` learned about one packet.

    ``kind``: ``data``, ``event``, ``identifier``, ``identifier_ext``, ``type_descriptor``,
    ``unknown`` (type byte not known), ``malformed``.  ``key``: set id (data/identifier*),
    event id (event), type byte (unknown).  ``defined``: for data, whether its set's layout is
    known and its length matches.  ``changed``: this packet changed a set definition (``sets``
    lists which).  ``ticks``: unwrapped timestamp (data/event).
    """
    kind: str
    key: int = 0
    ticks: Optional[int] = None
    sequence: Optional[int] = None
    defined: bool = False
    changed: bool = False
    sets: Optional[List[int]] = None
    error: Optional[str] = None
    status: Optional[str] = None


class StreamStats:
    """Counters of an :class:`OdinStream` (all ints; see :meth:`as_dict`).

    >>> StreamStats().as_dict()["data"]
    0
    """

    FIELDS = ("packets", "data", "events", "identifiers", "identifiers_ext", "type_descriptors", "unknown",
              "malformed", "set_id_mismatches", "length_mismatches", "undefined_data", "unknown_element_types",
              "definition_changes", "layouts_dropped")

    def __init__(self) -> None:
        for f in self.FIELDS:
            setattr(self, f, 0)
        self.unknown_types: Dict[int, int] = {}
        self.errors: List[str] = []

    def as_dict(self) -> Dict[str, Any]:
        d = {f: getattr(self, f) for f in self.FIELDS}
        d["unknown_types"] = {"0x%02X" % k: v for k, v in sorted(self.unknown_types.items())}
        d["errors"] = list(self.errors)
        return d


class OdinStream:
    """Packet-by-packet ODIN stream state; see the module docstring.

    ``odin_db``: path, dict or :class:`OdinDB` to type sets announced by 0x01 alone.
    ``max_errors_kept``: how many error messages ``stats.errors`` keeps (counts are exact).
    """

    def __init__(self, odin_db: "OdinDB | str | dict | None" = None, max_errors_kept: int = 100) -> None:
        self.db: Optional[OdinDB] = load_odin_db(odin_db) if odin_db is not None else None
        self.types = TypeAssembler()
        self.assemblers: Dict[int, SchemaAssembler] = {}
        self.identifiers: Dict[int, Identifier] = {}
        self.sets: Dict[int, SetDef] = {}
        self.history: Dict[int, List[SetDef]] = {}
        self.sequences: Dict[int, SequenceTracker] = {}
        self.clock = TickUnwrapper()
        self.stats = StreamStats()
        self.max_errors_kept = max_errors_kept
        self._sizes: Dict[int, int] = {}
        self._awaiting: Dict[int, Set[int]] = {}  # custom type id -> sets with entries waiting for it
        self._seen: Dict[tuple, bytes] = {}  # last bytes of each identifier/type packet (re-sends are cheap)

    # -- helpers ---------------------------------------------------------------------------
    def _error(self, msg: str) -> None:
        if len(self.stats.errors) < self.max_errors_kept:
            self.stats.errors.append(msg)

    def _entry_from_item(self, it) -> EntryDef:
        et = it.element_type
        if not is_known_element(et):
            self.stats.unknown_element_types += 1
            self._error("entry 0x%08X %r: unknown element type %d, kept raw" % (it.global_id, it.name, et))
            return EntryDef(it.global_id, it.size, it.name or None, et, it.type_id, "unknown_%d" % et,
                            note="unknown element type %d" % et)
        if et == CUSTOM:
            dt = self.types.dtype(it.type_id)
            if dt is not None and it.size % dt.itemsize == 0 and dt.itemsize:
                from .types import entry_dtype
                return EntryDef(it.global_id, it.size, it.name or None, et, it.type_id, self.types.name(it.type_id),
                                entry_dtype(CUSTOM, it.size, dt), self.types.note(it.type_id))
            if self.db is not None and it.global_id in self.db.params:
                e = self.db.entry(it.global_id, it.size)
                if e.dtype is not None:
                    return EntryDef(it.global_id, it.size, it.name or e.name, et, it.type_id, e.type_name, e.dtype)
            return EntryDef(it.global_id, it.size, it.name or None, et, it.type_id, None,
                            note="custom type %d not (yet) described by a 0x04 packet" % it.type_id)
        name = it.name or None
        if name is None and self.db is not None and it.global_id in self.db.params:
            name = self.db.params[it.global_id].name
        e = EntryDef(it.global_id, it.size, name, et, it.type_id)
        if e.resolved_dtype().kind == "V":
            e = EntryDef(it.global_id, it.size, name, et, it.type_id,
                         note="size %d is not a multiple of the element" % it.size)
        return e

    def _set_def(self, sid: int, new: SetDef) -> bool:
        old = self.sets.get(sid)
        if old is not None and old.same_layout(new):
            return False
        if not new.set_id_ok:
            self.stats.set_id_mismatches += 1
            self._error("set 0x%04X: header id does not match CRC of its entries (0x%04X); trusted, reported"
                        % (sid, new.computed_set_id))
        self.sets[sid] = new
        self._sizes[sid] = new.packet_size
        hist = self.history.setdefault(sid, [])
        key = new.layout_key()
        for i in range(len(hist) - 1, -1, -1):  # a layout seen before moves to the end: no duplicates
            if hist[i].layout_key() == key:
                del hist[i]
                break
        hist.append(new)
        if len(hist) > MAX_LAYOUTS_KEPT:
            del hist[0]
            self.stats.layouts_dropped += 1
        if old is not None:
            self.stats.definition_changes += 1
        self._await_types(sid, new)
        return True

    def _await_types(self, sid: int, d: SetDef) -> None:
        """Note the custom types ``d`` still waits for: their 0x04 refreshes it (once)."""
        for e in d.entries:
            if e.element_type == CUSTOM and e.dtype is None:
                self._awaiting.setdefault(e.type_id, set()).add(sid)

    def _from_identifier(self, p: Identifier) -> SetDef:
        sid = p.set_id
        asm = self.assemblers.get(sid)
        if asm is not None and asm.complete:
            items = asm.items()
            if [(i.global_id, i.size) for i in items] == [(e.global_id, e.size) for e in p.entries]:
                return SetDef(sid, p.definition_identifier, tuple(self._entry_from_item(i) for i in items),
                              "identifier_ext")
        if self.db is not None:
            ents = tuple(self.db.entry(e.global_id, e.size) for e in p.entries)
            return SetDef(sid, p.definition_identifier, ents, "odin_db")
        return SetDef(sid, p.definition_identifier, tuple(EntryDef(e.global_id, e.size) for e in p.entries),
                      "identifier")

    def _refresh_custom(self, type_ids: Iterable[int]) -> List[int]:
        """Re-resolve the sets waiting for these custom types (only those: a type packet costs
        the sets that use it, not every set).  A set is refreshed once per type arrival; an
        entry the type does not fit stays raw until the set is defined again."""
        todo: Set[int] = set()
        for tid in type_ids:
            todo.update(self._awaiting.pop(tid, ()))
        changed = []
        for sid in sorted(todo):
            sd = self.sets.get(sid)
            asm = self.assemblers.get(sid)
            if sd is None or asm is None or not asm.complete:
                continue
            nd = SetDef(sid, sd.definition_identifier, tuple(self._entry_from_item(i) for i in asm.items()),
                        "identifier_ext")
            if self._set_def(sid, nd):
                changed.append(sid)
            else:  # unchanged: keep waiting for the types not described yet
                for e in sd.entries:
                    if e.element_type == CUSTOM and e.dtype is None and self.types.dtype(e.type_id) is None:
                        self._awaiting.setdefault(e.type_id, set()).add(sid)
        return changed

    # -- main entry ------------------------------------------------------------------------
    def process(self, pkt: "bytes | bytearray | memoryview", index: Optional[int] = None) -> PacketInfo:
        """Classify one packet and update the state (never raises on bad packets)."""
        st = self.stats
        st.packets += 1
        n = len(pkt)
        if n == 0:
            st.malformed += 1
            self._error("empty packet%s" % ("" if index is None else " #%d" % index))
            return PacketInfo("malformed", error="empty packet")
        t = pkt[0]
        if t == DATA:
            if n < 10:
                st.malformed += 1
                self._error("DATA packet too short: %d bytes" % n)
                return PacketInfo("malformed", error="DATA packet too short: %d bytes" % n)
            sid = pkt[1] | (pkt[2] << 8)
            ts, seq = _TS.unpack_from(pkt, 4)
            st.data += 1
            ticks = self.clock.update(ts)
            tr = self.sequences.get(sid)
            if tr is None:
                tr = self.sequences[sid] = SequenceTracker()
            status = tr.update(seq)
            size = self._sizes.get(sid)
            if size is None:
                st.undefined_data += 1
                return PacketInfo("data", sid, ticks, seq, False, status=status)
            if size != n:
                st.length_mismatches += 1
                self._error("DATA set 0x%04X: %d bytes, its definition says %d" % (sid, n, size))
                return PacketInfo("data", sid, ticks, seq, False, status=status, error="length mismatch")
            return PacketInfo("data", sid, ticks, seq, True, status=status)
        if t == EVENT:
            if n < 10:
                st.malformed += 1
                self._error("EVENT packet too short: %d bytes" % n)
                return PacketInfo("malformed", error="EVENT packet too short: %d bytes" % n)
            eid = pkt[1] | (pkt[2] << 8)
            ts, seq = _TS.unpack_from(pkt, 4)
            st.events += 1
            return PacketInfo("event", eid, self.clock.update(ts), seq, True)
        if t not in (IDENTIFIER, IDENTIFIER_EXT, TYPE_DESCRIPTOR):
            st.unknown += 1
            st.unknown_types[t] = st.unknown_types.get(t, 0) + 1
            return PacketInfo("unknown", t)
        # a re-sent identical identifier/type packet changes nothing: count it and move on
        if n >= 12:
            skey = (t, pkt[1] | (pkt[2] << 8), pkt[10] | (pkt[11] << 8) if t != IDENTIFIER else 0)
        else:
            skey = (t, pkt[1] | (pkt[2] << 8) if n >= 3 else -1, -1)
        bpkt = bytes(pkt)
        if self._seen.get(skey) == bpkt:
            if t == IDENTIFIER:
                st.identifiers += 1
                return PacketInfo("identifier", skey[1])
            if t == IDENTIFIER_EXT:
                st.identifiers_ext += 1
                return PacketInfo("identifier_ext", skey[1])
            st.type_descriptors += 1
            return PacketInfo("type_descriptor", 0)
        try:
            p = parse_packet(pkt, index=index)
        except OdinError as ex:
            st.malformed += 1
            self._error(str(ex))
            return PacketInfo("malformed", t, error=str(ex))
        self._seen[skey] = bpkt
        if t == IDENTIFIER:
            assert isinstance(p, Identifier)
            st.identifiers += 1
            self.identifiers[p.set_id] = p
            ch = self._set_def(p.set_id, self._from_identifier(p))
            return PacketInfo("identifier", p.set_id, changed=ch, sets=[p.set_id] if ch else None)
        if t == IDENTIFIER_EXT:
            assert isinstance(p, IdentifierExt)
            st.identifiers_ext += 1
            asm = self.assemblers.get(p.set_id)
            if asm is None:
                asm = self.assemblers[p.set_id] = SchemaAssembler()
            ch = False
            if asm.add(p) and asm.changed:  # a re-sent chunk that changes nothing costs its items only
                nd = SetDef(p.set_id, p.definition_identifier, tuple(self._entry_from_item(i) for i in asm.items()),
                            "identifier_ext")
                ch = self._set_def(p.set_id, nd)
            return PacketInfo("identifier_ext", p.set_id, changed=ch, sets=[p.set_id] if ch else None)
        assert isinstance(p, TypeDescriptor)
        st.type_descriptors += 1
        self.types.add(p)
        changed = self._refresh_custom(td.type_id for td in p.types)
        return PacketInfo("type_descriptor", 0, changed=bool(changed), sets=changed or None)

    def report(self) -> Dict[str, Any]:
        """Everything counted so far, JSON-able: packet counts, errors, per-set definitions and sequences.

        >>> OdinStream().report()["stats"]["packets"]
        0
        """
        sets = {}
        for sid in sorted(set(self.sets) | set(self.sequences) | set(self.assemblers)):
            d: Dict[str, Any] = {}
            sd = self.sets.get(sid)
            if sd is not None:
                d["definition"] = sd.source
                d["entries"] = len(sd.entries)
                d["packet_size"] = sd.packet_size
                d["set_id_ok"] = sd.set_id_ok
            asm = self.assemblers.get(sid)
            if asm is not None and not asm.complete:
                d["schema_incomplete"] = asm.missing_summary()
            tr = self.sequences.get(sid)
            if tr is not None:
                d["sequence"] = tr.as_dict()
            sets["0x%04X" % sid] = d
        return {"stats": self.stats.as_dict(), "sets": sets}
