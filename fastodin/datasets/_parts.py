"""Partitions: a (file, frame range) of one channel, planned from the catalog, read on its own.

:func:`plan` cuts each file's frames that hold the channel (and may hold records in the time
window, by the index) into runs of about ``partition_bytes`` decompressed bytes; :func:`divisions`
orders the parts by time and gives their bounds when no two overlap.  :func:`read_chunks` reads
one part, a few frames at a time (bounded memory), anywhere -- a Dask worker process, a thread of
an Arrow stream: it reopens the file, checks that the file is the one catalogued (inode, size,
mtime, and every frame's offset and sizes) before and after each read, and raises
:class:`~fastodin.errors.FileChangedError` instead of returning records of another file.

>>> import os, tempfile, fastodin
>>> from fastodin.datasets._catalog import build_catalog
>>> path = os.path.join(tempfile.mkdtemp(), "p.fastpack.zst")
>>> with fastodin.Writer(path) as w:
...     w.write_many([0.0, 1.0, 2.0], "v", np.arange(3.0))
>>> fi = build_catalog(path).files[0]
>>> parts = plan([fi], "v", schema_of=lambda f: layout_schema(f.channels["v"].layout))
>>> [(p.frames, p.count, p.start, p.end) for p in parts]
[((0,), 3, 0.0, 2.0)]
>>> [(t.tolist(), c["value"].tolist()) for t, c in read_chunks(parts[0], ["value"])]
[([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..archive.reader import open_archive
from ..errors import DataError, FileChangedError
from ._catalog import FileInfo, file_identity
from ._schema import Schema, layout_schema  # noqa: F401 (layout_schema: the doctest)

__all__ = ["Part", "plan", "divisions", "read_chunks", "DEFAULT_PARTITION_BYTES", "DEFAULT_CHUNK_BYTES"]

#: Decompressed frame bytes per partition (Dask's advice: partitions of ~100 MB of memory).
DEFAULT_PARTITION_BYTES = 64 << 20
#: Decompressed frame bytes read at once inside a partition (one Arrow batch at most).
DEFAULT_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class Part:
    """One partition: ``channel`` (name) of ``path`` over frame numbers ``frames``, with what the
    index says of them: ``count`` records, times ``start``..``end`` (NaN: unknown), ``nbytes``
    decompressed; ``read_key`` (what ``Archive.read`` takes), ``identity`` and ``sigs`` (the file
    and frames as catalogued) and ``schema`` (how its values become columns)."""

    path: str
    channel: str
    read_key: Union[str, int]
    frames: Tuple[int, ...]
    count: int
    start: float
    end: float
    nbytes: int
    identity: Tuple[int, int, int]
    sigs: Tuple[Tuple[int, int, int], ...]
    schema: Schema


def _meets(t0: float, t1: float, start: Optional[float], end: Optional[float]) -> bool:
    """May a frame whose records span t0..t1 hold one in [start, end)?  NaN never excludes."""
    return (start is None or not t1 < start) and (end is None or not t0 >= end)


def plan(files: Sequence[FileInfo], channel: str, start: Optional[float] = None, end: Optional[float] = None,
         partition_bytes: int = DEFAULT_PARTITION_BYTES, *, schema_of: Callable[[FileInfo], Schema]) -> List[Part]:
    """The parts of ``channel`` in ``files`` (in file order) for the window ``[start, end)``:
    runs of consecutive frames of one file, each of at most ``partition_bytes`` decompressed bytes
    (at least one frame).  ``schema_of(file)`` gives each file's :class:`Schema`."""
    out: List[Part] = []
    for f in files:
        ch = f.channels.get(channel) if f.error is None else None
        if ch is None:
            continue
        sel = [fr for fr in ch.frames if _meets(fr[2], fr[3], start, end)]
        if not sel:
            continue
        schema = schema_of(f)
        run: List[Tuple[int, int, float, float]] = []
        size = 0
        for fr in sel:
            fsize = f.frame_sizes[fr[0]]
            if run and size + fsize > partition_bytes:
                out.append(_part(f, ch.name, ch.read_key, run, schema))
                run, size = [], 0
            run.append(fr)
            size += fsize
        if run:
            out.append(_part(f, ch.name, ch.read_key, run, schema))
    return out


def _part(f: FileInfo, name: str, key: Union[str, int], run: List[Tuple[int, int, float, float]],
          schema: Schema) -> Part:
    lo, hi = math.nan, math.nan
    for _k, _n, a, b in run:
        lo = a if lo != lo else (lo if a != a else min(lo, a))
        hi = b if hi != hi else (hi if b != b else max(hi, b))
    frames = tuple(fr[0] for fr in run)
    return Part(f.path, name, key, frames, sum(fr[1] for fr in run), lo, hi,
                sum(f.frame_sizes[k] for k in frames), f.identity, tuple(f.frame_sigs[k] for k in frames), schema)


def divisions(parts: Sequence[Part]) -> Tuple[List[Part], Optional[Tuple[float, ...]]]:
    """``(parts ordered by time, divisions)`` when their time spans are known and no two meet
    (each ends before the next starts): the divisions are every part's start and the last end.
    Otherwise ``(parts in file order, None)``.

    >>> P = lambda a, b: Part("f", "c", "c", (0,), 1, a, b, 0, (0, 0, 0), (), None)
    >>> divisions([P(5.0, 6.0), P(1.0, 2.0)])[1], divisions([P(1.0, 3.0), P(2.0, 4.0)])[1]
    ((1.0, 5.0, 6.0), None)
    """
    if not parts or any(p.start != p.start or p.end != p.end for p in parts):
        return list(parts), None
    order = sorted(parts, key=lambda p: (p.start, p.end))
    if any(not a.end < b.start for a, b in zip(order, order[1:])):
        return list(parts), None
    return order, tuple([p.start for p in order] + [order[-1].end])


def _groups(part: Part, chunk_bytes: int) -> Iterator[Tuple[int, ...]]:
    run: List[int] = []
    size = 0
    for k, sig in zip(part.frames, part.sigs):
        if run and size + sig[2] > chunk_bytes:
            yield tuple(run)
            run, size = [], 0
        run.append(k)
        size += sig[2]
    if run:
        yield tuple(run)


def _check_file(part: Part, when: str) -> None:
    try:
        now = file_identity(part.path)
    except OSError as e:
        raise FileChangedError(f"{part.path}: {when}: {e.strerror or e}", path=part.path) from None
    if now != part.identity:
        what = [f"{k} {a} -> {b}" for k, a, b in zip(("inode", "size", "mtime_ns"), part.identity, now) if a != b]
        raise FileChangedError(f"{part.path}: changed {when} ({', '.join(what)}); build the dataset again "
                               f"to read it as it is now", path=part.path)


def _check_frames(part: Part, ar: Any) -> None:
    frames = ar.frames
    for k, sig in zip(part.frames, part.sigs):
        e = frames[k] if k < len(frames) else None
        if e is None or (e.data_offset, e.compressed_size, e.decompressed_size) != sig:
            raise FileChangedError(f"{part.path}: frame {k} is not the one catalogued (the file was rewritten); "
                                   f"build the dataset again", path=part.path)


def _with_path(exc: DataError, path: str) -> DataError:
    """``exc`` again, its message naming the file (a partition's error must say which one)."""
    msg = f"{path}: {exc}"
    try:
        new = type(exc)(msg, offset=exc.offset, length=exc.length, limit=exc.limit, record=exc.record,
                        channel=exc.channel)
    except TypeError:
        new = DataError(msg, offset=exc.offset, length=exc.length, limit=exc.limit, record=exc.record,
                        channel=exc.channel)
    return new


def read_chunks(part: Part, columns: Optional[Sequence[str]] = None, start: Optional[float] = None,
                end: Optional[float] = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                on_close: Optional[Callable[[int], None]] = None) -> Iterator[Tuple[np.ndarray, Dict[str, Any]]]:
    """``(times, {column: values})`` of ``part`` for ``start <= time < end``, a few frames (about
    ``chunk_bytes`` decompressed) at a time; ``columns`` None = all.  ``on_close(n)`` is told how many
    frames were decompressed.  FileChangedError when the file is not the one catalogued."""
    _check_file(part, "since it was catalogued")
    with open_archive(part.path) as ar:
        try:
            _check_frames(part, ar)
            where = f"{part.path}: {part.channel}"
            raw = np.uint8 if part.schema.kind == "odin-set" else None
            for group in _groups(part, chunk_bytes):
                try:
                    # an ODIN set is read as its packets, typed by the definition found once for the
                    # file (a typed Archive.read would look its definitions up again per partition)
                    t, v = ar.read(part.read_key, start, end, dtype=raw, frames=group)
                    cols = part.schema.columns_of(v, columns, where)
                except DataError as e:
                    _check_file(part, "while it was read")
                    if isinstance(e, FileChangedError) or part.path in str(e):
                        raise
                    raise _with_path(e, part.path) from e
                _check_file(part, "while it was read")
                yield t, cols
        finally:
            if on_close is not None:
                on_close(ar.frames_decompressed)
