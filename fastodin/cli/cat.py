"""``fastodin cat FILE [--channel GLOB] [--start S] [--end S] [--format jsonl|csv|hex]``.

Prints decoded records: typed values where a layout or an ODIN definition is known, the id-0
metadata decoded, the payload in hex otherwise.  ``FILE`` ``-`` reads standard input.  With stdout
redirected and stderr a terminal, a progress line shows on stderr.
"""
from __future__ import annotations

import csv
import math
import sys
from typing import Any, Dict, List, Optional

import orjson

from ..progress import Progress, track
from ._util import EXIT_OK, EXIT_USAGE, CliError, is_terminal
from .sources import add_namespace_argument, open_input, record_total
from .typed import Typer

NAME = "cat"
HELP = "print decoded records (typed where a layout or ODIN definition is known)"
EXAMPLE = ("fastodin cat demo.fastpack.zst --channel 'odin/set/*' --start 1 --end 1.01\n"
           "fastodin cat rec.fastpack --format csv --channel imu > imu.csv\n"
           "fastodin cat rec.fastpack.zst --format hex | head")


def add_arguments(p: Any) -> None:
    p.add_argument("file", metavar="FILE", help="archive or raw FastPack file (- = standard input)")
    p.add_argument("--channel", "-c", action="append", metavar="GLOB",
                   help="only channels matching this name or glob (repeatable); 0 = id-0 metadata")
    p.add_argument("--start", type=float, metavar="S", help="only records with time >= S seconds")
    p.add_argument("--end", type=float, metavar="S", help="only records with time < S seconds")
    p.add_argument("--format", "-f", choices=["jsonl", "csv", "hex"], default="jsonl",
                   help="output format (default jsonl)")
    p.add_argument("--order", choices=["file", "time"], default="file", help="record order (default: file)")
    p.add_argument("--limit", "-n", type=int, metavar="N", help="stop after N records")
    p.add_argument("--raw", action="store_true", help="no typing: payloads in hex")
    add_namespace_argument(p)


def _channels(sel: Optional[List[str]]) -> Any:
    if not sel:
        return None
    return [int(c) if c == "0" else c for c in sel]


def _check_range(args: Any) -> None:
    for k in ("start", "end"):
        v = getattr(args, k)
        if v is not None and math.isnan(v):
            raise CliError(f"--{k} is NaN", EXIT_USAGE)
    if args.start is not None and args.end is not None and args.end < args.start:
        raise CliError(f"--end {args.end} is before --start {args.start}", EXIT_USAGE)
    if args.limit is not None and args.limit < 0:
        raise CliError("--limit must be >= 0", EXIT_USAGE)


def run(args: Any) -> int:
    _check_range(args)
    out = sys.stdout
    with open_input(args.file, allow_damage=False, namespace=args.namespace) as ar:
        chans = _channels(args.channel)
        ids = ar.channel_ids(chans)
        if chans is not None and not ids:
            known = ", ".join(sorted(ar.ids)[:12])
            raise CliError(f"no channel matches {' '.join(args.channel)} (channels: {known or 'none'})", EXIT_USAGE)
        typer = None if args.raw else Typer(ar)
        recs = ar.records(channels=chans, start=args.start, end=args.end, order=args.order)
        limit = args.limit
        total = record_total(ar, ids, args.start, args.end)
        bar = Progress("cat", total if limit is None else min(total, limit), "rec",
                       stream=None if is_terminal(out) else "auto")   # records on the terminal: no bar among them
        if bar.enabled:
            recs = track(recs, bar, every=4096)
        with bar:
            _write(args, ar, recs, typer, ids, out, limit)
    return EXIT_OK


def _write(args: Any, ar: Any, recs: Any, typer: Optional[Typer], ids: Optional[set], out: Any,
           limit: Optional[int]) -> int:
    """Print ``recs`` in ``args.format``; returns the number printed."""
    n = 0
    write = out.write
    label = _Labels()
    if args.format == "hex":
        for r in recs:
            if limit is not None and n >= limit:
                break
            nm = label(r)
            write(f"{r.time!r}\t{nm}\t{len(r.payload)}\t{bytes(r.payload).hex()}\n")
            n += 1
    elif args.format == "jsonl":
        dumps = orjson.dumps
        opt = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        for r in recs:
            if limit is not None and n >= limit:
                break
            nm = label(r)
            d: Dict[str, Any] = {"t": r.time if math.isfinite(r.time) else repr(r.time), "channel": nm}
            v = typer.values(r) if typer is not None else None
            if v is None:
                d["hex"] = bytes(r.payload).hex()
            elif "meta" in v and r.id == 0:
                d["meta"] = v["meta"]
            else:
                d["values"] = v
            try:
                line = dumps(d, option=opt, default=repr)
                if b"null" in line and v is not None:  # JSON has no NaN/Inf: orjson wrote null
                    d = _finite(d)
                    line = dumps(d, option=opt, default=repr)
            except TypeError:
                d.pop("values", None)
                d.pop("meta", None)
                d["hex"] = bytes(r.payload).hex()
                line = dumps(d, option=opt)
            write(line.decode() + "\n")
            n += 1
    else:
        n = _csv(ar, recs, typer, ids, args.start, args.end, out, limit)
    return n


#: The fixed csv columns; a value column of the same name is written as ``values.<name>``.
_CSV_FIXED = ("time", "channel", "meta", "hex")


def csv_columns(ar: Any, typer: Optional[Typer], ids: Optional[set], start: Optional[float] = None,
                end: Optional[float] = None) -> List[str]:
    """The value columns of ``cat --format csv``: the union, in channel-id order, of the columns of
    every selected channel that the index says has records in ``[start, end)`` (``meta`` for id-0
    metadata), known before the first row (spec/cli-outputs.md §4)."""
    present = set()
    for e in ar.frames:
        for cid, c in e.channels.items():
            if (ids is None or cid in ids) and (start is None or not c[3] < start) and (end is None or not c[2] >= end):
                present.add(cid)
    cols: Dict[str, None] = {}
    meta = False
    for cid in sorted(present):
        got = typer.columns(0 if cid == 0 else ar.names.get(cid)) if typer is not None else None
        if got == ["meta"] and cid == 0:
            meta = True
        elif got:
            cols.update(dict.fromkeys(got))
    return list(cols) + (["meta"] if meta else [])


def _csv(ar: Any, recs: Any, typer: Optional[Typer], ids: Optional[set], start: Optional[float],
         end: Optional[float], out: Any, limit: Optional[int]) -> int:
    """CSV for pandas (spec/cli-outputs.md §4): ``time,channel``, one column per value column of
    any selected channel (:func:`csv_columns`), then ``hex``.  A record fills the columns it has
    and leaves the others empty; an untyped record, or one whose values do not fit the header, puts
    its payload in ``hex`` instead."""
    w = csv.writer(out, lineterminator="\n")
    label = _Labels()
    vcols = csv_columns(ar, typer, ids, start, end)
    has_meta = bool(vcols) and vcols[-1] == "meta"
    if has_meta:
        vcols = vcols[:-1]
    header = ["time", "channel"] + [f"values.{c}" if c in _CSV_FIXED else c for c in vcols]
    header += ["meta", "hex"] if has_meta else ["hex"]
    w.writerow(header)
    pos = {c: k for k, c in enumerate(vcols)}
    width = len(header) - 2
    hex_at = width - 1
    n = 0
    for r in recs:
        if limit is not None and n >= limit:
            break
        row: List[Any] = [""] * width
        v = typer.values(r) if typer is not None else None
        if v is not None and r.id == 0 and "meta" in v:
            if has_meta:
                row[hex_at - 1] = orjson.dumps(_finite(v["meta"]), default=repr).decode()
            else:
                row[hex_at] = bytes(r.payload).hex()
        elif v is not None and all(k in pos for k in v):
            for k, x in v.items():
                row[pos[k]] = _cell(x)
        else:
            row[hex_at] = bytes(r.payload).hex()
        w.writerow([repr(r.time), label(r)] + row)
        n += 1
    return n


class _Labels:
    r"""Channel label of a record: its name (non-UTF-8 name bytes as ``\xNN`` escapes, so every
    output line is valid UTF-8), ``"0"`` for id-0 metadata, ``"#<id>"`` for an unnamed id.

    >>> from fastodin.codec import Record
    >>> lab = _Labels()
    >>> lab(Record(0.0, 1, b"", "imu\udcff")), lab(Record(0.0, 0, b"", None)), lab(Record(0.0, 7, b"", None))
    ('imu\\xff', '0', '#7')
    """

    def __init__(self) -> None:
        self._cache: Dict[str, str] = {}

    def __call__(self, r: Any) -> str:
        nm = r.name
        if nm is None:
            return "0" if r.id == 0 else f"#{r.id}"
        got = self._cache.get(nm)
        if got is None:
            try:
                nm.encode("utf-8")
                got = nm
            except UnicodeEncodeError:
                got = nm.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            self._cache[nm] = got
        return got


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict)):
        return orjson.dumps(_finite(v), default=repr).decode()
    return v


def _finite(v: Any) -> Any:
    """Non-finite floats as the strings ``'nan'``, ``'inf'``, ``'-inf'`` (JSON has no such numbers;
    orjson would write ``null`` and lose which one it was).

    >>> _finite({"a": [1.0, float("nan")], "b": float("-inf")})
    {'a': [1.0, 'nan'], 'b': '-inf'}
    """
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v
