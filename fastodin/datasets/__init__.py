"""Many recordings as one dataset: a catalog from the indexes, each channel on Dask, Arrow, polars.

:func:`dataset` (also ``fastodin.dataset``) takes paths, directories, globs; its catalog comes from
the files' indexes only.  A channel across the files becomes a Dask DataFrame
(``dask.dataframe.from_map``, one partition per file's run of frames), a ``pyarrow``
RecordBatchReader (DuckDB reads it) or a lazy polars frame (an IO-source plugin with projection
and time-window pushdown).  Columns: spec/dataset.md.  The optional packages come with the
extras ``fastodin[dask]``, ``fastodin[arrow]``, ``fastodin[polars]``.

>>> from fastodin.datasets import dataset
>>> dataset([]).rows()
[]
"""
from __future__ import annotations

from ._catalog import ROW_KEYS, Catalog, ChannelInfo, FileInfo, build_catalog, expand_paths
from ._dask import read_pandas
from ._dataset import Dataset, dataset
from ._parts import DEFAULT_CHUNK_BYTES, DEFAULT_PARTITION_BYTES, Part, read_chunks
from ._polars import time_window
from ._schema import Column, Schema

__all__ = ["dataset", "Dataset", "Catalog", "FileInfo", "ChannelInfo", "build_catalog", "expand_paths",
           "ROW_KEYS", "Part", "read_chunks", "read_pandas", "time_window", "Column", "Schema",
           "DEFAULT_PARTITION_BYTES", "DEFAULT_CHUNK_BYTES"]
