"""Archive (or raw ``.fastpack``) → MCAP: one MCAP channel per fastodin channel (spec/mcap.md §2).

Typed channels (layouts, ODIN sets and events, id-0 metadata) become JSON messages with a JSON
Schema naming every field; raw channels keep their bytes (schemaless, message encoding
``octet-stream``); channels that came from an MCAP file (``fastodin convert IN.mcap``) get their
topic, schema, encoding, metadata and bytes back.  ``log_time`` = ``publish_time`` = the record
time in ns (exact for archives with an integer-nanosecond time base); records whose time MCAP
cannot hold (NaN, ±inf, negative after ``time_offset``) are counted, not written.  The archive is
read in time windows of about :data:`WINDOW_RECORDS` records, so memory stays bounded.

>>> import os, tempfile, numpy as np
>>> from fastodin.archive import Writer
>>> d = tempfile.mkdtemp()
>>> with Writer(os.path.join(d, "a.fastpack.zst")) as w:
...     w.write_many(np.arange(3) * 0.5, "imu", np.ones((3, 2)))
>>> rep = export_mcap(os.path.join(d, "a.fastpack.zst"), os.path.join(d, "a.mcap"))
>>> rep["messages"], rep["channels"]["imu"]["encoding"]
(3, 'json')
"""
from __future__ import annotations

import base64
import math
import os
import struct
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import orjson

from ..errors import UsageError
from ..timebase import TimeBase, seconds_to_ns
from .jsonmsg import Obj, ObjectColumn, Tokens, columns_obj, encode, fields_of, json_schema, plain_value
from .writer import DEFAULT_CHUNK_SIZE, McapWriter

__all__ = ["export_mcap", "IMPORT_TAG", "RAW_ENCODING", "META_TOPIC", "WINDOW_RECORDS"]

#: the file tag an MCAP import writes (spec/mcap.md §5)
IMPORT_TAG = "mcap"
#: message encoding declared for channels whose payloads are opaque bytes
RAW_ENCODING = "octet-stream"
#: MCAP topic of the id-0 metadata records
META_TOPIC = "fastodin/metadata"
#: records read per time window
WINDOW_RECORDS = 1 << 18
_EVENT = struct.Struct("<BHBIH")
_I64 = (1 << 63) - 1
_VAR_SCHEMA = {"string": {"type": "string"}, "bytes": {"type": "string", "contentEncoding": "base64"},
               "audio": {"type": "array", "items": {"type": "number"}}}


class _Times:
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
        if self.tb is not None:            # integer ns since an exact origin
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


def _raw_tokens(v: Any) -> Tokens:
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
            fields.append((name, ObjectColumn([r.get(name) for r in rows], _VAR_SCHEMA.get(kinds[name], {"type": "string"}))))
        elif fixed.names and name in fixed.names:
            col = np.empty(len(rows), fixed[name]) if not fixed[name].shape else np.empty((len(rows),) + fixed[name].shape, fixed[name].base)
            for k, r in enumerate(rows):
                col[k] = r[name]
            fields.append((name, col))
    return Obj(fields)


class _OdinSets:
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


class _Channel:
    """How one fastodin channel goes to MCAP."""

    def __init__(self, name: str, kind: str, **kw: Any) -> None:
        self.name = name
        self.kind = kind
        self.kw = kw
        self.ids: Dict[Any, int] = {}      # layout key -> MCAP channel id
        self.messages = 0
        self.encoding = ""


def _mcap_channels(ar: Any) -> Dict[str, Dict[str, Any]]:
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
                             "message_encoding": str(c.get("message_encoding", RAW_ENCODING)),
                             "schema": (str(s.get("name", "")), str(s.get("encoding", "")), sdata) if s else None,
                             "metadata": {str(k): str(v) for k, v in (c.get("metadata") or {}).items()}}
    return out


def _plan(ar: Any, names: List[str], imported: Dict[str, Dict[str, Any]]) -> List[_Channel]:
    plans = []
    for name in names:
        if name in imported:
            plans.append(_Channel(name, "mcap", **imported[name]))
        elif name == "0":
            plans.append(_Channel(name, "meta", topic=META_TOPIC))
        elif name.startswith("odin/set/") and not name.endswith("/identifier") and name[9:].startswith("0x"):
            try:
                plans.append(_Channel(name, "odin-set", sid=int(name[9:], 16)))
            except ValueError:
                plans.append(_Channel(name, "raw"))
        elif name.startswith("odin/event/"):
            plans.append(_Channel(name, "odin-event"))
        elif name in ar.layouts and ar.layouts[name].fields:
            plans.append(_Channel(name, "layout" if ar.layouts[name].fixed else "layout-var", layout=ar.layouts[name]))
        else:
            plans.append(_Channel(name, "raw"))
    return plans


def _windows(ar: Any, ids: Optional[set], start: Optional[float], end: Optional[float],
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


def export_mcap(source: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"], *,
                channels: Any = None, start: Optional[float] = None, end: Optional[float] = None,
                time_offset: float = 0.0, force: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE,
                compression: str = "zstd", level: int = 3, window: int = WINDOW_RECORDS) -> Dict[str, Any]:
    """Write the archive ``source`` as the MCAP file ``out``; returns a report (``messages``,
    ``channels`` {name: {topic, encoding, messages}}, ``skipped`` {nan, inf, negative, too_late},
    ``not_finite_values`` (JSON values left out), ``chunks``, ``bytes``).

    ``channels``/``start``/``end`` select as ``Archive.records`` does (seconds); ``time_offset``
    (seconds) is added to every time first, e.g. to make negative times representable."""
    from ..archive.reader import open_archive

    if not isinstance(time_offset, (int, float)) or not abs(time_offset) < 9e9:
        raise UsageError(f"time_offset must be a number of seconds below 9e9 in size, not {time_offset!r}")
    with open_archive(source, raw_time=True) as ar:
        tb = ar.time_base
        raw_start = tb.raw_from_seconds(start) if tb is not None else start
        raw_end = tb.raw_from_seconds(end) if tb is not None else end
        ids = ar.channel_ids(channels)
        names = sorted({ar.names.get(c, "0" if c == 0 else f"#{c}") for c in (ids if ids is not None else
                        {cid for e in ar.frames for cid in e.channels})}, key=lambda n: (n != "0", ar.ids.get(n, 0), n))
        imported = _mcap_channels(ar)
        tag = (ar.tags or {}).get(IMPORT_TAG) if isinstance((ar.tags or {}).get(IMPORT_TAG), dict) else None
        att = tag.get("attachment_channel") if tag else None
        if att in names and isinstance(tag.get("attachments"), list):
            names.remove(att)       # an import's attachments go back as Attachment records
        else:
            att = None
        plans = _plan(ar, names, imported)
        times = _Times(tb, int(round(time_offset * 1e9)))
        odin = _OdinSets(ar) if any(p.kind == "odin-set" for p in plans) else None
        w = McapWriter(out, chunk_size=chunk_size, compression=compression, level=level, force=force,
                       profile=str(tag.get("profile", "")) if tag else "")
        omitted = 0
        seen = 0
        try:
            for lo, hi in _windows(ar, ids, raw_start, raw_end, window):
                for p in plans:
                    sel = int(p.name) if p.name == "0" else p.name
                    if not ar.channel_ids(sel):
                        continue
                    t, v = ar.read(sel, lo, hi)
                    if not t.shape[0]:
                        continue
                    seen += t.shape[0]
                    ns, keep = times.ns(t)
                    if not keep.any():
                        continue
                    omitted += _emit(w, p, ns, keep, v, odin)
                w.flush()
            if att is not None:
                _attachments(w, ar, att, tag["attachments"], raw_start, raw_end)
            _metadata(w, ar, tag)
            summary = w.close()
        except BaseException:
            w.abort()
            raise
        pids = ar.channel_ids([int(p.name) if p.name == "0" else p.name for p in plans]) or set()
        total = sum(c[0] for e in ar.frames for cid, c in e.channels.items() if cid in pids) \
            if start is None and end is None else seen
    skipped = times.report()
    skipped["nan"] += max(0, total - seen)   # NaN times: no time window holds them
    return {"path": os.fspath(out), "messages": summary["messages"], "chunks": summary["chunks"],
            "bytes": summary["bytes"], "skipped": skipped, "not_finite_values": omitted,
            "channels": {p.name: {"topic": p.kw.get("topic", p.name), "encoding": p.encoding or "",
                                  "messages": p.messages} for p in plans}}


def _register(w: McapWriter, p: _Channel, key: Any, encoding: str, schema: Optional[Tuple[str, str, bytes]],
              metadata: Optional[Dict[str, str]] = None) -> int:
    cid = p.ids.get(key)
    if cid is None:
        sid = w.add_schema(*schema) if schema is not None else 0
        meta = {"fastodin.channel": p.name} if metadata is None else metadata
        cid = p.ids[key] = w.add_channel(p.kw.get("topic", p.name), encoding, sid, meta)
        p.encoding = p.encoding or encoding
    return cid


def _json_channel(w: McapWriter, p: _Channel, key: Any, obj: Obj, title: str) -> int:
    if key not in p.ids:
        sch = orjson.dumps(json_schema(obj, title))
        return _register(w, p, key, "json", (title, "jsonschema", sch))
    return p.ids[key]


def _emit(w: McapWriter, p: _Channel, ns: np.ndarray, keep: np.ndarray, v: Any, odin: Optional[_OdinSets]) -> int:
    """Write one window of one channel; returns the JSON values left out (non-finite)."""
    kv = v[keep] if not keep.all() else v
    n = int(ns.shape[0])
    p.messages += n
    if p.kind == "mcap":
        cid = _register(w, p, None, p.kw["message_encoding"], p.kw["schema"], p.kw["metadata"])
        tok = _raw_tokens(kv)
    elif p.kind == "raw":
        cid = _register(w, p, None, RAW_ENCODING, None)
        tok = _raw_tokens(kv)
    elif p.kind == "layout":
        obj = fields_of(kv)
        cid = _json_channel(w, p, None, obj, p.name)
        tok = encode(obj, n)
    elif p.kind == "layout-var":
        obj = _obj_of_dicts(list(kv), p.kw["layout"])
        cid = _json_channel(w, p, None, obj, p.name)
        tok = encode(obj, n)
    elif p.kind == "meta":
        cid = _register(w, p, None, "json", (p.name, "jsonschema", orjson.dumps(
            {"title": "fastodin id-0 metadata", "type": "object", "properties": {}})))
        tok = _meta_tokens(_raw_tokens(kv))
    elif p.kind == "odin-event":
        obj = _event_obj(_raw_tokens(kv))
        cid = _json_channel(w, p, None, obj, p.name)
        tok = encode(obj, n)
    else:   # odin-set
        return _odin_set(w, p, ns, kv, odin)
    w.add_messages(cid, ns, tok.buf, tok.starts, tok.lens)
    return tok.omitted


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


def _odin_set(w: McapWriter, p: _Channel, ns: np.ndarray, kv: Any, odin: Optional[_OdinSets]) -> int:
    from ..odin.table import SetTable

    assert odin is not None
    raw = _raw_tokens(kv)
    lens = raw.lens
    omitted = 0
    for L in np.unique(lens).tolist():
        sel = np.flatnonzero(lens == L)
        d = odin.definition(p.kw["sid"], int(L))
        rows = np.ascontiguousarray(raw.buf.reshape(-1)[(raw.starts[sel, None] + np.arange(L)).reshape(-1)]) \
            .reshape(sel.shape[0], L) if L else np.zeros((sel.shape[0], 0), np.uint8)
        if d is None:   # no definition of this size: the packets as they are
            cid = _register(w, p, ("raw", L), RAW_ENCODING, None)
            w.add_messages(cid, ns[sel], rows.reshape(-1), np.arange(sel.shape[0]) * L, np.full(sel.shape[0], L))
            continue
        tab = SetTable(d, rows.reshape(-1).view(d.packet_dtype()), odin.cps)
        obj = columns_obj(list(tab.columns(expand=False).items()))
        cid = _json_channel(w, p, ("set", d.packet_size, tuple(str(x) for x in d.packet_dtype().descr)), obj, p.name)
        tok = encode(obj, int(sel.shape[0]))
        w.add_messages(cid, ns[sel], tok.buf, tok.starts, tok.lens, sequence=tab.sequence.astype(np.uint32))
        omitted += tok.omitted
    return omitted


def _attachments(w: McapWriter, ar: Any, channel: str, info: List[Any], start: Optional[float],
                 end: Optional[float]) -> None:
    """An import's attachments (records of ``channel``, their names and times in the tag)."""
    t, v = ar.read(channel)
    data = _raw_tokens(v)
    if len(data) != len(info):
        return
    for k, a in enumerate(info):
        if not isinstance(a, dict):
            continue
        if (start is not None and t[k] < start) or (end is not None and not t[k] < end):
            continue
        w.add_attachment(int(a.get("log_time", 0)), int(a.get("create_time", 0)), str(a.get("name", "")),
                         str(a.get("media_type", "")), data.message(k))


def _metadata(w: McapWriter, ar: Any, tag: Optional[Dict[str, Any]]) -> None:
    """File and stream tags as Metadata records; an import's own metadata records back as they were."""
    from .. import __version__

    restored = set()
    if tag:
        for item in tag.get("metadata") or []:
            if isinstance(item, list) and len(item) == 3 and isinstance(item[1], str) and isinstance(item[2], dict):
                restored.add(item[0])
                w.add_metadata(item[1], {str(k): str(v) for k, v in item[2].items()})
    tags = {k: v for k, v in (ar.tags or {}).items() if k != IMPORT_TAG and k not in restored}
    if tags:
        w.add_metadata("fastodin.tags", {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in tags.items()})
    for sid, m in sorted((ar.streams or {}).items()):
        st = m.get("tags") or {}
        if st:
            w.add_metadata(f"fastodin.stream/{sid}", {str(k): v if isinstance(v, str) else orjson.dumps(v).decode()
                                                     for k, v in st.items()})
    if not tag:     # (an import's own metadata records went back above, unchanged)
        w.add_metadata("fastodin", {"source": os.path.basename(ar.path), "fastodin": __version__})

