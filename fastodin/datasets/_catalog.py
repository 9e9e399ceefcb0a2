"""The dataset catalog: what each file's index says, read once, no data frame decompressed.

:func:`build_catalog` opens every file (an archive reads only its tail: seek table and
consolidated index) and keeps, per file, a :class:`FileInfo` (identity, tags, streams, an error
when it could not be opened) and per channel a :class:`ChannelInfo` (totals and the per-frame
counts and time ranges that partitions are planned from).  Queries never reopen a file to plan.

>>> import os, tempfile, fastodin
>>> d = tempfile.mkdtemp()
>>> with fastodin.Writer(os.path.join(d, "a.fastpack.zst")) as w:
...     w.write(1.0, "imu", bytes(8))
>>> cat = build_catalog([d])
>>> [(f.channels["imu"].count, f.frames_decompressed) for f in cat.files]
[(1, 0)]
"""
from __future__ import annotations

import glob
import math
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ..archive.reader import channel_matches, open_archive
from ..errors import DataError, FastOdinError
from ._schema import odin_set_id

__all__ = ["ChannelInfo", "FileInfo", "Catalog", "build_catalog", "expand_paths", "FILE_SUFFIXES",
           "ROW_KEYS"]

#: Files a directory contributes (recursively); explicit paths and globs are taken as given.
FILE_SUFFIXES = (".fastpack.zst", ".fastpack")

#: The keys of a catalog row, in order (spec/dataset.md §1).
ROW_KEYS = ("path", "channel", "kind", "count", "start", "end", "bytes", "frames", "stream", "role",
            "tags", "streams", "complete", "error")

PathsArg = Union[str, "os.PathLike[str]", Iterable[Union[str, "os.PathLike[str]"]]]


def _nan_none(x: float) -> Optional[float]:
    return None if x != x else x


def _lo(a: float, b: float) -> float:
    return b if a != a else (a if b != b else min(a, b))


def _hi(a: float, b: float) -> float:
    return b if a != a else (a if b != b else max(a, b))


class ChannelInfo:
    """One channel of one file, from the index: ``name``, ``read_key`` (what ``Archive.read``
    takes for it: the name, or the id for id-0 metadata and unnamed ids), ``count``, ``bytes``
    (payload bytes), ``start``/``end`` (first/last time; NaN when unknown), ``stream``, ``role``,
    ``layout`` (``Layout.to_json()`` or None), ``kind`` and ``frames``: one ``(frame number,
    count, t_min, t_max)`` per frame holding it.
    """

    __slots__ = ("name", "read_key", "count", "bytes", "start", "end", "stream", "role", "layout", "kind",
                 "frames")

    def __init__(self, name: str, read_key: Union[str, int], stream: Optional[str], role: Optional[str],
                 layout: Optional[Dict[str, Any]]) -> None:
        self.name = name
        self.read_key = read_key
        self.count = 0
        self.bytes = 0
        self.start = math.nan
        self.end = math.nan
        self.stream = stream
        self.role = role
        self.layout = layout
        self.kind = channel_kind(name, layout)
        self.frames: List[Tuple[int, int, float, float]] = []

    def __repr__(self) -> str:
        return f"ChannelInfo({self.name!r}, count={self.count}, start={self.start!r}, end={self.end!r})"


def channel_kind(name: str, layout: Optional[Dict[str, Any]]) -> str:
    """How a channel's values are typed: ``layout``, ``odin-set`` (an ODIN set's DATA packets,
    typed by its definition), ``metadata`` (id-0 records) or ``raw`` (bytes).

    >>> channel_kind("odin/set/0x98A8", None), channel_kind("0", None), channel_kind("imu", {"fields": []})
    ('odin-set', 'metadata', 'layout')
    """
    if name == "0":
        return "metadata"
    if layout is not None:
        return "layout"
    if odin_set_id(name) is not None:
        return "odin-set"
    return "raw"


class FileInfo:
    """One file of the dataset: ``path``, ``identity`` (inode, size, mtime in ns, as stat saw it
    when catalogued), ``format``, ``complete``, ``tags``, ``streams`` (stream names), ``channels``
    (name -> :class:`ChannelInfo`), ``frame_sizes`` (decompressed bytes per frame), ``frame_sigs``
    (per frame: data offset, compressed and decompressed size: a partition checks them before it
    reads), ``frames_decompressed`` (by the catalog: 0 for an archive) and ``error`` / ``error_code``
    (the reason it could not be opened, and 3 for I/O, 1 for data; None when it opened).
    """

    __slots__ = ("path", "identity", "format", "complete", "tags", "streams", "channels", "frame_sizes",
                 "frame_sigs", "frames_decompressed", "error", "error_code")

    def __init__(self, path: str) -> None:
        self.path = path
        self.identity: Tuple[int, int, int] = (0, 0, 0)
        self.format = ""
        self.complete = False
        self.tags: Dict[str, Any] = {}
        self.streams: List[str] = []
        self.channels: Dict[str, ChannelInfo] = {}
        self.frame_sizes: List[int] = []
        self.frame_sigs: List[Tuple[int, int, int]] = []
        self.frames_decompressed = 0
        self.error: Optional[str] = None
        self.error_code: Optional[int] = None

    def __repr__(self) -> str:
        what = f"error={self.error!r}" if self.error else f"channels={len(self.channels)}"
        return f"FileInfo({self.path!r}, {what})"


def file_identity(path: str) -> Tuple[int, int, int]:
    """``(inode, size, mtime_ns)`` of ``path``: what a partition compares to see a changed file."""
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _describe(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if isinstance(e, OSError):
        what = e.strerror or text
        return f"{what}: {e.filename}" if e.filename is not None else what
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def read_file_info(path: str) -> FileInfo:
    """The :class:`FileInfo` of one file; a file that cannot be opened gets ``error`` instead of
    raising (an I/O error, or a file that is not a readable archive)."""
    fi = FileInfo(path)
    if glob.has_magic(path) and not os.path.lexists(path):
        fi.error, fi.error_code = f"no file matches {path}", 3
        return fi
    try:
        fi.identity = file_identity(path)
        if not os.path.isfile(path):
            raise IsADirectoryError(21, "not a regular file", path)
        with open_archive(path) as ar:
            _fill(fi, ar)
    except OSError as e:
        fi.error, fi.error_code = _describe(e), 3
    except (FastOdinError, ValueError) as e:
        fi.error, fi.error_code = _describe(e), 1
    return fi


def _fill(fi: FileInfo, ar: Any) -> None:
    """Copy what the index of ``ar`` says into ``fi`` (no data frame is decompressed)."""
    if ar.size != fi.identity[1]:
        raise DataError(f"{fi.path}: changed while it was being catalogued (size {fi.identity[1]} -> {ar.size})")
    fi.format = ar.format
    fi.complete = bool(ar.complete)
    fi.tags = dict(ar.tags)
    fi.streams = [str(m.get("name") or sid) for sid, m in ar.streams.items()]
    info = ar.info()
    fi.frame_sizes = [e.decompressed_size for e in ar.frames]
    fi.frame_sigs = [(e.data_offset, e.compressed_size, e.decompressed_size) for e in ar.frames]
    for name, c in info["channels"].items():
        # the ids Archive.read takes for it: a name, or an id for id-0 metadata and unnamed ids
        named = name in ar.ids
        key: Union[str, int] = name if named else int(c["id"])
        ids = ar.channel_ids(key)
        ch = ChannelInfo(name, key, c.get("stream"), c.get("role"), c.get("layout"))
        ch.count, ch.bytes = int(c["count"]), int(c["bytes"])
        for e in ar.frames:
            n, t0, t1, hit = 0, math.nan, math.nan, False
            for cid in ids:
                s = e.channels.get(cid)
                if s is not None:
                    n, t0, t1, hit = n + s[0], _lo(t0, s[2]), _hi(t1, s[3]), True
            if hit:
                ch.frames.append((e.frame_no, n, t0, t1))
                ch.start, ch.end = _lo(ch.start, t0), _hi(ch.end, t1)
        fi.channels[name] = ch
    fi.frames_decompressed = ar.frames_decompressed


def expand_paths(paths: PathsArg) -> List[str]:
    """The files named by ``paths``: a path, a directory (every ``*.fastpack.zst`` and
    ``*.fastpack`` below it, hidden entries skipped), a glob (``**`` recursive), or a list of
    those; in argument order, each directory and glob sorted, duplicates dropped.  A path that
    names nothing is kept (its catalog row says why), a glob that matches nothing is too.

    >>> expand_paths(["nowhere.fastpack.zst"])
    ['nowhere.fastpack.zst']
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: List[str] = []
    seen = set()

    def add(p: str) -> None:
        k = os.path.normpath(p)
        if k not in seen:
            seen.add(k)
            out.append(p)

    for arg in paths:
        p = os.fspath(arg)
        if os.path.isdir(p):
            for f in _walk(p):
                add(f)
        elif glob.has_magic(p) and not os.path.exists(p):
            hits = sorted(glob.glob(p, recursive=True))
            if not hits:
                add(p)
            for h in hits:
                if os.path.isdir(h):
                    for f in _walk(h):
                        add(f)
                else:
                    add(h)
        else:
            add(p)
    return out


def _walk(top: str) -> List[str]:
    found = []
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith(".") and f.endswith(FILE_SUFFIXES):
                found.append(os.path.join(root, f))
    return found


class Catalog:
    """The files of a dataset as their indexes describe them (``files``: :class:`FileInfo` in
    path order).  :meth:`rows` lists one row per (file, channel) and one per file that could not
    be opened.

    >>> Catalog([]).rows()
    []
    """

    def __init__(self, files: Sequence[FileInfo]) -> None:
        self.files = list(files)

    @property
    def frames_decompressed(self) -> int:
        """Data frames decompressed while building the catalog (0: index only)."""
        return sum(f.frames_decompressed for f in self.files)

    @property
    def errors(self) -> List[Tuple[str, str]]:
        """``(path, error)`` of every file that could not be opened."""
        return [(f.path, f.error) for f in self.files if f.error is not None]

    def rows(self, channels: Optional[Sequence[str]] = None, start: Optional[float] = None,
             end: Optional[float] = None) -> List[Dict[str, Any]]:
        """Catalog rows (keys :data:`ROW_KEYS`) of the channels matching ``channels`` (globs; None:
        all) whose span meets ``[start, end)``; a file that could not be opened gives one row with
        ``channel`` None and its ``error``, one without channels a row with ``channel`` None."""
        out = []
        for f in self.files:
            base = {"path": f.path, "tags": f.tags, "streams": f.streams, "complete": f.complete, "error": f.error}
            if f.error is not None or not f.channels:
                out.append(_row(base, None))
                continue
            for ch in f.channels.values():
                if select_channel(ch, channels, start, end):
                    out.append(_row(base, ch))
        return out


def _row(base: Dict[str, Any], ch: Optional[ChannelInfo]) -> Dict[str, Any]:
    if ch is None:
        vals: Dict[str, Any] = {"channel": None, "kind": None, "count": 0, "start": None, "end": None, "bytes": 0,
                                "frames": 0, "stream": None, "role": None}
    else:
        vals = {"channel": ch.name, "kind": ch.kind, "count": ch.count, "start": _nan_none(ch.start),
                "end": _nan_none(ch.end), "bytes": ch.bytes, "frames": len(ch.frames), "stream": ch.stream,
                "role": ch.role}
    vals.update(base)
    return {k: vals[k] for k in ROW_KEYS}


def select_channel(ch: ChannelInfo, channels: Optional[Sequence[str]], start: Optional[float],
                   end: Optional[float]) -> bool:
    """Does ``ch`` match one of the globs ``channels`` (None: any) and may it hold records in
    ``[start, end)`` (NaN statistics never exclude)?"""
    if channels is not None and not any(channel_matches(ch.name, p) for p in channels):
        return False
    if start is not None and ch.end < start:
        return False
    if end is not None and ch.start >= end:
        return False
    return True


def build_catalog(paths: PathsArg) -> Catalog:
    """The :class:`Catalog` of every file ``paths`` names (see :func:`expand_paths`)."""
    return Catalog([read_file_info(p) for p in expand_paths(paths)])
