"""Dataset benchmark (run by hand: ``python tests/bench/bench_dataset.py``), issue 14.

* catalog: ``fastodin.dataset(dir).rows()`` over 1,000 archives of 10,000 records each.
  Target: <= 2 s, and no data frame decompressed (index only).
* mean: a per-channel mean over 20 archives of 1,000,000 records each on a ``distributed``
  LocalCluster of 2 worker processes (1 thread each): ``ds.to_dask("imu")["x"].mean().compute()``
  against the engine's own floor, the same per-file ``Archive.read`` calls submitted by hand with
  ``client.map`` and summed.  Target: our speed >= 0.8 x the floor's; partitions on both workers.
  Also shown: a naive ``dd.from_map`` of those same reads (dask's own cost, without our catalog,
  checks and typing), to tell our partitioning's cost from dask DataFrame's.
* memory: each partition's peak traced memory (tracemalloc: numpy and bytes allocations) while
  ``read_pandas`` builds it, against the decompressed size of its frames.  Target: <= 2 x.

Both sides of the ratio are measured in the same run, interleaved; the ratio is the median over
``--repeat`` pairs of floor time / our time; on this shared
2-core machine every figure is noisy, and 2 processes cannot beat one process by much.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
import tracemalloc
from typing import Callable, List, Tuple

import numpy as np

ROW = np.dtype([("x", "<f8"), ("y", "<f4")])


def timed(fn: Callable[[], object], repeat: int) -> Tuple[float, object]:
    out: List[float] = []
    got = None
    for _ in range(repeat):
        t = time.perf_counter()
        got = fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out), got


def write(path: str, n: int, t0: float, seed: int) -> None:
    import fastodin

    rng = np.random.default_rng(seed)
    rows = np.zeros(n, ROW)
    rows["x"] = rng.normal(seed, 1.0, n)
    rows["y"] = rng.random(n, dtype=np.float32)
    with fastodin.Writer(path) as w:
        w.set_tag("seed", seed)
        w.write_many(t0 + np.arange(n) * 1e-4, "imu", rows)


def file_sum(path: str) -> Tuple[float, int]:
    """The floor's task: one Archive.read of the file, its sum and count."""
    import fastodin

    with fastodin.open(path) as ar:
        _t, v = ar.read("imu")
    return float(v["x"].sum()), int(v.shape[0])


def file_frame(path: str) -> object:
    """A naive from_map partition: the same Archive.read, as a pandas frame (dask's own cost)."""
    import pandas as pd

    import fastodin

    with fastodin.open(path) as ar:
        t, v = ar.read("imu")
    return pd.DataFrame({"x": v["x"]}, index=pd.Index(t, name="time"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000, help="archives of the catalog case")
    ap.add_argument("--records", type=int, default=10_000, help="records per archive of the catalog case")
    ap.add_argument("--big-files", type=int, default=20)
    ap.add_argument("--big-records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="generate into / reuse DIR instead of a temporary directory")
    args = ap.parse_args()
    from distributed import Client, LocalCluster, get_task_stream

    import fastodin
    from fastodin.datasets import read_pandas

    d = args.keep or tempfile.mkdtemp(prefix="bench_dataset")
    small, big = os.path.join(d, "small"), os.path.join(d, "big")
    try:
        for sub, nf, nr in ((small, args.files, args.records), (big, args.big_files, args.big_records)):
            os.makedirs(sub, exist_ok=True)
            t = time.perf_counter()
            for k in range(nf):
                p = os.path.join(sub, f"r{k:05d}.fastpack.zst")
                if not os.path.exists(p):
                    write(p, nr, k * nr * 1e-4 * 2, k)
            print(f"generated {nf} x {nr} records in {sub} ({time.perf_counter() - t:.1f} s)")

        t_cat, rows = timed(lambda: fastodin.dataset(small).rows(), args.repeat)
        ds_small = fastodin.dataset(small)
        cat_frames = ds_small.frames_decompressed

        ds = fastodin.dataset(big)
        parts = ds.parts("imu")
        paths = [f.path for f in ds.files]
        ref_sum, ref_n = 0.0, 0
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("fastodin"))          # workers import before the clock starts

            def floor() -> float:
                got = client.gather(client.map(file_sum, paths, pure=False))
                return sum(s for s, _ in got) / sum(n for _, n in got)

            def ours() -> float:
                return float(ds.to_dask("imu")["x"].mean().compute())

            import dask.dataframe as dd

            def naive() -> float:
                return float(dd.from_map(file_frame, paths)["x"].mean().compute())

            floor()
            ours()                                  # warm: workers import pandas and dask.dataframe once
            naive()
            tf: List[float] = []
            to: List[float] = []
            tn: List[float] = []
            for _ in range(args.repeat):            # interleaved: the machine's load hits all alike
                a, m_floor = timed(floor, 1)
                b, m_ours = timed(ours, 1)
                c, _m = timed(naive, 1)
                tf.append(a)
                to.append(b)
                tn.append(c)
            t_floor, t_ours = statistics.median(tf), statistics.median(to)
            pair = statistics.median(a / b for a, b in zip(tf, to))   # each run's floor/ours, paired
            pair_naive = statistics.median(c / b for b, c in zip(to, tn))
            with get_task_stream(client) as ts:
                ours()
            workers = {t["worker"] for t in ts.data if "fastodin-read" in str(t["key"])}
        for p in paths:
            s, n = file_sum(p)
            ref_sum, ref_n = ref_sum + s, ref_n + n
        assert abs(m_ours - ref_sum / ref_n) < 1e-9 and abs(m_floor - ref_sum / ref_n) < 1e-9

        ratios = []
        for part in parts:
            tracemalloc.start()
            df = read_pandas(part)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert len(df) == part.count
            del df
            ratios.append(peak / part.nbytes)

        total = args.big_files * args.big_records
        print(f"\n{'case':34} {'ours':>10} {'baseline':>22} {'value':>8}  target")
        print(f"{'catalog, ' + str(args.files) + ' archives':34} {t_cat:9.2f}s {'':>22} {'':>8}  <= 2 s "
              f"({'ok' if t_cat <= 2 else 'MISSED'}; {len(rows)} rows, {cat_frames} frames decompressed)")
        print(f"{'mean over ' + str(args.big_files) + ' x ' + str(args.big_records):34} {t_ours:9.2f}s "
              f"{'client.map floor ' + format(t_floor, '.2f') + 's':>22} {pair:7.2f}x  >= 0.8x "
              f"({'ok' if pair >= 0.8 else 'MISSED'}; paired median; {total / t_ours / 1e6:.1f} M rec/s, "
              f"{len(parts)} partitions on {len(workers)} workers)")
        print(f"{'  (dask itself: naive from_map)':34} {statistics.median(tn):9.2f}s "
              f"{'ours vs naive from_map':>22} {pair_naive:7.2f}x  (the same reads as a dask DataFrame, "
              f"no catalog or checks: what dask's own mean costs over the floor)")
        print(f"{'partition peak / its frames':34} {max(ratios):9.2f}x {'':>22} {'':>8}  <= 2x "
              f"({'ok' if max(ratios) <= 2 else 'MISSED'}; median {statistics.median(ratios):.2f}x, "
              f"{parts[0].nbytes / 1e6:.0f} MB frames each)")
    finally:
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
