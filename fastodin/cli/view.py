"""``fastodin view FILE [FILE...]``: look at recordings in the browser (a local web viewer).

Prints the URL (``http://127.0.0.1:P/``) as the first line on stdout, opens the browser (unless
``--no-browser``) and serves until Ctrl-C / SIGTERM (the normal way to stop it: exit 0).  Binds
127.0.0.1 unless ``--host`` says otherwise.  The summary of each file is built on first open (a
progress line on stderr when it is a terminal) and cached (``--cache-dir``, ``--no-cache``).
The server, its API and the cache file are in :mod:`fastodin.view` and spec/view-api.md.
"""
from __future__ import annotations

import errno
import sys
import threading
import time
from typing import Any

from ..progress import Progress
from ._util import EXIT_OK, plural, port_number
from .capture import StopFlag, _bind_error
from .sources import check_input, shown

NAME = "view"
HELP = "look at recordings in the browser: channel tree, zoomable plots, events, info (local web viewer)"
EXAMPLE = ("fastodin view demo.fastpack.zst\n"
           "fastodin view run1.fastpack.zst run2.fastpack.zst --port 8800 --no-browser\n"
           "# then open http://127.0.0.1:8780/?channel=odin/set/0x98A8&field=imu.accel.x")


def add_arguments(p: Any) -> None:
    from ..view.server import DEFAULT_PORT

    p.add_argument("files", nargs="+", metavar="FILE",
                   help="archive (.fastpack.zst), raw FastPack file or JPack tree; several allowed "
                        "(channel names then start with FILE-STEM:)")
    p.add_argument("--port", type=port_number, default=None,
                   help=f"TCP port (default {DEFAULT_PORT}, or a free one when that is taken; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 serves the network)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; just print the URL")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="where summaries are cached (default $XDG_CACHE_HOME/fastodin/view or ~/.cache/fastodin/view)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the summary cache")
    p.add_argument("--log", action="store_true", help="one line per HTTP request on stderr")


def _open_browser(url: str) -> None:
    import webbrowser

    try:
        webbrowser.open(url, new=2)
    except Exception:  # noqa: BLE001 - no browser here: the URL is printed
        pass


def run(args: Any) -> int:
    for f in args.files:
        check_input(f)
    from ..view.dataset import ViewSet
    from ..view.server import DEFAULT_PORT, ViewServer
    from .info import info_dict

    vs = ViewSet(list(args.files), cache_dir=False if args.no_cache else args.cache_dir, info=info_dict)
    bar = Progress("view: summarising", None, "B")
    log = (lambda line: print(f"fastodin view: {line}", file=sys.stderr, flush=True)) if args.log else None
    port = DEFAULT_PORT if args.port is None else args.port
    try:
        try:
            srv = ViewServer(vs, args.host, port, progress=bar, log=log)
        except OSError as e:
            if args.port is None and e.errno == errno.EADDRINUSE:
                srv = ViewServer(vs, args.host, 0, progress=bar, log=log)
                print(f"fastodin view: port {port} is taken; serving on {srv.port}", file=sys.stderr)
            else:
                raise _bind_error(e, "cannot serve on", args.host, port) from None
    except BaseException:
        vs.close()
        raise
    stop = StopFlag()
    stop.install()
    try:
        print(srv.url, flush=True)
        srv.start()
        if not args.no_browser:
            threading.Thread(target=_open_browser, args=(srv.url,), daemon=True).start()
        told = False
        while not stop:
            if not told and vs.ready:
                bar.close()
                told = True
                for f in vs.files:
                    src = "cached summary" if f.from_cache else "summary built"
                    n = sum(1 for c in f.channels() if c["fields"])
                    print(f"fastodin view: {shown(f.path)}: {plural(n, 'plottable channel')}, {src}"
                          + (f" ({f.error})" if f.error else ""), file=sys.stderr, flush=True)
                    for note in f.notes:
                        print(f"fastodin view: note: {note}", file=sys.stderr, flush=True)
            time.sleep(0.1)
    finally:
        bar.close()
        stop.restore()
        srv.stop()
    print(f"fastodin view: stopped ({stop.reason})", file=sys.stderr)
    return EXIT_OK

