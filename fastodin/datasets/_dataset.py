"""Many recordings as one dataset: selection over the catalog, and each channel as a table.

:class:`Dataset` holds a :class:`~fastodin.datasets._catalog.Catalog` and a selection (channel
globs, a time window, file tags).  A channel of it becomes a Dask DataFrame, an Arrow stream or a
lazy polars frame over the same partitions; each file's columns come from its index (layouts) or,
for ODIN sets, from its definition, and every file must give the same columns
(:class:`~fastodin.errors.SchemaMismatch` otherwise).
"""
from __future__ import annotations

import threading
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..archive.reader import channel_matches, open_archive
from ..errors import SchemaMismatch, UsageError
from ._catalog import Catalog, FileInfo, PathsArg, build_catalog, select_channel
from ._deps import need
from ._parts import DEFAULT_CHUNK_BYTES, DEFAULT_PARTITION_BYTES, Part, plan
from ._schema import Schema, layout_schema, odin_set_schema, raw_schema, select_columns

__all__ = ["Dataset", "dataset"]

Channels = Union[None, str, Sequence[str]]


def _globs(channels: Channels) -> Optional[List[str]]:
    if channels is None:
        return None
    return [channels] if isinstance(channels, str) else list(channels)


def _and_globs(a: Optional[List[str]], b: Optional[List[str]]) -> Optional[List[Any]]:
    return b if a is None else a if b is None else [("and", a, b)]


def _window(a: Tuple[Optional[float], Optional[float]], start: Optional[float],
            end: Optional[float]) -> Tuple[Optional[float], Optional[float]]:
    lo = a[0] if start is None else (start if a[0] is None else max(a[0], start))
    hi = a[1] if end is None else (end if a[1] is None else min(a[1], end))
    return lo, hi


class _Shared:
    """What every selection of one dataset shares: schemas found, frames decompressed (thread-safe)."""

    __slots__ = ("schemas", "lock", "frames")

    def __init__(self, frames: int) -> None:
        self.schemas: Dict[Tuple[str, Tuple[int, int, int], str], Schema] = {}
        self.lock = threading.Lock()
        self.frames = frames


def _tags_match(tags: Dict[str, Any], want: Optional[Mapping[str, Any]]) -> bool:
    return want is None or all(k in tags and tags[k] == v for k, v in want.items())


class Dataset:
    """Recordings as one dataset.  Build it with :func:`dataset`; narrow it with :meth:`select`.

    ``files`` are the selected files (tags match; files that could not be opened are kept apart in
    :attr:`errors`); :meth:`catalog` / :meth:`rows` list (file, channel) rows; :meth:`to_dask`,
    :meth:`to_arrow`, :meth:`to_polars` read one channel across the files.
    ``frames_decompressed`` counts the data frames decompressed in this process so far (catalog,
    schema probes, Arrow and polars reads; Dask workers count their own).
    """

    def __init__(self, catalog: Catalog, *, channels: Channels = None, start: Optional[float] = None,
                 end: Optional[float] = None, tags: Optional[Mapping[str, Any]] = None,
                 _shared: Optional[_Shared] = None) -> None:
        self._catalog = catalog
        self._channels = _globs(channels)
        self._window = (start, end)
        self._tags = dict(tags) if tags is not None else None
        self._shared = _shared if _shared is not None else _Shared(catalog.frames_decompressed)

    # ---- selection ------------------------------------------------------------------------------
    def select(self, channels: Channels = None, start: Optional[float] = None, end: Optional[float] = None,
               tags: Optional[Mapping[str, Any]] = None) -> "Dataset":
        """The dataset narrowed: channels matching one of the globs ``channels`` (and the current
        selection), records in ``[start, end)`` (within the current window), files whose tags
        include every ``tags`` item (equal values).

        >>> ds = Dataset(Catalog([])).select(channels="imu*", start=1.0).select(end=5.0)
        >>> ds.window
        (1.0, 5.0)
        """
        ds = Dataset(self._catalog, start=None, end=None, _shared=self._shared)
        ds._channels = _and_globs(self._channels, _globs(channels))
        ds._window = _window(self._window, start, end)
        ds._tags = dict(self._tags or {})
        if tags:
            ds._tags.update(tags)
        if not ds._tags:
            ds._tags = None
        return ds

    @property
    def window(self) -> Tuple[Optional[float], Optional[float]]:
        """The selected time window ``(start, end)`` (None: open)."""
        return self._window

    @property
    def files(self) -> List[FileInfo]:
        """The selected files that opened (tags match)."""
        return [f for f in self._catalog.files if f.error is None and _tags_match(f.tags, self._tags)]

    @property
    def errors(self) -> List[Tuple[str, str]]:
        """``(path, error)`` of every file that could not be opened."""
        return self._catalog.errors

    @property
    def failed(self) -> List[FileInfo]:
        """The files that could not be opened (``error``, ``error_code``: 3 I/O, 1 data)."""
        return [f for f in self._catalog.files if f.error is not None]

    @property
    def frames_decompressed(self) -> int:
        return self._shared.frames

    def _count(self, n: int) -> None:
        with self._shared.lock:
            self._shared.frames += n

    def _channel_ok(self, name: str) -> bool:
        return _match(name, self._channels)

    def channels(self) -> List[str]:
        """Names of the selected channels, sorted."""
        lo, hi = self._window
        names = set()
        for f in self.files:
            for ch in f.channels.values():
                if self._channel_ok(ch.name) and select_channel(ch, None, lo, hi):
                    names.add(ch.name)
        return sorted(names)

    def rows(self) -> List[Dict[str, Any]]:
        """The catalog rows of the selection (spec/dataset.md §1), files that failed included."""
        lo, hi = self._window
        ok = {f.path for f in self._catalog.files if f.error is not None or _tags_match(f.tags, self._tags)}
        sub = Catalog([f for f in self._catalog.files if f.path in ok])
        return [r for r in sub.rows(None, lo, hi) if r["channel"] is None or self._channel_ok(r["channel"])]

    def catalog(self) -> Any:
        """The catalog as a pandas DataFrame: one row per (file, channel) and per file that could
        not be opened (``error``), columns ``path, channel, kind, count, start, end, bytes, frames,
        stream, role, tags, streams, complete, error`` (spec/dataset.md §1)."""
        pd = need("pandas", "pandas", "Dataset.catalog()")
        from ._catalog import ROW_KEYS

        return pd.DataFrame(self.rows(), columns=list(ROW_KEYS))

    # ---- one channel ----------------------------------------------------------------------------
    def _resolve(self, channel: Union[str, int]) -> str:
        names = self.channels()
        if isinstance(channel, int) and not isinstance(channel, bool):
            from ..odin.mapping import set_channel

            channel = set_channel(channel)
        if not isinstance(channel, str):
            raise UsageError(f"a channel is a name, a glob or an ODIN set id, not {type(channel).__name__}")
        if channel in names:
            return channel
        hit = [n for n in names if channel_matches(n, channel)]
        if not hit and channel.lower().startswith("0x"):
            from ..odin.mapping import set_channel

            try:
                alt = set_channel(int(channel, 16))
            except ValueError:
                alt = ""
            hit = [n for n in names if channel_matches(n, alt)]
        if len(hit) != 1:
            what = "no channel" if not hit else f"{len(hit)} channels ({', '.join(hit[:10])})"
            raise UsageError(f"{channel!r} matches {what} of the dataset; name one channel "
                             f"(channels: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''})")
        return hit[0]

    def _file_schema(self, f: FileInfo, name: str) -> Schema:
        key = (f.path, f.identity, name)
        got = self._shared.schemas.get(key)
        if got is not None:
            return got
        ch = f.channels[name]
        if ch.kind == "layout":
            s = layout_schema(ch.layout)  # type: ignore[arg-type]
        elif ch.kind == "odin-set":
            from ._odin import set_packet_dtype

            with open_archive(f.path) as ar:
                try:
                    s = odin_set_schema(set_packet_dtype(ar, name))
                finally:
                    self._count(ar.frames_decompressed)
        else:
            s = raw_schema(ch.kind)
        self._shared.schemas[key] = s
        return s

    def schema(self, channel: Union[str, int]) -> Schema:
        """The columns of ``channel`` (besides ``time``), the same in every file, else SchemaMismatch
        naming the files of each variant.  ODIN sets: read from each file's definition."""
        name = self._resolve(channel)
        found: Dict[Tuple[Tuple[str, str], ...], List[str]] = {}
        first: Dict[Tuple[Tuple[str, str], ...], Schema] = {}
        for f in self.files:
            if name in f.channels:
                s = self._file_schema(f, name)
                found.setdefault(s.signature(), []).append(f.path)
                first.setdefault(s.signature(), s)
        if not found:
            raise UsageError(f"no selected file holds {name!r}")
        if len(found) > 1:
            variants = {first[k].text() or "(no columns)": v for k, v in found.items()}
            lines = "; ".join(f"[{k}] in {len(v)} file(s), e.g. {v[0]}" for k, v in variants.items())
            raise SchemaMismatch(f"channel {name!r} has {len(found)} different sets of columns across the files: "
                                 f"{lines}; select the files of one (Dataset.select(tags=...) or fewer paths)",
                                 channel=name, schemas=variants)
        return next(iter(first.values()))

    def parts(self, channel: Union[str, int], start: Optional[float] = None, end: Optional[float] = None,
              partition_bytes: int = DEFAULT_PARTITION_BYTES) -> List[Part]:
        """The partitions of ``channel`` for the window (the selection's, narrowed by start/end),
        in file order: runs of a file's frames of at most ``partition_bytes`` decompressed bytes."""
        name = self._resolve(channel)
        self.schema(name)
        lo, hi = _window(self._window, start, end)
        return plan(self.files, name, lo, hi, partition_bytes, schema_of=lambda f: self._file_schema(f, name))

    def _prepare(self, channel: Union[str, int], fields: Optional[Sequence[str]], start: Optional[float],
                 end: Optional[float]) -> Tuple[str, Schema, List[str], Optional[float], Optional[float]]:
        name = self._resolve(channel)
        schema = self.schema(name)
        names = select_columns(schema, fields)
        lo, hi = _window(self._window, start, end)
        if self.errors:
            warnings.warn(f"{len(self.errors)} file(s) of the dataset could not be opened and are left out "
                          f"(Dataset.errors), e.g. {self.errors[0][0]}: {self.errors[0][1]}", stacklevel=3)
        return name, schema, names, lo, hi

    def to_dask(self, channel: Union[str, int], fields: Optional[Sequence[str]] = None,
                start: Optional[float] = None, end: Optional[float] = None, *,
                partition_bytes: int = DEFAULT_PARTITION_BYTES) -> Any:
        """``channel`` across the files as a Dask DataFrame (``dask.dataframe.from_map``): index
        ``time``, one column per field (``fields``: column or field names, None = all), rows with
        ``start <= time < end``; one partition per (file, run of frames of at most
        ``partition_bytes``); known divisions when the partitions' time spans do not overlap.
        Needs ``pip install 'fastodin[dask]'``."""
        name, schema, names, lo, hi = self._prepare(channel, fields, start, end)
        from ._dask import to_dask

        parts = plan(self.files, name, lo, hi, partition_bytes, schema_of=lambda f: self._file_schema(f, name))
        return to_dask(parts, schema, names, lo, hi)

    def to_arrow(self, channel: Union[str, int], fields: Optional[Sequence[str]] = None,
                 start: Optional[float] = None, end: Optional[float] = None, *,
                 batch_bytes: int = DEFAULT_CHUNK_BYTES) -> Any:
        """``channel`` across the files as a ``pyarrow.RecordBatchReader``: columns ``time`` and the
        fields, one batch per about ``batch_bytes`` of decompressed frames, read as it is consumed
        (bounded memory).  DuckDB reads it: ``duckdb.sql("select avg(x) from reader")``.
        Needs ``pip install 'fastodin[arrow]'``."""
        name, schema, names, lo, hi = self._prepare(channel, fields, start, end)
        from ._arrow import batch_reader

        parts = plan(self.files, name, lo, hi, DEFAULT_PARTITION_BYTES, schema_of=lambda f: self._file_schema(f, name))
        return batch_reader(parts, schema, names, lo, hi, batch_bytes, self._count)

    def to_polars(self, channel: Union[str, int], fields: Optional[Sequence[str]] = None,
                  start: Optional[float] = None, end: Optional[float] = None, *,
                  batch_bytes: int = DEFAULT_CHUNK_BYTES) -> Any:
        """``channel`` across the files as a lazy polars frame (an IO-source plugin): a query's
        column selection decodes only those columns, its filter's bounds on ``time`` skip the
        frames outside them, its row limit stops reading.  Needs ``pip install 'fastodin[polars]'``."""
        name, schema, names, lo, hi = self._prepare(channel, fields, start, end)
        from ._polars import to_polars

        def parts_for(a: Optional[float], b: Optional[float]) -> List[Part]:
            return plan(self.files, name, a, b, DEFAULT_PARTITION_BYTES, schema_of=lambda f: self._file_schema(f, name))

        return to_polars(parts_for, schema, names, lo, hi, batch_bytes, self._count)

    def __repr__(self) -> str:
        return (f"<Dataset files={len(self.files)} errors={len(self.errors)} channels={len(self.channels())} "
                f"window={self._window}>")


def _match(name: str, globs: Optional[List[Any]]) -> bool:
    if globs is None:
        return True
    for g in globs:
        if isinstance(g, tuple):                 # ("and", a, b): both selections
            if _match(name, g[1]) and _match(name, g[2]):
                return True
        elif channel_matches(name, g):
            return True
    return False


def dataset(paths: PathsArg, *, channels: Channels = None, start: Optional[float] = None,
            end: Optional[float] = None, tags: Optional[Mapping[str, Any]] = None) -> Dataset:
    """Recordings as one :class:`Dataset`: ``paths`` is a path, a directory (every
    ``*.fastpack.zst`` / ``*.fastpack`` below it), a glob (``**`` recursive) or a list of them.
    The catalog is built from the files' indexes only (an archive's tail: no data frame is
    decompressed); a file that cannot be opened is listed with its error, never aborts.
    ``channels``, ``start``/``end`` and ``tags`` select as :meth:`Dataset.select`.

    >>> import os, tempfile, fastodin, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> for k in range(2):
    ...     with fastodin.Writer(os.path.join(d, f"run{k}.fastpack.zst")) as w:
    ...         w.set_tag("site", "lab")
    ...         w.write_many([k * 10.0, k * 10.0 + 1], "temp", np.array([20.5, 21.0]))
    >>> ds = fastodin.dataset(d)
    >>> [(os.path.basename(r["path"]), r["channel"], r["count"], r["start"]) for r in ds.rows()]
    [('run0.fastpack.zst', 'temp', 2, 0.0), ('run1.fastpack.zst', 'temp', 2, 10.0)]
    >>> ds.frames_decompressed, ds.select(start=5.0).channels(), ds.select(tags={"site": "x"}).files
    (0, ['temp'], [])
    """
    return Dataset(build_catalog(paths), channels=channels, start=start, end=end, tags=tags)

