"""The viewer's local HTTP server: the data API (spec/view-api.md), the page and its assets.

Standard library only (:class:`http.server.ThreadingHTTPServer`): a local viewer needs no web
framework, and the core stays dependency-free.  Security rules: it binds 127.0.0.1 unless told
otherwise; it answers only requests whose ``Host`` header names the bound address, localhost or
(bound to a wildcard address) an IP literal, so a web page elsewhere cannot reach it through a
rebound DNS name; it serves only the files it was given (by channel name, never by path) and its
own static assets (a fixed list read from the package at start).

>>> import os, tempfile, json, urllib.request, numpy as np, fastodin
>>> from fastodin.view.dataset import ViewSet
>>> d = tempfile.mkdtemp(); path = os.path.join(d, "s.fastpack.zst")
>>> with fastodin.Writer(path) as w:
...     w.write_many(np.arange(3) * 1.0, "p", np.array([1.0, 5.0, 2.0]))
>>> srv = ViewServer(ViewSet([path], cache_dir=False), port=0); srv.start()
>>> url = srv.url + "api/series?channel=p&field=value"
>>> json.loads(urllib.request.urlopen(url).read())["max"]
[1.0, 5.0, 2.0]
>>> srv.stop()
"""
from __future__ import annotations

import ipaddress
import math
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import orjson

from .dataset import DEFAULT_POINTS, MAX_POINTS, ViewRequestError, ViewSet

__all__ = ["ViewServer", "STATIC_FILES", "DEFAULT_PORT", "host_allowed", "series_json"]

DEFAULT_PORT = 8780   # not 8765: the Foxglove WebSocket convention (record/replay --foxglove)
#: The page and its assets: URL path -> (package file, content type).  Nothing else is served.
STATIC_FILES: Dict[str, Tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/view.js": ("view.js", "text/javascript; charset=utf-8"),
    "/static/view.css": ("view.css", "text/css; charset=utf-8"),
    "/static/uPlot.iife.min.js": ("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/static/uPlot.min.css": ("uPlot.min.css", "text/css; charset=utf-8"),
    "/static/uPlot-LICENSE.txt": ("uPlot-LICENSE.txt", "text/plain; charset=utf-8"),
    "/favicon.ico": ("favicon.svg", "image/svg+xml"),
}
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
MAX_EVENTS_PER_REQUEST = 10000
DEFAULT_EVENTS = 1000


def _load_static() -> Dict[str, bytes]:
    from importlib import resources

    base = resources.files("fastodin.view") / "static"
    return {name: (base / name).read_bytes() for name in {f for f, _ in STATIC_FILES.values()}}


def host_allowed(host: Optional[str], bound: str, port: int) -> bool:
    """Is a request with this ``Host`` header for us (not a rebound DNS name)?

    >>> host_allowed("127.0.0.1:8765", "127.0.0.1", 8765), host_allowed("localhost:8765", "127.0.0.1", 8765)
    (True, True)
    >>> host_allowed("evil.example:8765", "127.0.0.1", 8765), host_allowed("127.0.0.1:9", "127.0.0.1", 8765)
    (False, False)
    >>> host_allowed("[::1]:8765", "127.0.0.1", 8765), host_allowed("10.1.2.3:80", "0.0.0.0", 80)
    (True, True)
    """
    if not host:
        return False
    h = host.strip()
    p: Optional[int] = None
    if h.startswith("["):
        end = h.find("]")
        if end < 0:
            return False
        name, rest = h[1:end], h[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return False
            p = int(rest[1:])
    else:
        name, sep, rest = h.rpartition(":")
        if not sep:
            name, rest = h, ""
        elif not rest.isdigit():
            return False
        p = int(rest) if rest else None
    if (p if p is not None else 80) != port:
        return False
    name = name.lower().rstrip(".")
    if name in ("localhost", "127.0.0.1", "::1", bound.lower()):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return bound in ("0.0.0.0", "::", "")


def _floats(a: np.ndarray) -> List[Any]:
    """A float column for JSON: ±inf as the strings "inf"/"-inf", NaN as null."""
    out = a.tolist()
    if a.dtype.kind == "f":
        for k in np.flatnonzero(~np.isfinite(a)).tolist():
            x = out[k]
            out[k] = None if x != x else ("inf" if x > 0 else "-inf")
    return out


def series_json(env: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """The JSON form of an envelope: min/max null for a run without any non-NaN value."""
    allnan = env["nan"] == env["n"]
    mn, mx = _floats(env["min"]), _floats(env["max"])
    for k in np.flatnonzero(allnan).tolist():
        mn[k] = mx[k] = None
    return {"t0": _floats(env["t0"]), "t1": _floats(env["t1"]), "min": mn, "max": mx,
            "n": env["n"].tolist(), "nan": env["nan"].tolist()}


def _number(q: Dict[str, List[str]], key: str) -> Optional[float]:
    v = _one(q, key)
    if v is None or v == "":
        return None
    try:
        x = float(v)
    except ValueError:
        raise ViewRequestError(f"{key}={v!r} is not a number") from None
    if not math.isfinite(x):
        raise ViewRequestError(f"{key}={v!r} must be a finite number of seconds")
    return x


def _one(q: Dict[str, List[str]], key: str) -> Optional[str]:
    got = q.get(key)
    if not got:
        return None
    if len(got) > 1:
        raise ViewRequestError(f"{key} given {len(got)} times")
    return got[0]


def _check_params(q: Dict[str, List[str]], allowed: Tuple[str, ...]) -> None:
    extra = sorted(set(q) - set(allowed))
    if extra:
        raise ViewRequestError(f"unknown parameter {extra[0]!r} (this endpoint takes {', '.join(allowed)})")


def _window(q: Dict[str, List[str]]) -> Tuple[Optional[float], Optional[float]]:
    t0, t1 = _number(q, "start"), _number(q, "end")
    if t0 is not None and t1 is not None and not t1 > t0:
        raise ViewRequestError(f"end={t1!r} must be greater than start={t0!r}")
    return t0, t1


def _event_text(payload: bytes) -> str:
    """An ODIN event packet's payload (after its 10-byte header) as text, else hex."""
    body = payload[10:].rstrip(b"\0")
    try:
        s = body.decode("utf-8")
        if s.isprintable():
            return s[:200]
    except UnicodeDecodeError:
        pass
    return body[:100].hex()


class _Handler(BaseHTTPRequestHandler):
    server_version = "fastodin-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60
    app: "ViewServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        if self.app.log is not None:
            self.app.log(f"{self.address_string()} {format % args}")

    # ---- responses ----------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, extra: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        body = orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        self._send(status, body + b"\n", "application/json; charset=utf-8", {"Cache-Control": "no-store"})

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": " ".join(str(message).split()), "status": status})

    # ---- dispatch -----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        app = self.app
        if not host_allowed(self.headers.get("Host"), app.host, app.port):
            self._error(403, f"Host {self.headers.get('Host')!r} refused: use http://{app.url_host}:{app.port}/ "
                             "(requests for other host names are refused against DNS rebinding)")
            return
        parts = urllib.parse.urlsplit(self.path)
        route = parts.path
        try:
            q = urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=False,
                                      errors="strict", max_num_fields=64)
        except (ValueError, UnicodeDecodeError) as exc:
            self._error(400, f"bad query string: {exc}")
            return
        try:
            if route in STATIC_FILES:
                name, ctype = STATIC_FILES[route]
                hdr = {"Cache-Control": "no-cache"}
                if name == "index.html":
                    hdr["Content-Security-Policy"] = _CSP
                self._send(200, app.static[name], ctype, hdr)
            elif route == "/api/channels":
                _check_params(q, ())
                self._json(200, app.api_channels())
            elif route == "/api/series":
                self._json(200, app.api_series(q))
            elif route == "/api/events":
                self._json(200, app.api_events(q))
            elif route == "/api/info":
                _check_params(q, ())
                self._json(200, app.api_info())
            elif route == "/api/status":
                _check_params(q, ())
                self._json(200, app.api_status())
            else:
                self._error(404, f"no such page: {route!r}")
        except ViewRequestError as exc:
            self._error(exc.status, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - one line to the page, never a traceback
            self._error(500, f"{type(exc).__name__}: {exc}")

    do_HEAD = do_GET

    def _refuse_method(self) -> None:
        self._error(405, f"method {self.command} not allowed (the viewer is read-only: GET)")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method


def _default(o: Any) -> Any:
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, bytes):
        return o.hex()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


class ViewServer:
    """Serve a :class:`~fastodin.view.dataset.ViewSet` over HTTP.

    :meth:`start` binds, then builds the summaries on a background thread (``progress(done,
    total)``) while already answering (series requests wait for their file's summary), and looks
    for growth every ``poll_interval`` seconds.  ``port=0`` picks a free port.  ``log``: a
    callable taking one line per request (None: quiet).
    """

    def __init__(self, viewset: ViewSet, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 poll_interval: float = 0.25, progress: Optional[Callable[[float, Optional[float]], None]] = None,
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.vs = viewset
        self.host = host
        self.static = _load_static()
        self.poll_interval = poll_interval
        self.progress = progress
        self.log = log
        self.build_error: Optional[BaseException] = None
        handler = type("Handler", (_Handler,), {"app": self})
        cls = _Server6 if ":" in host else _Server4
        self.httpd = cls((host, port), handler)
        self.port = int(self.httpd.server_address[1])
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []

    @property
    def url_host(self) -> str:
        h = "127.0.0.1" if self.host in ("0.0.0.0", "") else ("::1" if self.host == "::" else self.host)
        return f"[{h}]" if ":" in h else h

    @property
    def url(self) -> str:
        """``http://127.0.0.1:P/`` (the bound address; a wildcard is shown as loopback)."""
        return f"http://{self.url_host}:{self.port}/"

    # ---- life -----------------------------------------------------------------------------------
    def start(self, serve: bool = True) -> None:
        """Start the build and follow threads and (``serve``) the HTTP loop on a thread too."""
        self._spawn(self._build, "fastodin-view-build")
        self._spawn(self._follow, "fastodin-view-follow")
        if serve:
            self._spawn(self.httpd.serve_forever, "fastodin-view-http")

    def serve_forever(self) -> None:
        """Serve on the calling thread until :meth:`stop` (or KeyboardInterrupt)."""
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving, wait for the threads, close the files."""
        self._stop.set()
        if any(t.name == "fastodin-view-http" for t in self._threads):
            self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=30)
        self.vs.close()

    def _spawn(self, fn: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=fn, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _build(self) -> None:
        def cb(done: float, total: Optional[float]) -> None:
            self._progress = (done, total)
            if self.progress is not None:
                self.progress(done, total)

        try:
            self.vs.build(cb)
        except BaseException as exc:   # reported by /api/status and the series of that file
            self.build_error = exc

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_interval):
            if not self.vs.ready:
                continue
            try:
                self.vs.refresh()
            except Exception as exc:  # noqa: BLE001 - a bad moment of a growing file: next poll
                for f in self.vs.files:
                    if not f.notes or f.notes[-1] != f"growth not read: {exc}":
                        f.notes.append(f"growth not read: {exc}")

    # ---- API ------------------------------------------------------------------------------------
    def api_channels(self) -> Dict[str, Any]:
        return {"channels": self.vs.channels(), "tags": self.vs.tags(), "generation": self.vs.generation,
                "files": [{"name": f.stem, "path": f.path} for f in self.vs.files]}

    def api_series(self, q: Dict[str, List[str]]) -> Dict[str, Any]:
        _check_params(q, ("channel", "field", "start", "end", "points"))
        channel, field = _one(q, "channel"), _one(q, "field")
        if channel is None:
            raise ViewRequestError("channel is required (/api/series?channel=NAME&field=FIELD)")
        if field is None:
            raise ViewRequestError("field is required (/api/series?channel=NAME&field=FIELD)")
        t0, t1 = _window(q)
        p = _one(q, "points")
        points = DEFAULT_POINTS
        if p is not None:
            try:
                points = int(p)
            except ValueError:
                raise ViewRequestError(f"points={p!r} is not an integer") from None
            if not 1 <= points <= MAX_POINTS:
                raise ViewRequestError(f"points={points} must be between 1 and {MAX_POINTS}")
        f, name = self.vs.resolve(channel)
        f.field_of(name, field)               # 400 before waiting for a summary
        env = f.series(name, field, t0, t1, points)
        out: Dict[str, Any] = {"channel": channel, "field": field, "start": t0, "end": t1, "points": points}
        out.update(series_json(env))
        out["generation"] = self.vs.generation
        return out

    def api_events(self, q: Dict[str, List[str]]) -> Dict[str, Any]:
        _check_params(q, ("start", "end", "limit"))
        t0, t1 = _window(q)
        lim = _one(q, "limit")
        limit = DEFAULT_EVENTS
        if lim is not None:
            try:
                limit = int(lim)
            except ValueError:
                raise ViewRequestError(f"limit={lim!r} is not an integer") from None
            if not 1 <= limit <= MAX_EVENTS_PER_REQUEST:
                raise ViewRequestError(f"limit={limit} must be between 1 and {MAX_EVENTS_PER_REQUEST}")
        evs = self.vs.events(t0, t1)
        count = len(evs)
        if count > limit:
            evs = [evs[k] for k in np.linspace(0, count - 1, limit).astype(np.int64).tolist()]
        return {"events": [{"t": t if math.isfinite(t) else str(t), "channel": c, "text": _event_text(p)}
                           for t, c, p in evs],
                "count": count, "truncated": count > limit,
                "dropped": sum(f.events_dropped for f in self.vs.files)}

    def api_info(self) -> Dict[str, Any]:
        return {"files": [dict(f.info(), name=f.stem) for f in self.vs.files]}

    def api_status(self) -> Dict[str, Any]:
        files = []
        for f in self.vs.files:
            files.append({"name": f.stem, "ready": f.ready.is_set(), "error": f.error,
                          "generation": f.generation, "size": f._st.ar.size})
        return {"generation": self.vs.generation, "ready": self.vs.ready, "files": files,
                "progress": list(self._progress), "time": time.time()}

    _progress: Tuple[float, Optional[float]] = (0.0, None)


class _Server4(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Server6(_Server4):
    import socket as _socket
    address_family = _socket.AF_INET6
