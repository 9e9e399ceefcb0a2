"""How each fastodin channel becomes typed messages: encoding, schema and payload bytes.

One home for the mapping that both the MCAP export (:mod:`fastodin.mcap.export`) and the live
Foxglove server (:mod:`fastodin.foxglove`) use (spec/mcap.md §2–3): channels from an MCAP import
keep their own encoding and schema; layouts, ODIN sets, ODIN events and id-0 metadata become JSON
messages with a JSON Schema; every other channel stays raw bytes.  :func:`channel_batches` turns
one time window of one channel (``Archive.read`` output) into :class:`Batch` es of messages.

>>> plan_channels.__name__
'plan_channels'
"""
from __future__ import annotations

import base64
import math
import struct
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import orjson

from ..timebase import TimeBase, seconds_to_ns
from .jsonmsg import Obj, ObjectColumn, Tokens, columns_obj, encode, fields_of, json_schema, plain_value

__all__ = ["IMPORT_TAG", "RAW_ENCODING", "META_TOPIC", "Times", "OdinSets", "ChannelPlan", "Batch",
           "plan_channels", "mcap_channels", "select_channels", "time_windows", "window_batches", "channel_batches",
           "raw_tokens"]

#: the file tag an MCAP import writes (spec/mcap.md §5)
IMPORT_TAG = "mcap"
#: message encoding declared for channels whose payloads are opaque bytes
RAW_ENCODING = "octet-stream"
#: MCAP topic of the id-0 metadata records
META_TOPIC = "fastodin/metadata"
_EVENT = struct.Struct("<BHBIH")
_VAR_SCHEMA: Dict[str, Dict[str, Any]] = {
    "string": {"type": "string"}, "bytes": {"type": "string", "contentEncoding": "base64"},
    "audio": {"type": "array", "items": {"type": "number"}}}
_META_SCHEMA = orjson.dumps({"title": "fastodin id-0 metadata", "type": "object", "properties": {}})


class Times:
    """Record times → u64 ns, counting what MCAP cannot hold."""

    def __init__(self, tb: Optional[TimeBase], offset_ns: int) -> None:
        self.tb = tb if tb is not None and tb.origin_ns is not None else None
        self.seconds_tb = tb if tb is not None and tb.origin_ns is None else None
        self.offset_ns = offset_ns
        self.nan = self.inf = self.negative = self.late = 0

    def ns(self, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(u64 ns of the records kept, mask of the records kept)."""
        if self.seconds_tb is not None:
            t = self.seconds_tb.seconds(t)
        nan = np.isnan(t)
        fin = np.isfinite(t)
        self.nan += int(nan.sum())
        self.inf += int((~fin & ~nan).sum())
        tf = np.where(fin, t, 0.0)
        if self.tb is not None and self.tb.origin_ns is not None:     # integer ns since an exact origin
            base = self.tb.origin_ns + self.offset_ns
            d = np.rint(tf) if self.tb.base == 1e-9 else np.rint(tf * (self.tb.base * 1e9))
            neg = fin & (d < float(-base))
            late = fin & (d > float((1 << 64) - 1 - base))
            keep = fin & ~neg & ~late
            ns = d[keep].astype(np.int64).view(np.uint64) + np.uint64(base % (1 << 64))
        else:                              # f64 seconds: nearest ns (int64 range)
            ok = fin & (np.abs(tf) < 9.2e9)
            v = seconds_to_ns(np.where(ok, tf, 0.0)) + np.int64(self.offset_ns)
            neg = (fin & ~ok & (tf < 0)) | (ok & (v < 0))
            late = fin & ~ok & (tf > 0)
            keep = ok & (v >= 0)
            ns = v[keep].view(np.uint64)
        self.negative += int(neg.sum())
        self.late += int(late.sum())
        return ns, keep

    def report(self) -> Dict[str, int]:
        return {"nan": self.nan, "inf": self.inf, "negative": self.negative, "too_late": self.late}



def raw_tokens(v: Any) -> Tokens:
    """Payload bytes as tokens (``read()`` gives an (n, L) uint8 matrix or an object array)."""
    if isinstance(v, np.ndarray) and v.dtype == np.uint8 and v.ndim == 2:
        n, L = v.shape
        return Tokens(np.ascontiguousarray(v).reshape(-1), np.arange(n, dtype=np.int64) * L, np.full(n, L, np.int64))
    items = [bytes(x) for x in v]
    lens = np.fromiter(map(len, items), np.int64, len(items))
    return Tokens(np.frombuffer(b"".join(items), np.uint8), np.cumsum(lens) - lens, lens)


def _obj_of_dicts(rows: List[Dict[str, Any]], layout: Any) -> Obj:
    """Variable-layout rows (dicts from ``Layout.unpack``) as columns."""
    fixed = layout.dtype
    kinds = {f["name"]: f.get("kind") for f in layout.fields}
    fields: List[Tuple[str, Any]] = []
    for f in layout.fields:
        name = f["name"]
        if f.get("variable"):
            sch = _VAR_SCHEMA.get(kinds[name], {"type": "string"})
            fields.append((name, ObjectColumn([r.get(name) for r in rows], sch)))
        elif fixed.names and name in fixed.names:
            ft = fixed[name]
            col = np.empty((len(rows),) + ft.shape, ft.base)
            for k, r in enumerate(rows):
                col[k] = r[name]
            fields.append((name, col))
    return Obj(fields)


class OdinSets:
    """ODIN set definitions of an archive, as :func:`fastodin.odin.decode` resolves them (the
    identifier records and the stored ``{"odin": "set"}`` metadata), to type each set channel."""

    def __init__(self, ar: Any) -> None:
        from ..odin.decode import StoredDefinitions, decode
        from ..odin.table import DEFAULT_COUNTS_PER_SECOND

        recs = list(ar.records(channels=["odin/set/*/identifier", "odin/types", 0]))
        res = decode(recs)
        self.history = dict(res.stream.history) if res.stream is not None else {}
        stored = StoredDefinitions()
        for r in recs:
            if r.id == 0:
                stored.add_payload(r.payload)
        self.stored = stored.by_set
        self.cps = stored.cps or DEFAULT_COUNTS_PER_SECOND

    def definition(self, sid: int, size: int) -> Any:
        for d in reversed(self.history.get(sid) or self.stored.get(sid) or []):
            if d.packet_size == size:
                return d
        return None


class ChannelPlan:
    """How one fastodin channel goes to MCAP."""

    def __init__(self, name: str, kind: str, **kw: Any) -> None:
        self.name = name
        self.kind = kind
        self.kw = kw
        self.ids: Dict[Any, int] = {}      # batch key -> MCAP / WebSocket channel id
        self.schemas: Dict[Any, bytes] = {}
        self.messages = 0
        self.encoding = ""


def mcap_channels(ar: Any) -> Dict[str, Dict[str, Any]]:
    """Channels that came from an MCAP import: archive channel name -> its MCAP definition."""
    tag = (ar.tags or {}).get(IMPORT_TAG)
    if not isinstance(tag, dict):
        return {}
    schemas = tag.get("schemas") or {}
    out: Dict[str, Dict[str, Any]] = {}
    for _cid, c in (tag.get("channels") or {}).items():
        if not isinstance(c, dict) or not isinstance(c.get("channel"), str):
            continue
        s = schemas.get(str(c.get("schema_id"))) if c.get("schema_id") else None
        try:
            sdata = base64.b64decode(s["data"]) if s else b""
        except (KeyError, TypeError, ValueError):
            continue
        out[c["channel"]] = {"topic": str(c.get("topic", c["channel"])),
                             "companion": c.get("companion") if isinstance(c.get("companion"), str) else None,
                             "message_encoding": str(c.get("message_encoding", RAW_ENCODING)),
                             "schema": (str(s.get("name", "")), str(s.get("encoding", "")), sdata) if s else None,
                             "metadata": {str(k): str(v) for k, v in (c.get("metadata") or {}).items()}}
    return out


def plan_channels(ar: Any, names: List[str], imported: Dict[str, Dict[str, Any]]) -> List[ChannelPlan]:
    plans = []
    for name in names:
        if name in imported:
            plans.append(ChannelPlan(name, "mcap", **imported[name]))
        elif name == "0":
            plans.append(ChannelPlan(name, "meta", topic=META_TOPIC))
        elif name.startswith("odin/set/") and not name.endswith("/identifier") and name[9:].startswith("0x"):
            try:
                plans.append(ChannelPlan(name, "odin-set", sid=int(name[9:], 16)))
            except ValueError:
                plans.append(ChannelPlan(name, "raw"))
        elif name.startswith("odin/event/"):
            plans.append(ChannelPlan(name, "odin-event"))
        elif name in ar.layouts and ar.layouts[name].fields:
            lay = ar.layouts[name]
            plans.append(ChannelPlan(name, "layout" if lay.fixed else "layout-var", layout=lay))
        else:
            plans.append(ChannelPlan(name, "raw"))
    return plans


def select_channels(ar: Any, ids: Optional[set]) -> Tuple[List[ChannelPlan], Optional[Dict[str, Any]], Optional[str]]:
    """The plans of the channels ``ids`` selects (None: all), id 0 first then by id; an import's
    companion and attachment channels are not channels of their own.  Returns (plans, the import
    tag or None, the attachment channel or None)."""
    names = sorted({ar.names.get(c, "0" if c == 0 else f"#{c}") for c in (ids if ids is not None else
                    {cid for e in ar.frames for cid in e.channels})}, key=lambda n: (n != "0", ar.ids.get(n, 0), n))
    imported = mcap_channels(ar)
    tag = (ar.tags or {}).get(IMPORT_TAG)
    tag = tag if isinstance(tag, dict) else None
    hidden = {c["companion"] for c in imported.values() if c["companion"]}
    att = tag.get("attachment_channel") if tag else None
    if not (att in names and isinstance(tag.get("attachments"), list)):   # type: ignore[union-attr]
        att = None
    names = [n for n in names if n not in hidden and n != att]
    return plan_channels(ar, names, imported), tag, att


def _packets(p: ChannelPlan) -> Optional[str]:
    """``Archive.read`` dtype giving the stored bytes: an ODIN set's packets (read() decodes them)."""
    return "u1" if p.kind == "odin-set" else None


def window_batches(ar: Any, plans: List[ChannelPlan], times: Times, odin: Optional[OdinSets],
                   lo: Optional[float], hi: Optional[float]) -> Iterator[Tuple[ChannelPlan, int, List[Batch]]]:
    """``(plan, records read, batches)`` of every plan with records in the window ``[lo, hi)``
    (raw times of an archive opened ``raw_time``); records whose time MCAP cannot hold are counted
    in ``times`` and left out."""
    for p in plans:
        sel = int(p.name) if p.name == "0" else p.name
        if not ar.channel_ids(sel):
            continue
        t, v = ar.read(sel, lo, hi, dtype=_packets(p))
        if not t.shape[0]:
            continue
        ns, keep = times.ns(t)
        if not keep.any():
            yield p, int(t.shape[0]), []
            continue
        comp = p.kw.get("companion")
        extra = ar.read(comp, lo, hi)[1] if comp in ar.ids else None
        yield p, int(t.shape[0]), channel_batches(p, ns, keep, v, odin, extra)


def time_windows(ar: Any, ids: Optional[set], start: Optional[float], end: Optional[float],
             target: int) -> List[Tuple[Optional[float], Optional[float]]]:
    """Half-open time windows covering ``[start, end)`` with about ``target`` records each."""
    frames = []
    for e in ar.frames:
        cnt = sum(c[0] for cid, c in e.channels.items() if ids is None or cid in ids)
        if cnt and e.t_min == e.t_min:
            frames.append((e.t_min, cnt))
    frames.sort()
    bounds: List[float] = []
    acc = 0
    for t0, cnt in frames:
        if acc >= target and (not bounds or t0 > bounds[-1]) and (start is None or t0 > start) and \
                (end is None or t0 < end) and math.isfinite(t0):
            bounds.append(t0)
            acc = 0
        acc += cnt
    edges: List[Optional[float]] = [start] + list(bounds) + [end]
    return list(zip(edges[:-1], edges[1:]))



class Batch:
    """Messages of one channel in one window: ``key`` (one MCAP/WebSocket channel per key),
    ``encoding``, ``schema`` ((name, encoding, data) or None), ``metadata``, ``ns`` (u64 log times),
    ``tokens`` (payloads), ``sequence`` (u32 or None), ``omitted`` (JSON values left out)."""

    __slots__ = ("key", "encoding", "schema", "metadata", "ns", "tokens", "sequence", "omitted", "publish")

    def __init__(self, key: Any, encoding: str, schema: Optional[Tuple[str, str, bytes]], metadata: Dict[str, str],
                 ns: np.ndarray, tokens: Tokens, sequence: Optional[np.ndarray] = None,
                 publish: Optional[np.ndarray] = None) -> None:
        self.key, self.encoding, self.schema, self.metadata = key, encoding, schema, metadata
        self.ns, self.tokens, self.sequence, self.omitted = ns, tokens, sequence, tokens.omitted
        self.publish = publish      # u64 publish times (None: the log times)


def _json(p: ChannelPlan, key: Any, obj: Obj, ns: np.ndarray, n: int, seq: Optional[np.ndarray] = None) -> Batch:
    sch = p.schemas.get(key)
    if sch is None:
        sch = p.schemas[key] = orjson.dumps(json_schema(obj, p.name))
    return Batch(key, "json", (p.name, "jsonschema", sch), {"fastodin.channel": p.name}, ns, encode(obj, n), seq)


def channel_batches(p: ChannelPlan, ns: np.ndarray, keep: np.ndarray, v: Any, odin: Optional[OdinSets],
                    extra: Any = None) -> List[Batch]:
    """The messages of one window of channel ``p``: ``ns`` the log times of the records ``keep``
    selects from ``v`` (``Archive.read`` values); ``extra``: the window's companion records of an
    imported channel (sequence, publish_time), one per record of ``v``."""
    kv = v[keep] if not keep.all() else v
    n = int(ns.shape[0])
    meta = {"fastodin.channel": p.name}
    if p.kind == "mcap":
        seq = pub = None
        if extra is not None and extra.shape[0] == keep.shape[0] and extra.dtype.names == ("sequence", "publish_time"):
            seq, pub = extra["sequence"][keep].astype(np.uint32), extra["publish_time"][keep].astype(np.uint64)
        return [Batch(None, p.kw["message_encoding"], p.kw["schema"], p.kw["metadata"], ns, raw_tokens(kv), seq, pub)]
    if p.kind == "raw":
        return [Batch(None, RAW_ENCODING, None, meta, ns, raw_tokens(kv))]
    if p.kind == "layout":
        return [_json(p, None, fields_of(kv), ns, n)]
    if p.kind == "layout-var":
        return [_json(p, None, _obj_of_dicts(list(kv), p.kw["layout"]), ns, n)]
    if p.kind == "meta":
        return [Batch(None, "json", (p.name, "jsonschema", _META_SCHEMA), meta, ns, _meta_tokens(raw_tokens(kv)))]
    if p.kind == "odin-event":
        return [_json(p, None, _event_obj(raw_tokens(kv)), ns, n)]
    return _odin_set(p, ns, kv, odin)


def _meta_tokens(raw: Tokens) -> Tokens:
    from ..metadata import decode_meta

    items = []
    for k in range(len(raw)):
        b = raw.message(k)
        try:
            m = decode_meta(b)
            m = m if isinstance(m, dict) else {"value": m}
            items.append(orjson.dumps(m, default=plain_value, option=orjson.OPT_NON_STR_KEYS))
        except (ValueError, TypeError):
            items.append(orjson.dumps({"base64": base64.b64encode(b).decode("ascii")}))
    lens = np.fromiter(map(len, items), np.int64, len(items))
    return Tokens(np.frombuffer(b"".join(items), np.uint8), np.cumsum(lens) - lens, lens)


def _event_obj(raw: Tokens) -> Obj:
    """ODIN EVENT packets (spec/odin.md): id, timestamp, sequence and the payload (base64)."""
    ev, ts, sq, pay = [], [], [], []
    for k in range(len(raw)):
        b = raw.message(k)
        if len(b) >= 10:
            _t, eid, _r, tick, seq = _EVENT.unpack_from(b, 0)
        else:
            eid = tick = seq = 0
        ev.append(eid)
        ts.append(tick)
        sq.append(seq)
        pay.append(b[10:])
    return Obj([("event_id", np.array(ev, np.uint16)), ("timestamp", np.array(ts, np.uint32)),
                ("sequence", np.array(sq, np.uint16)),
                ("payload", ObjectColumn(pay, {"type": "string", "contentEncoding": "base64"}))])


def _odin_set(p: ChannelPlan, ns: np.ndarray, kv: Any, odin: Optional[OdinSets]) -> List[Batch]:
    from ..odin.table import SetTable

    assert odin is not None
    raw = raw_tokens(kv)
    lens = raw.lens
    out = []
    for L in np.unique(lens).tolist():
        sel = np.flatnonzero(lens == L)
        d = odin.definition(p.kw["sid"], int(L))
        rows = raw.buf.reshape(-1)[(raw.starts[sel, None] + np.arange(L)).reshape(-1)].reshape(sel.shape[0], L) \
            if L else np.zeros((sel.shape[0], 0), np.uint8)
        if d is None:   # no definition of this size: the packets as they are
            m = sel.shape[0]
            tok = Tokens(rows.reshape(-1), np.arange(m, dtype=np.int64) * L, np.full(m, L, np.int64))
            out.append(Batch(("raw", L), RAW_ENCODING, None, {"fastodin.channel": p.name}, ns[sel], tok))
            continue
        tab = SetTable(d, rows.reshape(-1).view(d.packet_dtype()), odin.cps)
        obj = columns_obj(list(tab.columns(expand=False).items()))
        key = ("set", d.packet_size, tuple(str(x) for x in d.packet_dtype().descr))
        out.append(_json(p, key, obj, ns[sel], int(sel.shape[0]), tab.sequence.astype(np.uint32)))
    return out

