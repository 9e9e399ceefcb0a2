"""Helpers of the viewer tests: a server on loopback, JSON requests, and the brute-force envelope
every answer of ``/api/series`` is compared with."""
from __future__ import annotations

import contextlib
import http.client
import json
import math
import urllib.parse
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from fastodin.view.dataset import ViewSet
from fastodin.view.server import ViewServer


@contextlib.contextmanager
def serving(paths: List[str], cache_dir: Any = False, poll_interval: float = 0.1, **kw: Any) -> Iterator[ViewServer]:
    """A ViewServer on 127.0.0.1 (a free port) whose summaries are built before it yields."""
    srv = ViewServer(ViewSet(paths, cache_dir=cache_dir, **kw), port=0, poll_interval=poll_interval)
    srv.start()
    try:
        for f in srv.vs.files:
            f.ready.wait(120)
        yield srv
    finally:
        srv.stop()


def request(srv: ViewServer, path: str, host: Optional[str] = None, method: str = "GET",
            headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
    """One request on loopback (``host`` overrides the Host header; "" sends none)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    try:
        h = dict(headers or {})
        skip = host is not None
        conn.putrequest(method, path, skip_host=skip, skip_accept_encoding=True)
        if host:
            conn.putheader("Host", host)
        for k, v in h.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def get_json(srv: ViewServer, path: str, **params: Any) -> Tuple[int, Any]:
    q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    status, _h, body = request(srv, path + ("?" + q if q else ""))
    return status, json.loads(body)


def series(srv: ViewServer, channel: str, field: str, start: Optional[float] = None, end: Optional[float] = None,
           points: Optional[int] = None) -> Dict[str, Any]:
    status, j = get_json(srv, "/api/series", channel=channel, field=field,
                         start=None if start is None else repr(float(start)),
                         end=None if end is None else repr(float(end)),
                         points=points)
    assert status == 200, j
    return j


def _js(x: Any) -> Any:
    """A value as the API writes it: ±inf as strings, NaN as None, numbers as Python numbers."""
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return int(x)


def check_envelope(j: Dict[str, Any], t: np.ndarray, v: np.ndarray, start: Optional[float], end: Optional[float],
                   points: int, missing: Optional[np.ndarray] = None) -> None:
    """``j`` (an /api/series answer) against a brute force over every record ``(t, v)`` of the
    channel (file order; sorted here by time, stably, when not in order)."""
    keep = ~np.isnan(t)
    if start is not None:
        keep &= t >= start
    if end is not None:
        keep &= t < end
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(t[idx], kind="stable")]
    tt, vv = t[idx], v[idx]
    mm = None if missing is None else missing[idx]
    n = j["n"]
    assert sum(n) == tt.shape[0], (sum(n), tt.shape[0])
    assert len(n) <= points
    assert all(k >= 1 for k in n)
    if tt.shape[0] <= points:
        assert all(k == 1 for k in n)
    pos = 0
    for r in range(len(n)):
        k = n[r]
        seg_t = tt[pos:pos + k]
        seg = vv[pos:pos + k]
        bad = np.isnan(seg) if seg.dtype.kind == "f" else np.zeros(k, bool)
        if mm is not None:
            bad = bad | mm[pos:pos + k]
        assert j["t0"][r] == _js(seg_t[0]), (r, j["t0"][r], seg_t[0])
        assert j["t1"][r] == _js(seg_t[-1]), (r, j["t1"][r], seg_t[-1])
        assert j["nan"][r] == int(bad.sum()), (r, j["nan"][r], int(bad.sum()))
        good = seg[~bad]
        if good.shape[0]:
            assert j["min"][r] == _js(good.min()), (r, j["min"][r], good.min())
            assert j["max"][r] == _js(good.max()), (r, j["max"][r], good.max())
        else:
            assert j["min"][r] is None and j["max"][r] is None
        pos += k
