"""Viewer benchmark (issue 12; run by hand: ``python tests/bench/bench_view.py``).

Workload: an archive of 50M records (``-n``), 5 channels of 10M records each at 1 kHz, each a
layout of two typed float fields (``x`` float64 with a few NaN, ``y`` float32), written in
interleaved slabs as a recorder would (built once, reused: ``--archive PATH``).

Measured against a real ``fastodin view`` server process (loopback only, bounded requests):

* first ``/api/series`` over the whole span after the server starts with an empty cache (the
  summary is built then): seconds, and seconds per 10M records (target <= 1 s);
* the same after a restart that reads the cached summary;
* later requests with N = 2000, whole span and random zooms (1e-6 .. 1 of the span): p50/p99 ms
  (target <= 150 ms);
* the server's peak RSS (VmHWM; target <= 1 GiB);
* first paint of a plot in headless Chromium after the page loads (target <= 1.5 s), when a
  Chromium and selenium are installed;
* reference: ``Archive.read`` of one whole channel (what a load-everything viewer does first).

The machine is shared: figures are noisy while others run tests.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))   # tests/: view_browser
N_CH = 5
DT = np.dtype([("x", "<f8"), ("y", "<f4")])


def build(path: str, n: int) -> None:
    import fastodin

    per = n // N_CH
    slab = 20000
    tmp = path + ".part"
    with fastodin.Writer(tmp, flush_interval=None, overwrite=True) as w:
        for s in range(0, per, slab):
            k = min(slab, per - s)
            i = np.arange(s, s + k)
            for c in range(N_CH):
                a = np.empty(k, DT)
                a["x"] = np.sin(i * (1e-5 * (c + 1))) + (i % 97) * 1e-3
                a["x"][i % 100003 == 7] = np.nan
                a["y"] = ((i * (c + 3)) % 10007).astype(np.float32)
                w.write_many(i * 1e-3 + c * 1e-4, f"ch{c}", a)
    os.replace(tmp, path)


def get(url: str) -> Tuple[float, Dict[str, Any]]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = r.read()
    return time.perf_counter() - t0, json.loads(body)


def series_url(base: str, channel: str, field: str, start: Optional[float] = None, end: Optional[float] = None,
               points: int = 2000) -> str:
    q: Dict[str, Any] = {"channel": channel, "field": field, "points": points}
    if start is not None:
        q["start"], q["end"] = start, end
    return base + "api/series?" + urllib.parse.urlencode(q)


def start_server(path: str, cache: str) -> Tuple[subprocess.Popen, str, float]:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "fastodin", "view", path, "--no-browser", "--port", "0",
                          "--cache-dir", cache], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert p.stdout is not None
    url = p.stdout.readline().strip()
    return p, url, t0


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return -1


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (every thread)."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def stop(p: subprocess.Popen) -> None:
    p.terminate()
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def pct(xs: List[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def first_paint(url: str) -> Optional[float]:
    try:
        from view_browser import Browser, BrowserUnavailable
    except ImportError:
        return None
    try:
        with Browser() as b:
            b.get(url + "?channel=ch0&field=x")
            b.wait_idle(timeout=120)
            return b.script("return window.fastodinView.firstPaint") / 1000.0
    except BrowserUnavailable as exc:
        print(f"(no first-paint figure: {exc})")
        return None


def live_latency(cache: str, batches: int = 20) -> List[float]:
    """Seconds from a batch being written (the writer's timer flushes within 0.1 s) to the server
    listing it, for a file a Writer keeps recording while a real server follows it."""
    import fastodin

    d = tempfile.mkdtemp(prefix="fastodin-bench-live-")
    path = os.path.join(d, "live.fastpack.zst")
    w = fastodin.Writer(path, flush_interval=0.1)
    w.write_many(np.arange(1000) * 1e-3, "live", np.zeros(1000))
    w.flush()
    w.sync()
    p, url, _t0 = start_server(path, cache)
    out = []
    try:
        n = 1000
        for _ in range(batches):
            w.write_many((n + np.arange(100)) * 1e-3, "live", np.ones(100))
            n += 100
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 30:
                _dt, j = get(url + "api/channels")
                if j["channels"] and j["channels"][0]["count"] >= n:
                    break
                time.sleep(0.01)
            out.append(time.perf_counter() - t0)
    finally:
        stop(p)
        w.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50_000_000)
    ap.add_argument("--archive", default=None, help="archive to build or reuse (default: in the temp dir)")
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    n = args.n
    path = args.archive or os.path.join(tempfile.gettempdir(), f"fastodin-bench-view-{n}.fastpack.zst")
    if not os.path.exists(path):
        t = time.perf_counter()
        build(path, n)
        print(f"built {path} ({os.path.getsize(path) / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    cache = tempfile.mkdtemp(prefix="fastodin-bench-view-cache-")
    rows: List[Tuple[str, str, str]] = []
    per10 = n / 10_000_000

    # first request, empty cache (summary built)
    p, url, t0 = start_server(path, cache)
    try:
        dt, j = get(series_url(url, "ch0", "x"))
        first = time.perf_counter() - t0
        cpu = cpu_seconds(p.pid)
        assert sum(j["n"]) == n // N_CH, sum(j["n"])
        rows.append(("first /api/series, whole span (incl. start + summary build)",
                     f"{first:.2f} s = {first / per10:.2f} s per 10M records", "<= 1 s per 10M"))
        rows.append(("  CPU the server used for it (all threads; 2 cores)",
                     f"{cpu:.2f} s = {cpu / per10:.2f} s per 10M records", "-"))
        # later requests
        rnd = random.Random(1)
        span = (0.0, (n // N_CH - 1) * 1e-3 + 4e-4)
        whole, zoom = [], []
        for k in range(args.requests):
            c, f = f"ch{rnd.randrange(N_CH)}", rnd.choice(["x", "y"])
            if k % 4 == 0:
                dt, j = get(series_url(url, c, f))
                whole.append(dt)
            else:
                w = (span[1] - span[0]) * 10 ** rnd.uniform(-6, 0)
                a = rnd.uniform(span[0] - w / 10, span[1] - w * 0.9)
                dt, j = get(series_url(url, c, f, a, a + w))
                zoom.append(dt)
            assert len(j["n"]) <= 2000
        for name, xs in (("later requests, whole span, N=2000", whole), ("later requests, random zooms, N=2000", zoom)):
            rows.append((name, f"p50 {1e3 * statistics.median(xs):.1f} ms, p99 {1e3 * pct(xs, 0.99):.1f} ms "
                               f"({len(xs)} requests)", "<= 150 ms"))
        fp = first_paint(url)
        if fp is not None:
            rows.append(("first paint of a plot in headless Chromium (after load)", f"{fp:.2f} s", "<= 1.5 s"))
        rss = peak_rss(p.pid)
        rows.append(("server peak RSS (VmHWM)", f"{rss / 2**20:.0f} MiB", "<= 1024 MiB"))
    finally:
        stop(p)

    # restart: cached summary
    p, url, t0 = start_server(path, cache)
    try:
        dt, j = get(series_url(url, "ch0", "x"))
        t = time.perf_counter() - t0
        rows.append(("first /api/series after a restart (cached summary)", f"{t:.2f} s", "-"))
    finally:
        stop(p)

    lat = live_latency(cache)
    rows.append(("live: a flushed batch visible in /api/channels (Writer, flush 0.1 s)",
                 f"p50 {statistics.median(lat):.2f} s, max {max(lat):.2f} s ({len(lat)} batches)", "<= 1 s"))

    import fastodin

    t = time.perf_counter()
    with fastodin.open(path) as ar:
        tt, v = ar.read("ch0")
        float(np.nanmin(v["x"]))
    rows.append(("reference: Archive.read of one whole channel + nanmin", f"{time.perf_counter() - t:.2f} s", "-"))

    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"\nfastodin view, {n:,} records in {N_CH} channels ({os.path.getsize(path) / 2**20:.0f} MiB); "
          "noisy if others run tests")
    print(f"{'measure'.ljust(w0)}  {'result'.ljust(w1)}  target")
    for a, b, c in rows:
        print(f"{a.ljust(w0)}  {b.ljust(w1)}  {c}")


if __name__ == "__main__":
    main()
