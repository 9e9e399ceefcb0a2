"""ODIN benchmark: 1,000,000 simulated packets of a 164/320-byte device (run by hand).

    python tests/bench/bench_odin.py [--packets N] [--repeat R]

Baseline, measured in the same run: odin-stream 0.2.0's ``StreamProcessor`` (``process_bytes_list``
+ ``flush``) decoding the same packets (it learns the schema from the 0x03/0x04 packets, as we do).
Prints packets/s (median of R runs) and the ratio to the baseline, plus the BURST -> FastPack /
archive and archive -> BURST replay throughputs against the 250k packets/s target.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from fastodin.odin import (OdinToFastPack, Simulator, WriterSink, benchmark_device, convert_burst, decode,  # noqa: E402
                           replay_burst)
from fastodin.odin.burst import burst_decode, burst_encode_many  # noqa: E402


CPU = {}


def timed(fn, repeat):
    """Median wall-clock seconds (and, in CPU[fn], median CPU seconds of this process) of R runs."""
    ts, cs = [], []
    out = None
    for _ in range(repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    med = statistics.median(ts)
    CPU[med] = statistics.median(cs)
    return med, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    n, rep = a.packets, a.repeat

    sets, events, types = benchmark_device()
    t0 = time.perf_counter()
    sim = Simulator(sets, events, types, seed=1, identifier_interval=1.0)
    packets = sim.packets(n=n)
    t_sim = time.perf_counter() - t0
    n_data = sum(1 for p in packets if p[0] == 2)
    burst = burst_encode_many(packets)
    print(f"workload: {n:,} packets ({n_data:,} DATA of 164/320-byte sets at 600/200 Hz, identifiers every 1 s), "
          f"{sum(map(len, packets)) / 1e6:.1f} MB; BURST {len(burst) / 1e6:.1f} MB; simulated in {t_sim:.2f} s")

    rows = []  # (name, seconds, packets, baseline seconds or None, target packets/s or None)

    # -- baseline: odin-stream ------------------------------------------------------------
    base = None
    try:
        from odin_stream import StreamProcessor

        def run_odin_stream():
            sp = StreamProcessor()
            sp.process_bytes_list(packets)
            return sp.flush()

        base, frames = timed(run_odin_stream, rep)
        base_rows = sum(df.height for df in frames.values())
        rows.append(("odin-stream 0.2.0 StreamProcessor (baseline)", base, n, None, None))
    except Exception as e:  # pragma: no cover - optional baseline
        print(f"odin-stream not available ({type(e).__name__}: {e}); ratios are omitted")
        base_rows = None

    # -- ours: typed decode to per-set columns ---------------------------------------------
    tdec, res = timed(lambda: decode(packets), rep)
    ours_rows = sum(len(t) for t in res.values())
    rows.append(("fastodin decode(packets) -> per-set tables", tdec, n, base, None))

    def decode_materialized():
        r = decode(packets)
        return {k: t.columns(contiguous=True) for k, t in r.items()}

    tmat, cols = timed(decode_materialized, rep)
    rows.append(("fastodin decode + contiguous flat columns", tmat, n, base, None))
    if base_rows is not None:
        assert ours_rows == base_rows, (ours_rows, base_rows)
        # same values as odin-stream, column by column (first set, a few columns)
        for sid, df in frames.items():
            t = res[sid]
            for c in df.columns[2:6]:
                assert np.array_equal(df[c].to_numpy(), t[c]), c
        print(f"check: odin-stream and fastodin agree on {ours_rows:,} rows")

    # -- BURST -> FastPack ------------------------------------------------------------------
    tb, (fp, report) = timed(lambda: convert_burst(burst), rep)
    assert report["burst"]["packets"] == n and report["burst"]["crc_errors"] == 0
    rows.append(("BURST bytes -> FastPack (deframe, CRC, map, encode)", tb, n, None, 250_000))
    tbd, _ = timed(lambda: burst_decode(burst), rep)
    rows.append(("  of which BURST deframe + CRC check", tbd, n, None, None))

    # -- typed decode from the FastPack stream --------------------------------------------
    tfd, res2 = timed(lambda: decode(fp), rep)
    assert sum(len(t) for t in res2.values()) == ours_rows
    rows.append(("fastodin decode(FastPack stream) -> per-set tables", tfd, n, base, None))

    # -- archive ----------------------------------------------------------------------------
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "bench.fastpack.zst")
    try:
        from fastodin.archive.writer import Writer

        def to_archive():
            with Writer(path) as w:
                c = OdinToFastPack(WriterSink(w))
                c.feed_burst(burst)
                c.close()

        ta, _ = timed(to_archive, rep)
        rows.append(("BURST bytes -> archive (.fastpack.zst)", ta, n, None, 250_000))
        tad, res3 = timed(lambda: decode(path), rep)
        assert sum(len(t) for t in res3.values()) == ours_rows
        rows.append(("fastodin decode(archive) -> per-set tables", tad, n, base, None))
        tr, out = timed(lambda: replay_burst(path), rep)
        assert out == burst
        rows.append(("archive -> BURST replay bytes", tr, n, None, 250_000))
        print(f"archive: {os.path.getsize(path) / 1e6:.1f} MB")
    except ImportError as e:  # pragma: no cover
        print(f"archive writer not available ({e})")
    tr2, out2 = timed(lambda: replay_burst(fp), rep)
    assert out2 == burst
    rows.append(("FastPack stream -> BURST replay bytes", tr2, n, None, 250_000))

    print()
    print("wall = median wall-clock seconds; cpu = median CPU seconds of this process (all threads), "
          "steadier when other jobs share the machine")
    print(f"{'path':55s} {'wall s':>7s} {'cpu s':>7s} {'packets/s':>11s} {'vs odin-stream':>15s} {'target':>10s}")
    for name, sec, cnt, b, target in rows:
        cpu = CPU.get(sec, float("nan"))
        ratio = f"{b / sec:.2f}x" if b else ""
        if b:
            ratio += f" ({CPU.get(b, float('nan')) / cpu:.2f}x cpu)"
        tgt = ""
        if target:
            tgt = ("ok " if cnt / sec >= target else "MISS ") + f"{target / 1e3:.0f}k"
        print(f"{name:55s} {sec:7.3f} {cpu:7.3f} {cnt / sec:11,.0f} {ratio:>15s} {tgt:>10s}")


if __name__ == "__main__":
    main()
