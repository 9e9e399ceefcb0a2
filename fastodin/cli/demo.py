"""``fastodin demo``: real work on a fresh machine, no hardware, no arguments.

The built-in ODIN device simulator (:class:`fastodin.odin.simulator.Simulator`: three parameter
sets of mixed types incl. a struct and arrays, two event ids, identifier packets re-sent every
second, a little packet loss) produces a few seconds of recorded time; the packets go through the
ODIN -> FastPack mapping into an archive (:class:`fastodin.archive.writer.Writer`); then the demo
prints what ``fastodin info`` prints, a few decoded rows of every set, and checks that replaying
the archive gives back every packet byte for byte.

>>> import io, tempfile, os
>>> out = io.StringIO()
>>> odin_demo(os.path.join(tempfile.mkdtemp(), "d.fastpack.zst"), seconds=0.2, out=out)
0
>>> "verified" in out.getvalue()
True
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from typing import Any, Optional, TextIO

from ._util import EXIT_DATA, EXIT_OK, EXIT_USAGE, CliError, human_rate, open_writer, plural, table

__all__ = ["odin_demo", "default_demo_path", "print_rows"]

#: the ``source`` tag of a demo archive (how ``fastodin demo`` knows it may replace its own default file)
DEMO_SOURCE = "fastodin demo: simulated ODIN device"


def default_demo_path(name: str) -> str:
    """``name`` in the current directory, or in the temp directory when the cwd is not writable.

    >>> os.path.basename(default_demo_path("demo.fastpack.zst"))
    'demo.fastpack.zst'
    """
    cwd = os.getcwd()
    if os.access(cwd, os.W_OK):
        return os.path.join(cwd, name)
    return os.path.join(tempfile.gettempdir(), name)


# -- the ODIN path: simulator -> archive -> info -> decoded rows ----------------------------------

def _fmt_val(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (bytes, bytearray)):
        s = bytes(v).rstrip(b"\0")
        try:
            return repr(s.decode("ascii"))
        except UnicodeDecodeError:
            return s.hex()
    return str(v)


def print_rows(res: Any, out: TextIO, limit: int = 3, max_cols: int = 9) -> None:
    """A few decoded rows of every set (and events) of a :func:`fastodin.odin.decode` result."""
    for sid in sorted(res):
        tab = res[sid]
        rows = tab.rows(limit)
        if not rows:
            continue
        cols = [c for c in rows[0] if c not in ("timestamp", "ticks")]
        shown = cols[:max_cols]
        more = len(cols) - len(shown)
        print(f"set 0x{sid:04X}: {plural(len(tab), 'row')}, first {len(rows)}"
              + (f" (first {len(shown)} of {len(cols)} columns)" if more else ""), file=out)
        print(table([[_fmt_val(r[c]) for c in shown] for r in rows], shown,
                    right=range(len(shown))), file=out)
    for eid in sorted(getattr(res, "events", {}) or {}):
        ev = res.events[eid]
        if len(ev):
            first = ", ".join(f"{float(t):.4f}s {_fmt_val(p)}" for t, p in list(zip(ev.time, ev.payloads))[:limit])
            print(f"event {eid}: {plural(len(ev), 'event')}; first: {first}", file=out)


def odin_demo(path: str, seconds: float = 5.0, out: Optional[TextIO] = None, seed: int = 1,
              overwrite: bool = False) -> int:
    """Simulated ODIN device -> archive -> ``info`` -> decoded rows, with a replay self-check.
    An existing ``path`` is refused unless ``overwrite``."""
    out = sys.stdout if out is None else out
    from ..archive.reader import open_archive
    from ..odin.decode import decode as odin_decode
    from ..odin.mapping import OdinToFastPack, WriterSink
    from ..odin.replay import iter_packets
    from ..odin.simulator import Simulator
    from .info import info_dict, print_info
    from .sources import odin_records

    sim = Simulator(seed=seed, loss=0.002)
    t0 = time.perf_counter()
    packets = sim.packets(duration=seconds)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    with open_writer(path, overwrite) as w:
        w.set_tag("source", DEMO_SOURCE)
        w.set_tag("seconds", seconds)
        conv = OdinToFastPack(WriterSink(w))
        conv.add_many(packets)
        conv.close()
    t_rec = time.perf_counter() - t0
    print(f"fastodin demo: simulated ODIN device, {seconds:g} s of recorded time, {plural(len(packets), 'packet')} "
          f"-> {path}", file=out)
    print(f"  simulate {t_sim * 1e3:.0f} ms, map + compress + write {t_rec * 1e3:.0f} ms "
          f"({human_rate(len(packets) / max(t_rec, 1e-9))} packets/s)", file=out)
    print("", file=out)
    print(f"$ fastodin info {path}", file=out)
    with open_archive(path) as ar:
        d = info_dict(ar)
        print_info(d, out)
        t0 = time.perf_counter()
        res = odin_decode(odin_records(ar, channels=["odin/*", 0]))
        t_dec = time.perf_counter() - t0
        print("", file=out)
        print(f"decoded rows (fastodin.odin.decode, {t_dec * 1e3:.0f} ms):", file=out)
        print_rows(res, out)
        back = list(iter_packets(odin_records(ar)))
    print("", file=out)
    if back != packets:
        same = sum(1 for a, b in zip(back, packets) if a == b)
        print(f"FAILED: replay gave {plural(len(back), 'packet')}, {same} identical to the {len(packets)} recorded",
              file=out)
        return EXIT_DATA
    print(f"verified: replaying the archive gives back all {plural(len(packets), 'packet')} byte for byte, in order",
          file=out)
    print(f"next: fastodin cat {path} --channel 'odin/set/*' | head;  fastodin replay {path} --stdout --format burst",
          file=out)
    return EXIT_OK


# -- the subcommand ------------------------------------------------------------------------------
NAME = "demo"
HELP = "record a simulated device into a file, then show what is in it (no hardware needed)"
EXAMPLE = "fastodin demo                   # writes ./demo.fastpack.zst and shows what is in it\nfastodin demo -o /tmp/d.fastpack.zst --seconds 2"


def add_arguments(p: Any) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: demo.fastpack.zst in the "
                   "current directory, or the temp directory if that is not writable)")
    p.add_argument("--seconds", type=float, default=5.0, metavar="S",
                   help="seconds of recorded time to simulate (default 5)")
    p.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite FILE if it exists (without -o, an "
                   "earlier demo.fastpack.zst written by the demo is replaced anyway)")


def earlier_demo(path: str) -> bool:
    """True if ``path`` is an archive that ``fastodin demo`` wrote (its default file may be replaced)."""
    import stat

    from ..archive.reader import open_archive
    from ..errors import FastOdinError

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open_archive(path) as ar:
            return ar.format == "archive" and ar.tags.get("source") == DEMO_SOURCE
    except (OSError, FastOdinError):
        return False


def run(args: Any) -> int:
    if not (args.seconds > 0 and math.isfinite(args.seconds)) or args.seconds > 3600:
        raise CliError("--seconds must be in (0, 3600]", EXIT_USAGE)
    path = args.output or default_demo_path("demo.fastpack.zst")
    force = args.force or (args.output is None and earlier_demo(path))
    return odin_demo(path, seconds=args.seconds, seed=args.seed, overwrite=force)
