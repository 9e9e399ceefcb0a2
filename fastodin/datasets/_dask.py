"""A dataset channel as a Dask DataFrame: ``dask.dataframe.from_map`` over the partitions.

Each partition is one :class:`~fastodin.datasets._parts.Part` (a file's run of frames) read by
:func:`read_pandas` wherever Dask runs it (a worker process of a ``distributed`` cluster, a
thread): a pandas DataFrame indexed by ``time`` with one column per field.  Its numeric columns
are allocated once, at the record count the index gives, and filled a chunk of frames at a time,
so a partition's memory stays near the size of what it returns.  Dask's optimizer pushes a column
selection into ``read_pandas(columns=...)``; the divisions are known when the parts' time spans
do not overlap (then each partition is sorted by time).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import FileChangedError
from ._arrow import arrow_array, arrow_type
from ._deps import need
from ._parts import DEFAULT_PARTITION_BYTES, Part, divisions, read_chunks
from ._schema import BINARY, STRING, Schema

__all__ = ["read_pandas", "empty_frame", "to_dask"]

_OBJECTS = (BINARY, STRING)


def _pandas() -> Any:
    return need("pandas", "dask", "a Dask DataFrame of a dataset")


def _frame(times: np.ndarray, data: Dict[str, Any], names: Sequence[str]) -> Any:
    pd = _pandas()
    return pd.DataFrame({n: data[n] for n in names}, index=pd.Index(times, name="time"), columns=list(names),
                        copy=False)


def _objects(typ: str, pieces: List[Any]) -> Any:
    """Binary and string columns as Arrow-backed pandas arrays (bytes stay bytes: Dask would
    otherwise turn object columns into strings)."""
    pd = _pandas()
    pa = need("pyarrow", "dask", "a Dask DataFrame of a dataset")
    return pd.arrays.ArrowExtensionArray(pa.chunked_array(pieces, type=arrow_type(typ)))


def empty_frame(schema: Schema, names: Sequence[str]) -> Any:
    """The empty DataFrame a partition of ``schema`` with columns ``names`` looks like (Dask's meta)."""
    types = dict(schema.signature())
    data = {n: (_objects(types[n], []) if types[n] in _OBJECTS else np.empty(0, np.dtype(types[n]))) for n in names}
    return _frame(np.empty(0, np.float64), data, names)


def read_pandas(part: Part, columns: Optional[Sequence[str]] = None, start: Optional[float] = None,
                end: Optional[float] = None, sort: bool = False, chunk_bytes: int = DEFAULT_PARTITION_BYTES) -> Any:
    """One partition as a pandas DataFrame (index ``time``; ``columns`` None = all), records with
    ``start <= time < end``; ``sort``: order rows by time (stable) when they are not already.
    A partition of at most ``chunk_bytes`` of frames is one ``Archive.read``; a bigger one is read
    ``chunk_bytes`` at a time into columns allocated once."""
    names = part.schema.names if columns is None else [c for c in columns if c != "time"]
    types = dict(part.schema.signature())
    if part.nbytes <= chunk_bytes:
        # one read: its arrays are the columns, no second copy
        for t, cols in read_chunks(part, names, start, end, chunk_bytes):
            if t.shape[0] > part.count:
                raise FileChangedError(f"{part.path}: {part.channel}: the frames hold more records than the index "
                                       f"says ({part.count}); the file is not the one catalogued", path=part.path)
            one = {n: (_objects(types[n], [arrow_array(types[n], cols[n])]) if types[n] in _OBJECTS else cols[n])
                   for n in names}
            return _sorted(_frame(t, one, names), t, sort)
    cap = part.count
    times = np.empty(cap, np.float64)
    fixed = {n: np.empty(cap, np.dtype(types[n])) for n in names if types[n] not in _OBJECTS}
    pieces: Dict[str, List[Any]] = {n: [] for n in names if types[n] in _OBJECTS}
    k = 0
    for t, cols in read_chunks(part, names, start, end, chunk_bytes):
        m = t.shape[0]
        if k + m > cap:
            raise FileChangedError(f"{part.path}: {part.channel}: the frames hold more records than the index "
                                   f"says ({cap}); the file is not the one catalogued", path=part.path)
        times[k:k + m] = t
        for n, arr in fixed.items():
            arr[k:k + m] = cols[n]
        for n, lst in pieces.items():
            lst.append(arrow_array(types[n], cols[n]))
        k += m
    data: Dict[str, Any] = {n: arr[:k] for n, arr in fixed.items()}
    for n, lst in pieces.items():
        data[n] = _objects(types[n], lst)
    return _sorted(_frame(times[:k], data, names), times[:k], sort)


def _sorted(df: Any, times: np.ndarray, sort: bool) -> Any:
    if sort and times.shape[0] > 1 and not bool((times[1:] >= times[:-1]).all()):
        df = df.iloc[np.argsort(times, kind="stable")]
    return df


def to_dask(parts: Sequence[Part], schema: Schema, names: Sequence[str], start: Optional[float],
            end: Optional[float]) -> Any:
    """The Dask DataFrame of ``parts`` (one partition each), columns ``names``."""
    dd = need("dask.dataframe", "dask", "a Dask DataFrame of a dataset")
    meta = empty_frame(schema, names)
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    ordered, divs = divisions(parts)
    return dd.from_map(read_pandas, ordered, meta=meta, divisions=divs, label="fastodin-read",
                       enforce_metadata=False, columns=list(names), start=start, end=end, sort=divs is not None)
