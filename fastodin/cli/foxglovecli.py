"""``--foxglove PORT`` of ``replay`` and ``record``: serve Foxglove's WebSocket protocol on HOST:PORT.

Argument checks and printing only; the server and the mapping are :mod:`fastodin.foxglove`
(spec/foxglove-ws.md).
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable, List, Optional

from ._util import EXIT_IO, EXIT_OK, EXIT_USAGE, CliError

__all__ = ["add_options", "start_server", "run_replay", "live_tee"]


def add_options(p: Any) -> None:
    """``--host`` (for ``--foxglove``; ``--foxglove`` itself goes where the command wants it)."""
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="--foxglove: address to serve on (default 127.0.0.1: this machine only)")


def start_server(port: int, host: str, name: str, quiet: bool) -> Any:
    """A started :class:`~fastodin.foxglove.FoxgloveServer`; CliError exit 3 if the port is taken."""
    from ..foxglove import FoxgloveServer

    if not 0 <= port <= 65535:
        raise CliError(f"--foxglove {port}: a port is 0..65535", EXIT_USAGE)
    try:
        s = FoxgloveServer(host, port, name=name).start()
    except OSError as e:
        raise CliError(f"cannot serve Foxglove on {host}:{port}: {e.strerror or e}", EXIT_IO) from None
    if not quiet:
        shown = f"[{host}]" if ":" in host else host
        print(f"fastodin: serving Foxglove WebSocket on ws://{shown}:{s.port} (Foxglove: Open connection -> "
              f"Foxglove WebSocket -> ws://{shown}:{s.port})", file=sys.stderr, flush=True)
    return s


def live_tee(server: Any) -> Callable[[Any], Any]:
    """``record``: wrap each archive writer (each rotated part) in a live tee that keeps its channels."""
    from ..foxglove.live import LiveTee

    last: List[Any] = []

    def wrap(writer: Any) -> Any:
        tee = LiveTee(writer, server, previous=last[-1] if last else None)
        last[:] = [tee]
        return tee

    return wrap


def run_replay(args: Any) -> int:
    """``fastodin replay FILE --foxglove PORT [--speed S] [--channel ..] [--start/--end]``."""
    from ..foxglove.live import replay_archive
    from .sources import open_input

    chans = [int(c) if c == "0" else c for c in args.channel] if args.channel else None
    with open_input(args.file, allow_damage=False) as ar:
        if chans is not None and not ar.channel_ids(chans):
            raise CliError(f"no channel matches {' '.join(args.channel)}", EXIT_USAGE)
    srv = start_server(args.foxglove, args.host, f"fastodin replay {args.file}", args.quiet)
    wait: Optional[float] = None if args.no_wait else math.inf

    def ready() -> None:
        if not args.quiet and wait is not None:
            print("fastodin replay: channels advertised; waiting for a client to subscribe", file=sys.stderr,
                  flush=True)

    try:
        rep = replay_archive(args.file, srv, channels=chans, start=args.start, end=args.end, speed=args.speed,
                             wait=wait, on_ready=ready)
    finally:
        srv.close()
    if not args.quiet:
        drop = f", {rep['dropped']} dropped for slow clients" if rep["dropped"] else ""
        print(f"replayed {rep['messages']} messages to Foxglove ({rep['clients']} clients, {rep['published']} sent"
              f"{drop})", file=sys.stderr)
    return EXIT_OK
