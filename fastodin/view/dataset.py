"""The recordings a viewer serves: channels, fields, summaries, envelopes, events, growth.

A :class:`ViewFile` is one file: the archive its :class:`~fastodin.view.follow.Follower` opened,
the typed fields of each channel (:mod:`fastodin.view.fields`), the summary of every plottable
field (:mod:`fastodin.view.summary`; built in one pass on first open, loaded from the cache when
the file did not change, extended as the file grows), and reads of a channel's records by index
(frames decoded on demand, a few kept).  A :class:`ViewSet` is the files of one viewer; with
several files each channel name is prefixed by its file's stem and a colon (``run1:imu``).

>>> import os, tempfile, numpy as np, fastodin
>>> d = tempfile.mkdtemp(); path = os.path.join(d, "v.fastpack.zst")
>>> with fastodin.Writer(path) as w:
...     w.write_many(np.arange(500) * 0.01, "p", np.arange(500.0))
>>> vs = ViewSet([path], cache_dir=os.path.join(d, "cache")); vs.build()
>>> e = vs.series("p", "value", None, None, 10)
>>> e["n"].tolist() == [50] * 10, e["min"][:2].tolist(), e["max"][-1].item()
(True, [0.0, 50.0], 499.0)
>>> vs.close()
"""
from __future__ import annotations

import collections
import concurrent.futures
import math
import os
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from ..errors import DataError, FastOdinError, UsageError
from . import summary as sm
from .envelope import Envelope, empty, envelope, runs
from .fields import ChannelFields, Field, RawFields, channel_fields
from .follow import Follower, StatFollower

__all__ = ["ViewFile", "ViewSet", "ViewRequestError", "file_stem", "MAX_POINTS", "MAX_UNORDERED",
           "DEFAULT_POINTS"]

#: Largest ``points`` a series request may ask for.
MAX_POINTS = 20000
DEFAULT_POINTS = 1000
#: Records of a channel that is not in time order read at most for one window.
MAX_UNORDERED = 4_000_000
#: Decoded frames kept for record reads (bytes of decoded values, about).
FRAME_CACHE_BYTES = 64 << 20


class ViewRequestError(UsageError):
    """A request the viewer cannot answer: ``status`` is its HTTP status (400: bad request)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def file_stem(path: str) -> str:
    """The file's name without its recording suffix (``.fastpack.zst``, ``.fastpack``, ``.zst``, ``.jpack``).

    >>> file_stem("/d/run-1.fastpack.zst"), file_stem("x.fastpack"), file_stem("web/")
    ('run-1', 'x', 'web')
    """
    name = os.path.basename(os.path.normpath(path))
    for suf in (".fastpack.zst", ".fastpack", ".zst", ".jpack"):
        if name.endswith(suf) and len(name) > len(suf):
            return name[:-len(suf)]
    return name


def _sig(e: Any) -> Tuple[int, int, int, int]:
    return (e.data_offset, e.compressed_size, e.decompressed_size, e.n_records)


class _ChannelMap:
    """Where a channel's records are: the frames holding it and the index of its first record in
    each (frames that could not be read are left out)."""

    __slots__ = ("frames", "starts", "n")

    def __init__(self, ar: Any, name: str, bad: Iterable[int]) -> None:
        ids = ar.channel_ids(name) or set()
        skip = set(bad)
        fr: List[Any] = []
        st: List[int] = []
        n = 0
        for e in ar.frames:
            if e.frame_no in skip:
                continue
            c = 0
            for cid in ids:
                got = e.channels.get(cid)
                if got is not None:
                    c += got[0]
            if c:
                fr.append(e)
                st.append(n)
                n += c
        self.frames = fr
        self.starts = np.array(st, np.int64)
        self.n = n


class _State:
    """What one look at the file gave: the archive, its channels' fields and record maps."""

    def __init__(self, ar: Any, fields: Dict[str, ChannelFields], bad: Iterable[int]) -> None:
        self.ar = ar
        self.fields = fields
        self.bad = set(bad)
        self.sig = [_sig(e) for e in ar.frames]
        self.info = ar.info()
        self._maps: Dict[str, _ChannelMap] = {}

    def map(self, name: str) -> _ChannelMap:
        m = self._maps.get(name)
        if m is None:
            m = self._maps[name] = _ChannelMap(self.ar, name, self.bad)
        return m


class ViewFile:
    """One recording served by the viewer (see the module docstring).

    ``prefix``: put before every channel name (``"stem:"`` with several files, else ``""``).
    ``follower``: how growth is seen (default :class:`StatFollower`).  ``cache_dir``: where
    summaries are cached (None: the default of :func:`fastodin.view.summary.cache_path`; False:
    no cache).  ``info``: ``info(archive) -> dict`` for the info panel (default ``Archive.info``).
    """

    def __init__(self, path: str, prefix: str = "", *, follower: Optional[Follower] = None,
                 cache_dir: Any = None, info: Optional[Callable[[Any], Dict[str, Any]]] = None) -> None:
        self.path = path
        self.prefix = prefix
        self.stem = file_stem(path)
        self.follower = follower or StatFollower(path)
        self.cache_dir = cache_dir
        self._info_fn = info
        self._lock = threading.RLock()
        self.ready = threading.Event()
        self.generation = 0
        self.notes: List[str] = []
        self.error: Optional[str] = None
        self._summ: Dict[str, sm.ChannelSummary] = {}
        self._events: List[Tuple[float, str, bytes, int]] = []
        self._events_dropped = 0
        self._frames: "collections.OrderedDict[Tuple[int, int, str], Tuple[Any, int]]" = collections.OrderedDict()
        self._frames_bytes = 0
        self._info_cache: Optional[Tuple[int, Dict[str, Any]]] = None
        self._odin_fields: Dict[str, ChannelFields] = {}
        self.cache_file: Optional[str] = None
        self.from_cache = False
        self._st = _State(self.follower.open(), {}, ())
        self._st.fields = self._fields_of(self._st.ar)

    # ---- fields -------------------------------------------------------------------------------
    def _fields_of(self, ar: Any) -> Dict[str, ChannelFields]:
        """Fields of every channel; an ODIN set's definition is learned once (it reads records)."""
        prev = self._st.fields if hasattr(self, "_st") else {}
        out: Dict[str, ChannelFields] = {}
        for name in ar.info()["channels"]:
            old = prev.get(name)
            if old is not None and old.kind == "odin-set" and old.fields:
                out[name] = old
            else:
                out[name] = channel_fields(ar, name) if name != "0" else RawFields()
        return out

    def _plottable(self, st: _State) -> Dict[str, List[Field]]:
        return {n: f.fields for n, f in st.fields.items() if f.fields}

    # ---- building -----------------------------------------------------------------------------
    def build(self, progress: Optional[Callable[[float, Optional[float]], None]] = None) -> None:
        """Load the summary from the cache, or build it in one pass over the file (``progress(done,
        total)`` in decompressed bytes); then the file is ready for queries."""
        try:
            with self._lock:
                st = self._st
                key = None
                if self.cache_dir is not False:
                    self.cache_file = sm.cache_path(self.path, self.cache_dir or None)
                    try:
                        key = sm.file_key(self.path)
                    except OSError:
                        key = None
                got = sm.load(self.cache_file, key, self._plottable(st)) if key and self.cache_file else None
                if got is not None:
                    self._summ, ev, self._events_dropped = got
                    self._events = list(ev)
                    self.from_cache = True
                    for name, s in self._summ.items():
                        self._complete_tail(st, name, s)
                else:
                    self._summ = {n: sm.ChannelSummary(n, f) for n, f in self._plottable(st).items()}
                    self._events, self._events_dropped = [], 0
                    self._pass(st, list(st.ar.frames), set(self._summ), progress)
                    if key and self.cache_file and self._stable(key):
                        try:
                            sm.save(self.cache_file, key, self._summ, self._events,
                                    self._events_dropped)
                        except OSError as exc:
                            self.notes.append(f"summary not cached ({exc.strerror or exc}): {self.cache_file}")
                self.generation += 1
        except FastOdinError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.ready.set()

    def _stable(self, key: Dict[str, Any]) -> bool:
        """Did the file stay as it was while it was summarised?"""
        try:
            return sm.file_key(self.path) == key
        except OSError:
            return False

    def _complete_tail(self, st: _State, name: str, s: sm.ChannelSummary) -> None:
        """Add the records after the last whole block (not cached, or forgotten by a truncate)."""
        if not s.ordered:
            s.n = st.map(name).n
            return
        n = st.map(name).n
        if s.n < n:
            t, vals, miss = self._read_all(st, name, s.n, n)
            s.add(t, vals, miss)

    def _pass(self, st: _State, frames: List[Any], names: set, progress: Any = None, events: bool = True) -> None:
        """One pass over ``frames``: each frame decompressed once and split into the typed values of
        ``names`` on two helper threads (a few frames ahead: memory stays bounded), the values added
        to the summaries in file order, the ODIN events collected (``events``).  A frame that
        cannot be read is left out of every channel (``notes`` says which)."""
        evs = [n for n, f in st.fields.items() if f.kind == "odin-event"] if events else []
        want = sorted(names) + evs
        if not want or not frames:
            return
        total = float(sum(e.decompressed_size for e in frames))
        done = 0.0

        def work(e: Any) -> Tuple[Optional[List[Any]], Optional[BaseException]]:
            out: List[Any] = []
            try:
                for _e, chans in st.ar.chunks(want, frames=[e]):
                    for name, (t, rows) in chans.items():
                        f = st.fields[name]
                        if f.kind == "odin-event":
                            out.append((name, np.array(t), [bytes(p) for p in rows], None, True))
                        elif name in names:
                            vals, miss = f.values(rows)
                            out.append((name, t, {k: np.ascontiguousarray(v) for k, v in vals.items()}, miss, False))
            except DataError as exc:
                return None, exc
            return out, None

        def apply(e: Any, got: Optional[List[Any]], exc: Optional[BaseException]) -> None:
            nonlocal done
            if got is None:
                st.bad.add(e.frame_no)
                st._maps.clear()
                self.notes.append(f"{e.describe()} left out: {exc}")
            else:
                for name, t, vals, miss, is_event in got:
                    if is_event:
                        self._add_events(name, t, vals, e.frame_no)
                    else:
                        self._summ[name].add(t, vals, miss)
            done += e.decompressed_size
            if progress is not None:
                progress(done, total)

        if len(frames) <= 2:
            for e in frames:
                apply(e, *work(e))
            return
        with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="fastodin-view-summary") as pool:
            pending: "collections.deque[Tuple[Any, Any]]" = collections.deque()
            for e in frames:
                pending.append((e, pool.submit(work, e)))
                if len(pending) >= 4:
                    e0, f0 = pending.popleft()
                    apply(e0, *f0.result())
            while pending:
                e0, f0 = pending.popleft()
                apply(e0, *f0.result())

    def _add_events(self, name: str, t: np.ndarray, rows: Any, frame_no: int) -> None:
        room = sm.MAX_EVENTS - len(self._events)
        k = len(t)
        if room > 0:
            for ti, p in zip(t[:room].tolist(), list(rows[:room])):
                self._events.append((ti, name, bytes(p), frame_no))
        self._events_dropped += max(0, k - max(room, 0))

    # ---- growth -------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Look for growth (the follower); True when the file changed and the new records are in."""
        if not self.ready.is_set() or self.error:
            return False
        ar = self.follower.poll()
        if ar is None:
            return False
        with self._lock:
            old = self._st
            new_sig = [_sig(e) for e in ar.frames]
            j = 0
            for a, b in zip(old.sig, new_sig):
                if a != b:
                    break
                j += 1
            st = _State(ar, self._fields_of(ar), {b for b in old.bad if b < j})
            plot = self._plottable(st)
            keep = {e.frame_no for e in ar.frames[:j]}
            # channels whose fields changed (or that appeared with fields) are summarised anew
            fresh = set()
            for name, flds in plot.items():
                s = self._summ.get(name)
                if s is None or s.fields != flds:
                    self._summ[name] = sm.ChannelSummary(name, flds)
                    fresh.add(name)
            for name in [n for n in self._summ if n not in plot]:
                del self._summ[name]
            if j < len(old.sig):
                # a summarised frame changed (a raw file's last chunk grew): forget it and the rest
                for name, s in self._summ.items():
                    if name not in fresh:
                        n_keep = _records_in(st, name, keep)
                        s.truncate(n_keep)
                        self._complete_tail_upto(st, name, s, n_keep)
                self._events = [e for e in self._events if e[3] in keep]
            if fresh:
                self._pass(st, list(ar.frames[:j]), fresh, events=False)
            self._pass(st, list(ar.frames[j:]), set(self._summ))
            self._st = st
            self._frames.clear()
            self._frames_bytes = 0
            self.generation += 1
            return True

    def _complete_tail_upto(self, st: _State, name: str, s: sm.ChannelSummary, n: int) -> None:
        if s.ordered and s.n < n:
            t, vals, miss = self._read_all(st, name, s.n, n)
            s.add(t, vals, miss)

    # ---- reading records ------------------------------------------------------------------------
    def _decoded(self, st: _State, e: Any, name: str) -> Tuple[np.ndarray, Dict[str, np.ndarray], Optional[np.ndarray]]:
        key = (id(st.ar), e.frame_no, name)
        got = self._frames.get(key)
        if got is not None:
            self._frames.move_to_end(key)
            return got[0]
        t = np.empty(0)
        vals: Dict[str, np.ndarray] = {}
        miss = None
        for _e, chans in st.ar.chunks(name, frames=[e]):
            t, rows = chans[name]
            vals, miss = st.fields[name].values(rows)
            vals = {k: np.array(v) for k, v in vals.items()}   # own copies: the frame data can go
            t = np.array(t)
        item = (t, vals, miss)
        size = t.nbytes + sum(v.nbytes for v in vals.values()) + 256
        self._frames[key] = (item, size)
        self._frames_bytes += size
        while self._frames_bytes > FRAME_CACHE_BYTES and len(self._frames) > 1:
            _k, (_i, sz) = self._frames.popitem(last=False)
            self._frames_bytes -= sz
        return item

    def _read_all(self, st: _State, name: str, i: int, j: int
                  ) -> Tuple[np.ndarray, Dict[str, np.ndarray], Optional[np.ndarray]]:
        """Records ``i..j-1`` of channel ``name`` (file order): times, every field, missing mask."""
        m = st.map(name)
        flds = [f.name for f in st.fields[name].fields]
        if j <= i:
            return np.empty(0), {f: np.empty(0) for f in flds}, None
        k = max(0, int(np.searchsorted(m.starts, i, "right")) - 1)
        ts: List[np.ndarray] = []
        vs: Dict[str, List[np.ndarray]] = {f: [] for f in flds}
        ms: List[Optional[np.ndarray]] = []
        while k < len(m.frames) and m.starts[k] < j:
            s0 = int(m.starts[k])
            t, vals, miss = self._decoded(st, m.frames[k], name)
            a, b = max(0, i - s0), min(t.shape[0], j - s0)
            ts.append(t[a:b])
            for f in flds:
                vs[f].append(vals[f][a:b])
            ms.append(None if miss is None else miss[a:b])
            k += 1
        tt = np.concatenate(ts) if ts else np.empty(0)
        mm = None
        if any(x is not None for x in ms):
            mm = np.concatenate([np.zeros(p.shape[0], bool) if x is None else x for x, p in zip(ms, ts)])
        return tt, {f: (np.concatenate(v) if v else np.empty(0)) for f, v in vs.items()}, mm

    # ---- queries ------------------------------------------------------------------------------
    def wait(self, timeout: Optional[float] = None) -> None:
        """Wait for the summary (build on another thread); ViewRequestError 503 on timeout or
        when the build failed."""
        if not self.ready.wait(timeout):
            raise ViewRequestError(f"{self.path}: the summary is still being built; try again", 503)
        if self.error:
            raise ViewRequestError(f"{self.path}: cannot be summarised: {self.error}", 500)

    def field_of(self, channel: str, field: str) -> Field:
        st = self._st
        f = st.fields.get(channel)
        if f is None:
            raise ViewRequestError(f"unknown channel {self.prefix + channel!r}")
        for x in f.fields:
            if x.name == field:
                return x
        known = ", ".join(x.name for x in f.fields[:20]) or "none: a raw channel is listed, not plotted"
        raise ViewRequestError(f"channel {self.prefix + channel!r} has no field {field!r} (fields: {known})")

    def series(self, channel: str, field: str, start: Optional[float], end: Optional[float], points: int) -> Envelope:
        """The envelope of ``field`` of ``channel`` over ``start <= time < end`` (None: unbounded)."""
        self.wait(600)
        with self._lock:
            fld = self.field_of(channel, field)
            st = self._st
            s = self._summ.get(channel)
            m = st.map(channel)
            if s is None or m.n == 0:
                return empty(fld.stat)
            if s.ordered:
                def read(i: int, j: int) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
                    t, vals, miss = self._read_all(st, channel, i, j)
                    return t, vals[field], miss
                return envelope(s, m.n, field, read, start, end, points)
            return self._unordered(st, channel, fld, start, end, points)

    def _unordered(self, st: _State, channel: str, fld: Field, start: Optional[float], end: Optional[float],
                   points: int) -> Envelope:
        """A channel not in time order: the window's records read, sorted by time (stable), cut."""
        ids = st.ar.channel_ids(channel) or set()
        total = 0
        for e in st.ar.frames:
            for cid in ids:
                c = e.channels.get(cid)
                if c is not None and (start is None or not c[3] < start) and (end is None or not c[2] >= end):
                    total += c[0]
        if total > MAX_UNORDERED:
            raise ViewRequestError(f"channel {self.prefix + channel!r} is not in time order in the file: a window "
                                   f"of it is read whole, and this one may hold {total} records > "
                                   f"MAX_UNORDERED={MAX_UNORDERED}; zoom in", 413)
        ts, vs, ms = [], [], []
        f = st.fields[channel]
        for e, chans in st.ar.chunks(channel, start, end):
            if e.frame_no in st.bad:
                continue
            t, rows = chans[channel]
            vals, miss = f.values(rows)
            ts.append(np.asarray(t))
            vs.append(np.asarray(vals[fld.name]))
            ms.append(np.zeros(t.shape[0], bool) if miss is None else miss)
        if not ts:
            return empty(fld.stat)
        t = np.concatenate(ts)
        v = np.concatenate(vs)
        mm = np.concatenate(ms)
        keep = ~np.isnan(t)
        order = np.argsort(t[keep], kind="stable")
        t, v, mm = t[keep][order], v[keep][order], mm[keep][order]
        return runs(t, v, mm if mm.any() else None, points, "float" if fld.stat.kind == "f" else "int", fld.stat)

    def channels(self) -> List[Dict[str, Any]]:
        """The ``/api/channels`` entries of this file."""
        st = self._st
        out = []
        for name, c in st.info["channels"].items():
            f = st.fields.get(name) or RawFields()
            s = self._summ.get(name)
            out.append({"name": self.prefix + name, "fields": [x.as_json() for x in f.fields],
                        "count": c.get("count", 0), "start": c.get("first"), "end": c.get("last"),
                        "kind": f.kind, "stream": c.get("stream"), "role": c.get("role"),
                        "ordered": bool(s.ordered) if s is not None else None, "file": self.stem})
        return out

    def events(self, start: Optional[float], end: Optional[float]) -> List[Tuple[float, str, bytes]]:
        with self._lock:
            return [(t, self.prefix + c, p) for t, c, p, _ in self._events
                    if (start is None or t >= start) and (end is None or t < end)]

    @property
    def events_dropped(self) -> int:
        return self._events_dropped

    def info(self) -> Dict[str, Any]:
        """The info panel's data (``info(archive)``, cached per generation)."""
        with self._lock:
            got = self._info_cache
            if got is not None and got[0] == self.generation:
                return got[1]
            st = self._st
            try:
                d = self._info_fn(st.ar) if self._info_fn is not None else st.ar.info()
            except (FastOdinError, ValueError, OSError) as exc:
                d = dict(st.info)
                d.setdefault("notes", []).append(f"info incomplete: {exc}")
            d = dict(d)
            d["viewer"] = {"summary": "cache" if self.from_cache else "built", "cache_file": self.cache_file,
                           "notes": list(self.notes), "events_dropped": self._events_dropped}
            self._info_cache = (self.generation, d)
            return d

    def close(self) -> None:
        with self._lock:
            try:
                self._st.ar.close()
            except Exception:  # pragma: no cover - best effort
                pass


def _records_in(st: _State, name: str, frames: set) -> int:
    """Records of channel ``name`` in the frames numbered ``frames``."""
    m = st.map(name)
    counts = np.diff(np.append(m.starts, m.n)).tolist()
    return int(sum(c for e, c in zip(m.frames, counts) if e.frame_no in frames))


class ViewSet:
    """The files of one viewer.  With several files each channel name is ``stem:name`` (a stem
    that repeats gets ``~2``, ``~3``...); one file's channels keep their names."""

    def __init__(self, paths: List[str], *, cache_dir: Any = None,
                 info: Optional[Callable[[Any], Dict[str, Any]]] = None,
                 followers: Optional[List[Follower]] = None) -> None:
        if not paths:
            raise UsageError("ViewSet: no file given")
        self.files: List[ViewFile] = []
        seen: Dict[str, int] = {}
        try:
            for k, p in enumerate(paths):
                stem = file_stem(p)
                seen[stem] = seen.get(stem, 0) + 1
                if seen[stem] > 1:
                    stem = f"{stem}~{seen[stem]}"
                prefix = f"{stem}:" if len(paths) > 1 else ""
                vf = ViewFile(p, prefix, follower=followers[k] if followers else None, cache_dir=cache_dir, info=info)
                vf.stem = stem
                self.files.append(vf)
        except BaseException:
            self.close()
            raise

    def build(self, progress: Optional[Callable[[float, Optional[float]], None]] = None) -> None:
        """Summarise every file (``progress`` over all files' decompressed bytes)."""
        total = float(sum(sum(e.decompressed_size for e in f._st.ar.frames) for f in self.files))
        base = 0.0
        for f in self.files:
            size = float(sum(e.decompressed_size for e in f._st.ar.frames))
            cb = None
            if progress is not None:
                def cb(done: float, _t: Optional[float], b: float = base) -> None:
                    progress(b + done, total)
            f.build(cb)
            base += size

    def refresh(self) -> bool:
        changed = False
        for f in self.files:
            changed = f.refresh() or changed
        return changed

    @property
    def generation(self) -> int:
        return sum(f.generation for f in self.files)

    @property
    def ready(self) -> bool:
        return all(f.ready.is_set() for f in self.files)

    def resolve(self, channel: str) -> Tuple[ViewFile, str]:
        """The file and file-local name of a served channel name."""
        if len(self.files) == 1:
            return self.files[0], channel
        for f in self.files:
            if channel.startswith(f.prefix):
                return f, channel[len(f.prefix):]
        raise ViewRequestError(f"unknown channel {channel!r} (with several files a channel is named FILE:CHANNEL)")

    def series(self, channel: str, field: str, start: Optional[float], end: Optional[float],
               points: int = DEFAULT_POINTS) -> Envelope:
        f, name = self.resolve(channel)
        return f.series(name, field, start, end, points)

    def channels(self) -> List[Dict[str, Any]]:
        return [c for f in self.files for c in f.channels()]

    def tags(self) -> Dict[str, Any]:
        if len(self.files) == 1:
            return dict(self.files[0]._st.ar.tags)
        return {f"{f.stem}:{k}": v for f in self.files for k, v in f._st.ar.tags.items()}

    def events(self, start: Optional[float], end: Optional[float]) -> List[Tuple[float, str, bytes]]:
        out = [e for f in self.files for e in f.events(start, end)]
        out.sort(key=lambda e: (e[0] if e[0] == e[0] else -math.inf))
        return out

    def close(self) -> None:
        for f in self.files:
            f.close()
