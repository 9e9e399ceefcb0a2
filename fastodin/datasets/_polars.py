"""A dataset channel as a lazy polars frame, through polars' IO-source plugin.

``polars.io.plugins.register_io_source`` hands the source the columns a query uses, its filter
and its row limit.  The source decodes only those columns, reads only the frames whose index says
they may hold rows that the filter's bounds on ``time`` keep (:func:`time_window`: ``>``, ``>=``,
``<``, ``<=``, ``==`` and ``is_between`` against numbers, joined by ``&``), applies the whole filter
to what it read, and stops once it has the rows asked for.  Batches come from the Arrow stream.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from ._arrow import arrow_schema, record_batches
from ._deps import need
from ._parts import DEFAULT_CHUNK_BYTES, Part
from ._schema import Schema

__all__ = ["to_polars", "time_window"]

Window = Tuple[Optional[float], Optional[float]]


def _number(lit: Any) -> Optional[float]:
    """The number a serialized polars literal holds (``{"Dyn": {"Float": 1.5}}``, ...), else None."""
    if isinstance(lit, bool):
        return None
    if isinstance(lit, (int, float)):
        return float(lit)
    if isinstance(lit, dict) and len(lit) == 1:
        (k, v), = lit.items()
        if k in ("Dyn", "Scalar", "Float", "Int", "Float64", "Int64", "Float32", "Int32", "UInt64", "UInt32",
                 "value"):
            return _number(v)
    return None


def _is_time(node: Any) -> bool:
    return isinstance(node, dict) and node.get("Column") == "time"


def _literal(node: Any) -> Optional[float]:
    if isinstance(node, dict) and "Literal" in node:
        return _number(node["Literal"])
    return None


_FLIP = {"Gt": "Lt", "GtEq": "LtEq", "Lt": "Gt", "LtEq": "GtEq", "Eq": "Eq"}


def _bounds(node: Any) -> Window:
    """[start, end) that every row the expression keeps lies in (None: unbounded)."""
    if not isinstance(node, dict):
        return None, None
    b = node.get("BinaryExpr")
    if isinstance(b, dict):
        op, left, right = b.get("op"), b.get("left"), b.get("right")
        if op in ("And", "LogicalAnd"):
            return _meet(_bounds(left), _bounds(right))
        if _is_time(right) and _literal(left) is not None:
            left, right, op = right, left, _FLIP.get(str(op), "")
        x = _literal(right)
        if _is_time(left) and x is not None and x == x:
            up = math.nextafter(x, math.inf)
            if op in ("Gt", "GtEq"):
                return x, None
            if op == "Lt":
                return None, x
            if op == "LtEq":
                return None, up
            if op == "Eq":
                return x, up
        return None, None
    f = node.get("Function")
    if isinstance(f, dict):
        fn, args = f.get("function"), f.get("input") or []
        between = isinstance(fn, dict) and isinstance(fn.get("Boolean"), dict) and "IsBetween" in fn["Boolean"]
        if between and len(args) == 3 and _is_time(args[0]):
            lo, hi = _literal(args[1]), _literal(args[2])
            return (lo if lo == lo else None), (math.nextafter(hi, math.inf) if hi is not None and hi == hi else None)
    return None, None


def _meet(a: Window, b: Window) -> Window:
    lo = a[0] if b[0] is None else (b[0] if a[0] is None else max(a[0], b[0]))
    hi = a[1] if b[1] is None else (b[1] if a[1] is None else min(a[1], b[1]))
    return lo, hi


def time_window(predicate: Any) -> Window:
    """Bounds ``[start, end)`` on ``time`` that a polars filter implies (a superset of the rows
    it keeps: the filter itself is still applied); ``(None, None)`` when it says nothing usable.

    >>> import polars as pl
    >>> time_window((pl.col("time") >= 1.5) & (pl.col("time") < 3) & (pl.col("x") > 0))
    (1.5, 3.0)
    >>> time_window(pl.col("time").is_between(1, 2))[0], time_window(pl.col("x") > 1)
    (1.0, (None, None))
    """
    if predicate is None:
        return None, None
    try:
        tree = json.loads(predicate.meta.serialize(format="json"))
    except Exception:  # noqa: BLE001 - an expression polars cannot serialize: no pushdown, still correct
        return None, None
    return _bounds(tree)


def _need_columns(with_columns: Optional[List[str]], predicate: Any, names: Sequence[str]) -> List[str]:
    if with_columns is None:
        return list(names)
    want = set(with_columns)
    if predicate is not None:
        want |= set(predicate.meta.root_names())
    return [n for n in names if n in want]


def to_polars(parts_for: Callable[[Optional[float], Optional[float]], Sequence[Part]], schema: Schema,
              names: Sequence[str], start: Optional[float], end: Optional[float],
              chunk_bytes: int = DEFAULT_CHUNK_BYTES, on_close: Optional[Callable[[int], None]] = None) -> Any:
    """A polars LazyFrame over the parts ``parts_for(start, end)`` plans for a window."""
    pl = need("polars", "polars", "a polars frame of a dataset")
    from polars.io.plugins import register_io_source

    sch = pl.from_arrow(arrow_schema(schema, names).empty_table()).schema

    def source(with_columns: Optional[List[str]], predicate: Any, n_rows: Optional[int],
               batch_size: Optional[int]) -> Iterator[Any]:
        lo, hi = _meet((start, end), time_window(predicate))
        cols = _need_columns(with_columns, predicate, names)
        left = n_rows
        if left is not None and left <= 0:
            return
        # a row limit reads a frame at a time, so it stops at the first frames that fill it
        step = 1 if n_rows is not None else chunk_bytes
        for batch in record_batches(parts_for(lo, hi), cols, lo, hi, step, on_close):
            df = pl.from_arrow(batch)
            if predicate is not None:
                df = df.filter(predicate)
            if with_columns is not None:
                df = df.select(with_columns)
            if left is not None:
                df = df.head(left)
                left -= df.height
            yield df
            if left is not None and left <= 0:
                return

    return register_io_source(source, schema=sch)
