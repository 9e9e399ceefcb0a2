"""``fastodin ls PATH... [--json]``: the dataset catalog of many recordings, from their indexes only.

PATHs are files, directories (every ``*.fastpack.zst`` and ``*.fastpack`` below them) or globs
(quote them; ``**`` is recursive).  One row per (file, channel): records, first and last time,
payload bytes, kind; ``--channel``, ``--start/--end`` and ``--tag K=V`` select as
``fastodin.dataset(...).select(...)``.  A file that cannot be opened is listed with its error and the
others still are; the exit code is then 1 (a data problem) or 3 (I/O).  ``--json``: spec/dataset.md §2.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Tuple

from ._util import EXIT_OK, EXIT_USAGE, CliError, human_bytes, plural, table
from .info import _fmt_t, _jsonable

NAME = "ls"
HELP = "list the recordings of a dataset (files, directories, globs): channels, counts, spans, from the indexes"
EXAMPLE = ("fastodin ls recordings/                          # every archive below it\n"
           "fastodin ls 'day-*/**/*.fastpack.zst' --channel 'odin/set/*' --json\n"
           "fastodin ls recordings/ --tag site=lab --start 100 --end 200")


def _tag(text: str) -> Tuple[str, Any]:
    import argparse

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--tag wants KEY=VALUE, not {text!r}")
    k, v = text.split("=", 1)
    try:
        val: Any = json.loads(v)       # 3 -> 3, true -> True, "x" -> x
    except ValueError:
        val = v
    return k, val


def add_arguments(p: Any) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="archives, raw .fastpack files, directories or globs")
    p.add_argument("--channel", action="append", metavar="GLOB", help="only channels matching GLOB (repeatable)")
    p.add_argument("--start", type=float, metavar="S", help="only channels with records at or after S seconds")
    p.add_argument("--end", type=float, metavar="S", help="only channels with records before S seconds")
    p.add_argument("--tag", action="append", type=_tag, metavar="K=V",
                   help="only files whose tag K equals V (V read as JSON when it parses; repeatable)")
    p.add_argument("--json", action="store_true", help="the rows as a JSON array on stdout")


def _text(rows: List[Dict[str, Any]]) -> str:
    good = [r for r in rows if r["error"] is None and r["channel"] is not None]
    cells = [[r["path"], r["channel"] if r["channel"] != "0" else "(id-0 metadata)", r["count"],
              _fmt_t(r["start"]), _fmt_t(r["end"]), human_bytes(r["bytes"]),
              r["kind"] if not r["stream"] else f"{r['kind']} {r['stream']}:{r['role']}"] for r in good]
    return table(cells, ["path", "channel", "records", "first s", "last s", "bytes", "kind"], right=[2, 3, 4, 5])


def run(args: Any) -> int:
    from ..datasets import dataset

    if args.start is not None and args.end is not None and not args.start < args.end:
        raise CliError(f"--start {args.start} must be before --end {args.end}", EXIT_USAGE)
    ds = dataset(args.paths, channels=args.channel, start=args.start, end=args.end,
                 tags=dict(args.tag) if args.tag else None)
    rows = ds.rows()
    bad = ds.failed
    code = max([EXIT_OK] + [int(f.error_code or 1) for f in bad])
    if args.json:
        sys.stdout.write(json.dumps(_jsonable(rows), indent=2) + "\n")
    else:
        if any(r["channel"] is not None for r in rows):
            print(_text(rows))
        for f in bad:
            print(f"ERROR  {f.path}: {f.error}")
        files = {r["path"] for r in rows}
        print(f"{plural(len(files), 'file')}"
              + (f" ({len(bad)} unreadable)" if bad else "")
              + f", {plural(sum(1 for r in rows if r['channel'] is not None), 'channel')}, "
              f"{plural(sum(r['count'] for r in rows), 'record')}")
    if bad:
        sys.stdout.flush()
        print(f"fastodin ls: error: {plural(len(bad), 'file')} could not be read, e.g. {bad[0].path}: {bad[0].error}",
              file=sys.stderr)
    return code
