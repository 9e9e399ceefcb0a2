"""Recordings and live captures as Foxglove channels: replay an archive, or tee a recording.

:class:`ChannelMap` turns the typed message batches of :mod:`fastodin.mcap.channels` into Foxglove
WebSocket channels (JSON with its JSON Schema; an imported MCAP channel in its own encoding when
Foxglove reads it; opaque bytes wrapped as ``{"size", "data": base64}`` JSON); :func:`replay_archive`
paces an archive out at its recorded speed × ``speed``; :class:`LiveTee` wraps an archive writer so
that what a recording writes is also served live, without ever making the recorder wait.

>>> ChannelMap.__name__
'ChannelMap'
"""
from __future__ import annotations

import base64
import collections
import math
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import orjson

from ..mcap.channels import (RAW_ENCODING, Batch, ChannelPlan, OdinSets, Times, channel_batches, select_channels,
                             time_windows, window_batches)
from ..mcap.jsonmsg import Tokens
from .protocol import ws_schema
from .server import FoxgloveServer

__all__ = ["ChannelMap", "replay_archive", "LiveTee"]

#: encodings Foxglove decodes over the WebSocket (with a schema; json also without)
_WS_ENCODINGS = ("json", "protobuf", "flatbuffer", "ros1", "cdr")
_RAW_SCHEMA = orjson.dumps({"title": "bytes", "type": "object", "properties": {
    "size": {"type": "integer"}, "data": {"type": "string", "contentEncoding": "base64"}},
    "required": ["size", "data"]}).decode()
_FREE_SCHEMA = '{"type": "object", "properties": {}}'


def _wrap_raw(tok: Tokens) -> Tokens:
    items = [orjson.dumps({"size": int(n), "data": base64.b64encode(tok.message(k)).decode("ascii")})
             for k, n in enumerate(tok.lens.tolist())]
    lens = np.fromiter(map(len, items), np.int64, len(items))
    return Tokens(np.frombuffer(b"".join(items), np.uint8), np.cumsum(lens) - lens, lens)


class ChannelMap:
    """(fastodin channel, batch key) -> Foxglove channel id, created (advertised) on first use."""

    def __init__(self, server: FoxgloveServer) -> None:
        self.server = server
        self.ids: Dict[Tuple[str, Any], Tuple[int, bool]] = {}    # -> (ws channel id, wrap raw)

    def channel(self, name: str, topic: str, b: Batch) -> Tuple[int, bool]:
        key = (name, b.key)
        got = self.ids.get(key)
        if got is None:
            enc = b.encoding
            if b.schema is not None and enc in _WS_ENCODINGS:
                sname, senc, sdata = b.schema
                got = (self.server.add_channel(topic, enc, sname, ws_schema(senc, sdata), senc or None), False)
            elif enc == "json":
                got = (self.server.add_channel(topic, "json", topic, _FREE_SCHEMA, "jsonschema"), False)
            else:       # opaque bytes (or an encoding Foxglove cannot take without a schema)
                got = (self.server.add_channel(topic, "json", f"bytes ({enc or RAW_ENCODING})", _RAW_SCHEMA,
                                               "jsonschema"), True)
            self.ids[key] = got
        return got

    def publish(self, name: str, topic: str, b: Batch) -> Tuple[int, List[Tuple[int, int, bytes]]]:
        """(ws channel, [(ns, ws channel, payload)]) of a batch, ready to send in time order."""
        cid, wrap = self.channel(name, topic, b)
        tok = _wrap_raw(b.tokens) if wrap else b.tokens
        buf = tok.buf.tobytes() if isinstance(tok.buf, np.ndarray) else bytes(tok.buf)
        return cid, [(t, cid, buf[s:s + n]) for t, s, n in zip(b.ns.tolist(), tok.starts.tolist(), tok.lens.tolist())]


def replay_archive(path: str, server: FoxgloveServer, *, channels: Any = None, start: Optional[float] = None,
                   end: Optional[float] = None, speed: float = 1.0, wait: Optional[float] = None,
                   on_ready: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """Serve the archive at ``path`` through ``server``: every selected channel is advertised
    first; then (once a client has subscribed, if ``wait`` is given: at most ``wait`` seconds) the
    messages go out in time order at recorded speed × ``speed`` (0: as fast as the clients
    take them).  Returns ``{"messages", "published", "dropped", "clients"}``."""
    from ..archive.reader import open_archive

    with open_archive(path, raw_time=True) as ar:
        tb = ar.time_base
        lo0 = tb.raw_from_seconds(start) if tb is not None else start
        hi0 = tb.raw_from_seconds(end) if tb is not None else end
        ids = ar.channel_ids(channels)
        plans = select_channels(ar, ids)[0]
        odin = OdinSets(ar) if any(p.kind == "odin-set" for p in plans) else None
        times = Times(tb, 0)
        cmap = ChannelMap(server)
        # advertise every channel from its first record, before anything is sent
        for p in plans:
            sel = int(p.name) if p.name == "0" else p.name
            first = min((c[2] for e in ar.frames for cid, c in e.channels.items()
                         if cid in (ar.channel_ids(sel) or ()) and c[2] == c[2]), default=None)
            if first is None:
                continue
            t_lo = first if lo0 is None else max(first, lo0)
            t, v = ar.read(sel, t_lo, np.nextafter(t_lo, math.inf) if math.isfinite(t_lo) else None,
                           dtype="u1" if p.kind == "odin-set" else None)    # the packets: batches type them
            if t.shape[0]:
                ns, keep = times.ns(t)
                if keep.any():
                    for b in channel_batches(p, ns, keep, v, odin):
                        cmap.channel(p.name, p.kw.get("topic", p.name), b)
        if on_ready is not None:
            on_ready()
        if wait is not None:
            server.subscribed.wait(None if wait == math.inf else wait)
            time.sleep(0.2)     # the client's other subscriptions of the same moment
        times = Times(tb, 0)
        sent = 0
        t0w: Optional[float] = None
        ns0 = 0
        last_time = 0.0
        for lo, hi in time_windows(ar, ids, lo0, hi0, 1 << 16):
            items: List[Tuple[int, int, bytes]] = []
            for p, _n, batches in window_batches(ar, plans, times, odin, lo, hi):
                for b in batches:
                    items.extend(cmap.publish(p.name, p.kw.get("topic", p.name), b)[1])
            items.sort(key=lambda x: x[0])
            for ns_k, cid, payload in items:
                if t0w is None:
                    t0w, ns0 = time.monotonic(), ns_k
                if speed > 0:
                    due = t0w + (ns_k - ns0) / 1e9 / speed
                    d = due - time.monotonic()
                    if d > 0.0005:
                        time.sleep(d)
                else:
                    _drain(server)
                now = time.monotonic()
                if now - last_time >= 0.05:
                    server.broadcast_time(ns_k)
                    last_time = now
                server.publish(cid, ns_k, payload)
                sent += 1
        _drain(server, 0, timeout=5.0)
    st = server.stats()
    return {"messages": sent, "published": st["sent"], "dropped": st["dropped"], "clients": st["connections"]}


def _drain(server: FoxgloveServer, level: Optional[int] = None, timeout: float = 2.0) -> None:
    """Wait (at most ``timeout`` s) while a client's queue is above ``level`` (default: half full)."""
    lim = server.queue_size // 2 if level is None else level
    end = time.monotonic() + timeout
    while server.backlog() > lim and time.monotonic() < end:
        time.sleep(0.002)


class LiveTee:
    """An archive writer that also serves what is written, live: ``write()`` hands the record to the
    writer and, when a client is subscribed to its channel, appends it to a bounded queue that a
    publisher thread turns into Foxglove messages every ``interval`` seconds (dropping, and
    counting, what does not fit: the recorder never waits).  Every other attribute is the writer's."""

    def __init__(self, writer: Any, server: FoxgloveServer, *, interval: float = 0.05,
                 max_pending: int = 1 << 16, previous: Optional["LiveTee"] = None) -> None:
        self._w = writer
        self.server = server
        self._pending: "collections.deque[Tuple[float, str, bytes]]" = collections.deque()
        self._max = max_pending
        self.dropped = 0
        self._known: Dict[str, Any] = {}
        self._defs: Dict[str, Any] = {}      # ODIN set channel -> SetDef in force
        self._cps = 1e6
        self._cmap = ChannelMap(server)
        self._ws: Dict[str, set] = {}        # channel -> its Foxglove channel ids
        self._quiet: set = set()             # channels advertised that no client watches
        if previous is not None:     # a rotated part: the same Foxglove channels go on
            self._cmap, self._ws, self._known = previous._cmap, previous._ws, previous._known
            self._defs, self._cps = previous._defs, previous._cps
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="fastodin-foxglove-tee", daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._w, name)

    def write(self, t: float, name: Any, payload: Any) -> None:
        self._w.write(t, name, payload)
        self._tap(t, name, payload)

    def write_batch(self, times: Any, names: Any, payloads: Any) -> None:
        wb = getattr(self._w, "write_batch", None)
        if wb is not None:
            wb(times, names, payloads)
        else:
            for t, n, p in zip(times, names, payloads):
                self._w.write(t, n, p)
        for t, n, p in zip(times, names, payloads):
            self._tap(t, n, p)

    def _tap(self, t: float, name: Any, payload: Any) -> None:
        if name == 0 or (name not in self._quiet and len(self._pending) < self._max):
            self._pending.append((t, name, bytes(payload)))
        elif name not in self._quiet:
            self.dropped += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._w.close()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._flush_safely()
        self._flush_safely()

    def _flush_safely(self) -> None:
        try:
            self._flush()
        except Exception:  # noqa: BLE001 - a live-view problem never touches the recording
            pass

    def _flush(self) -> None:
        """Encode what was written since the last flush (channels nobody watches are skipped once
        they are advertised) and publish it."""
        items = []
        while self._pending:
            items.append(self._pending.popleft())
        watched = self.server.subscribed_channels()
        self._quiet = {n for n, ids in self._ws.items() if not (ids & watched)}
        by: Dict[str, List[Tuple[float, bytes]]] = collections.defaultdict(list)
        for t, name, p in items:
            if name == 0:
                self._meta(p)
            elif name not in self._quiet:
                by[name].append((t, p))
        for name, recs in by.items():
            plan = self._known.get(name)
            if plan is None:
                plan = self._known[name] = self._plan(name)
            if name not in self._ws:          # first sighting: advertise from one record
                recs = recs[-1:]
            tt = np.maximum(np.array([r[0] for r in recs], np.float64), 0.0)
            ns, keep = Times(None, 0).ns(tt)
            if not keep.any():
                continue
            if plan.kind == "layout":
                lay = plan.kw["layout"]
                good = np.array([len(r[1]) == lay.dtype.itemsize for r in recs]) & keep
                if not good.any():
                    continue
                vals = np.frombuffer(b"".join(r[1] for r, g in zip(recs, good.tolist()) if g), lay.dtype)
                ns = ns[good[keep]]
                batches = channel_batches(plan, ns, np.ones(ns.shape[0], bool), vals, None)
            else:
                v = np.empty(len(recs), object)
                v[:] = [r[1] for r in recs]
                odin: Any = _LiveSets(self._defs, self._cps, name) if plan.kind == "odin-set" else None
                batches = channel_batches(plan, ns, keep, v, odin)
            for b in batches:
                cid, msgs = self._cmap.publish(name, name, b)
                self._ws.setdefault(name, set()).add(cid)
                for ns_k, c, payload in msgs:
                    self.server.publish(c, ns_k, payload)

    def _plan(self, name: str) -> Any:
        lay = getattr(self._w, "_layouts", {}).get(name)
        if name.startswith("odin/set/") and not name.endswith("/identifier"):
            try:
                return ChannelPlan(name, "odin-set", sid=int(name[9:], 16))
            except ValueError:
                pass
        if name.startswith("odin/event/"):
            return ChannelPlan(name, "odin-event")
        if lay is not None and lay.fields and lay.fixed:
            return ChannelPlan(name, "layout", layout=lay)
        return ChannelPlan(name, "raw")

    def _meta(self, payload: bytes) -> None:
        from ..metadata import decode_meta
        from ..odin.decode import stored_set_def

        try:
            m = decode_meta(payload)
        except Exception:  # noqa: BLE001
            return
        if isinstance(m, dict) and m.get("odin") == "set" and isinstance(m.get("channel"), str):
            try:
                self._defs[m["channel"]] = stored_set_def(m)
            except Exception:  # noqa: BLE001 - an unusable definition: the channel stays raw
                pass
            if m.get("counts_per_second"):
                self._cps = float(m["counts_per_second"])


class _LiveSets:
    """The :class:`~fastodin.mcap.channels.OdinSets` interface over the definitions seen live."""

    def __init__(self, defs: Dict[str, Any], cps: float, name: str) -> None:
        self.defs, self.cps, self.name = defs, cps, name

    def definition(self, sid: int, size: int) -> Any:
        d = self.defs.get(self.name)
        return d if d is not None and d.packet_size == size else None
