"""``fastodin cat FILE [--channel GLOB] [--start S] [--end S] [--format jsonl|csv|hex]``.

Prints decoded records: typed values where a layout or an ODIN definition is known, the id-0
metadata decoded, the payload in hex otherwise.
"""
from __future__ import annotations

import csv
import math
import sys
from typing import Any, Dict, List, Optional

import orjson

from ._util import EXIT_OK, EXIT_USAGE, CliError
from .sources import open_input
from .typed import Typer

NAME = "cat"
HELP = "print decoded records (typed where a layout or ODIN definition is known)"
EXAMPLE = ("fastodin cat demo.fastpack.zst --channel 'odin/set/*' --start 1 --end 1.01\n"
           "fastodin cat rec.fastpack --format csv --channel imu > imu.csv\n"
           "fastodin cat rec.fastpack.zst --format hex | head")


def add_arguments(p: Any) -> None:
    p.add_argument("file", metavar="FILE", help="archive or raw FastPack file")
    p.add_argument("--channel", "-c", action="append", metavar="GLOB",
                   help="only channels matching this name or glob (repeatable); 0 = id-0 metadata")
    p.add_argument("--start", type=float, metavar="S", help="only records with time >= S seconds")
    p.add_argument("--end", type=float, metavar="S", help="only records with time < S seconds")
    p.add_argument("--format", "-f", choices=["jsonl", "csv", "hex"], default="jsonl",
                   help="output format (default jsonl)")
    p.add_argument("--order", choices=["file", "time"], default="file", help="record order (default: file)")
    p.add_argument("--limit", "-n", type=int, metavar="N", help="stop after N records")
    p.add_argument("--raw", action="store_true", help="no typing: payloads in hex")


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
    with open_input(args.file, allow_damage=False) as ar:
        chans = _channels(args.channel)
        if chans is not None:
            ids = ar.channel_ids(chans)
            if not ids:
                known = ", ".join(sorted(ar.ids)[:12])
                raise CliError(f"no channel matches {' '.join(args.channel)} (channels: {known or 'none'})", EXIT_USAGE)
        typer = None if args.raw else Typer(ar)
        recs = ar.records(channels=chans, start=args.start, end=args.end, order=args.order)
        limit = args.limit
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
            n = _csv(recs, typer, out, limit)
    return EXIT_OK


def _csv(recs: Any, typer: Optional[Typer], out: Any, limit: Optional[int]) -> int:
    """CSV: ``time,channel`` then the typed columns of the first record, then ``other``; a record
    whose columns differ (another channel type) puts its values as JSON in ``other``, an untyped
    one ``hex:<payload>`` (spec/cli-outputs.md §4)."""
    w = csv.writer(out, lineterminator="\n")
    label = _Labels()
    cols: Optional[List[str]] = None
    n = 0
    header_done = False
    for r in recs:
        if limit is not None and n >= limit:
            break
        nm = label(r)
        v = typer.values(r) if typer is not None else None
        if v is not None and "meta" in v and r.id == 0:
            v = None
        if not header_done:
            cols = list(v) if v is not None else []
            w.writerow(["time", "channel"] + cols + ["other"])
            header_done = True
        if v is not None and cols is not None and list(v) == cols:
            w.writerow([repr(r.time), nm] + [_cell(v[c]) for c in cols] + [""])
        elif v is not None:
            w.writerow([repr(r.time), nm] + [""] * len(cols or []) + [orjson.dumps(_finite(v), default=repr).decode()])
        else:
            w.writerow([repr(r.time), nm] + [""] * len(cols or []) + ["hex:" + bytes(r.payload).hex()])
        n += 1
    if not header_done:
        w.writerow(["time", "channel", "other"])
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
