"""``fastodin recover IN OUT``: copy every readable frame of a damaged or crashed recording into a
new archive and say, as numbers, what was saved and what was lost.  Exit 0 when nothing was lost,
1 when something was (OUT is written either way).  IN ``-`` reads standard input (into a temporary
file first).  A progress line shows on stderr when it is a terminal.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from .info import _jsonable  # non-finite floats -> null: always valid JSON
from ..progress import Progress
from ._util import EXIT_DATA, EXIT_IO, EXIT_OK, CliError, human_bytes, one_line, plural, preset_arg
from .sources import check_input, check_output, local_path, shown

NAME = "recover"
HELP = "salvage a damaged or crashed recording into a new archive; report saved/lost records"
EXAMPLE = "fastodin recover crashed.fastpack.zst saved.fastpack.zst\nfastodin recover cut.fastpack.zst saved.fastpack.zst --json"


def add_arguments(p: Any) -> None:
    p.add_argument("input", metavar="IN", help="damaged archive, crashed archive, raw FastPack file, JPack tree "
                   "or - (standard input)")
    p.add_argument("output", metavar="OUT", help="new archive to write")
    p.add_argument("--preset", type=preset_arg, default=None,
                   help="compression preset of OUT: none fast light medium heavy tight max, or a zstd level "
                        "(default: that of IN)")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")


def _t(v: Any) -> str:
    return "?" if v is None else f"{v:.6f}"


def run(args: Any) -> int:
    check_input(args.input)
    check_output(args.output, args.force, args.input)
    from ..archive.recover import recover
    from ..errors import ArchiveLockedError, DataError, FastOdinError, OutputExistsError

    try:
        with local_path(args.input) as src, Progress("recover", None, "B") as bar:
            rep = recover(src, args.output, preset=args.preset, progress=bar, overwrite=args.force)
    except (ArchiveLockedError, OutputExistsError) as e:   # OUT is not ours: leave it alone
        raise CliError(f"cannot write {args.output}: {e.strerror}", EXIT_IO) from None
    except (DataError, FastOdinError) as e:   # OUT is untouched: recover writes OUT.part, renamed at the end
        raise CliError(f"{shown(args.input)}: nothing recoverable: {one_line(e)}", EXIT_DATA) from None
    r = rep.as_dict()
    lost_any = bool(r["lost"]) or (r["records_lost"] or 0) > 0
    if args.json:
        r["output"] = args.output
        sys.stdout.write(json.dumps(_jsonable(r), indent=2) + "\n")
    else:
        exact = r["records_lost"] is not None
        n = r["records_lost"] if exact else rep.records_lost_min
        print(f"saved: {plural(r['records_saved'], 'record')} in {plural(r['frames_saved'], 'frame')} -> "
              f"{args.output} ({human_bytes(os.path.getsize(args.output))})")
        lost = plural(n, "record") if exact else (f"at least {plural(n, 'record')}" if n else "an unknown number of records")
        print(f"lost:  {lost} in "
              f"{plural(r['frames_lost'], 'frame')} ({plural(len(r['lost']), 'damaged region')})")
        for x in r["lost"]:
            fr = "" if x.get("frame") is None else f"frame {x['frame']}, "
            recs = plural(x.get("records"), "record")
            if x.get("records") is None and x.get("at_least"):
                recs = f"at least {plural(x['at_least'], 'record')}"
            print(f"  {fr}offset {x.get('offset')}: {recs}, "
                  f"time {_t(x.get('t_min'))} .. {_t(x.get('t_max'))}: {x.get('reason')}")
    return EXIT_DATA if lost_any else EXIT_OK
