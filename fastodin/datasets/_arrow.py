"""A dataset channel as an Arrow stream: ``pyarrow.RecordBatchReader`` in bounded memory.

One record batch per chunk of a partition (about ``DEFAULT_CHUNK_BYTES`` of decompressed frames),
read when the consumer asks for it: DuckDB (``duckdb.sql("select ... from reader")``), polars
and pyarrow take the reader as it is.  Numeric columns are handed over without a copy; binary
columns are built from their bytes without a Python object per row.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from ._deps import need
from ._parts import DEFAULT_CHUNK_BYTES, Part, read_chunks
from ._schema import BINARY, STRING, Schema

__all__ = ["arrow_type", "arrow_array", "arrow_schema", "record_batches", "batch_reader"]


def _pa() -> Any:
    return need("pyarrow", "arrow", "an Arrow stream of a dataset")


def arrow_type(typ: str) -> Any:
    """The Arrow type of a column type (``'<f8'``, ``'binary'``, ``'string'``)."""
    pa = _pa()
    if typ == BINARY:
        return pa.binary()
    if typ == STRING:
        return pa.string()
    return pa.from_numpy_dtype(np.dtype(typ))


def arrow_array(typ: str, values: Any) -> Any:
    """One column as an Arrow array (numeric: no copy when contiguous)."""
    pa = _pa()
    if typ == BINARY:
        if isinstance(values, np.ndarray) and values.dtype == np.uint8 and values.ndim == 2:
            n, width = values.shape
            if n * width >= 1 << 31:
                return pa.array(values.view(f"V{width}").tolist() if width else [b""] * n, pa.binary())
            offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32) if width else np.zeros(n + 1, np.int32)
            data = np.ascontiguousarray(values).reshape(-1)
            return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return pa.array(list(values), pa.binary())
    if typ == STRING:
        return pa.array(list(values), pa.string())
    return pa.array(np.ascontiguousarray(values), type=pa.from_numpy_dtype(np.dtype(typ)))


def arrow_schema(schema: Schema, names: Sequence[str]) -> Any:
    """``time`` and the columns ``names`` of ``schema``, as an Arrow schema."""
    pa = _pa()
    types = dict(schema.signature())
    return pa.schema([pa.field("time", pa.float64())] + [pa.field(n, arrow_type(types[n])) for n in names])


def record_batches(parts: Sequence[Part], names: Sequence[str], start: Optional[float], end: Optional[float],
                   chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                   on_close: Optional[Callable[[int], None]] = None) -> Iterator[Any]:
    """The record batches of ``parts`` in order, one per chunk (an empty chunk gives none)."""
    pa = _pa()
    if not parts:
        return
    sch = arrow_schema(parts[0].schema, names)
    types = dict(parts[0].schema.signature())
    for part in parts:
        for t, cols in read_chunks(part, names, start, end, chunk_bytes, on_close):
            if not t.shape[0]:
                continue
            arrays = [pa.array(t, pa.float64())] + [arrow_array(types[n], cols[n]) for n in names]
            yield pa.RecordBatch.from_arrays(arrays, schema=sch)


def batch_reader(parts: Sequence[Part], schema: Schema, names: Sequence[str], start: Optional[float],
                 end: Optional[float], chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 on_close: Optional[Callable[[int], None]] = None) -> Any:
    """A ``pyarrow.RecordBatchReader`` over :func:`record_batches`."""
    pa = _pa()
    return pa.RecordBatchReader.from_batches(arrow_schema(schema, names),
                                             record_batches(parts, names, start, end, chunk_bytes, on_close))

