"""``fastodin recover IN OUT``: copy every readable frame of a damaged or crashed recording into a
new archive and say, as numbers, what was saved and what was lost.  Exit 0 when nothing was lost,
1 when something was (OUT is written either way).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from .info import _jsonable  # non-finite floats -> null: always valid JSON
from ._util import EXIT_DATA, EXIT_IO, EXIT_OK, EXIT_USAGE, CliError, human_bytes, one_line
from .sources import check_input

NAME = "recover"
HELP = "salvage a damaged or crashed recording into a new archive; report saved/lost records"
EXAMPLE = "fastodin recover crashed.fastpack.zst saved.fastpack.zst\nfastodin recover cut.fastpack.zst saved.fastpack.zst --json"


def add_arguments(p: Any) -> None:
    p.add_argument("input", metavar="IN", help="damaged archive, crashed archive, raw FastPack file or JPack tree")
    p.add_argument("output", metavar="OUT", help="new archive to write")
    p.add_argument("--preset", default=None, help="compression preset of OUT (default: that of IN)")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")


def _t(v: Any) -> str:
    return "?" if v is None else f"{v:.6f}"


def run(args: Any) -> int:
    check_input(args.input)
    if os.path.exists(args.output):
        if os.path.samefile(args.input, args.output):
            raise CliError("IN and OUT are the same file", EXIT_USAGE)
        if not args.force:
            raise CliError(f"{args.output} exists (use --force to overwrite)", EXIT_IO)
    d = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(d):
        raise CliError(f"cannot write {args.output}: directory {d} does not exist", EXIT_IO)
    from ..archive.recover import recover
    from ..errors import DataError, FastOdinError

    try:
        rep = recover(args.input, args.output, preset=args.preset)
    except (DataError, FastOdinError) as e:
        if os.path.exists(args.output):
            os.unlink(args.output)
        raise CliError(f"{args.input}: nothing recoverable: {one_line(e)}", EXIT_DATA) from None
    r = rep.as_dict()
    lost_any = bool(r["lost"]) or (r["records_lost"] or 0) > 0
    if args.json:
        r["output"] = args.output
        sys.stdout.write(json.dumps(_jsonable(r), indent=2) + "\n")
    else:
        lost = "an unknown number of" if r["records_lost"] is None else str(r["records_lost"])
        print(f"saved: {r['records_saved']} records in {r['frames_saved']} frames -> {args.output} "
              f"({human_bytes(os.path.getsize(args.output))})")
        print(f"lost:  {lost} records in {r['frames_lost']} frames ({len(r['lost'])} damaged regions)")
        for x in r["lost"]:
            recs = "?" if x.get("records") is None else x["records"]
            fr = "" if x.get("frame") is None else f"frame {x['frame']}, "
            print(f"  {fr}offset {x.get('offset')}: {recs} records, time {_t(x.get('t_min'))} .. {_t(x.get('t_max'))}: "
                  f"{x.get('reason')}")
    return EXIT_DATA if lost_any else EXIT_OK
