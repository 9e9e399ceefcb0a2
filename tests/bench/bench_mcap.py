"""MCAP export/import benchmark against mcap (run by hand: ``python tests/bench/bench_mcap.py``).

Workload (issue 13): 1,000,000 typed records on one channel (x, y f64; z f32; n u32; 1 ms apart).

* export: ``fastodin.mcap.export_mcap`` (archive → MCAP: read, JSON + schema, chunks, indexes)
  against mcap's ``Writer`` alone writing the very same JSON messages (already encoded) to a
  chunked zstd file.  Target: ours ≤ 1.3 × mcap's time.
* import: ``fastodin.mcap.import_mcap`` (MCAP → archive) of the file mcap wrote, against mcap's
  reader alone iterating its messages.  Target: our speed ≥ 0.8 × mcap's.

Both sides of each ratio are measured in the same run (medians of ``--repeat``); a loaded machine
makes all figures noisy.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from typing import Callable, List

import numpy as np


def timed(fn: Callable[[], object], repeat: int) -> float:
    out: List[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from mcap.reader import make_reader
    from mcap.writer import Writer as McapRefWriter

    from fastodin.archive import Writer
    from fastodin.mcap.export import export_mcap
    from fastodin.mcap.importer import import_mcap
    from fastodin.mcap.reader import McapReader

    n = args.n
    d = tempfile.mkdtemp(prefix="bench_mcap")
    try:
        arch = os.path.join(d, "typed.fastpack.zst")
        rows = np.zeros(n, [("x", "<f8"), ("y", "<f8"), ("z", "<f4"), ("n", "<u4")])
        rng = np.random.default_rng(0)
        rows["x"], rows["y"], rows["z"], rows["n"] = rng.random(n), rng.random(n) * 100, rng.random(n), np.arange(n)
        with Writer(arch) as w:
            w.write_many(np.arange(n) * 1e-3, "imu", rows)
        ours = os.path.join(d, "ours.mcap")
        t_exp = timed(lambda: export_mcap(arch, ours, force=True), args.repeat)
        # the same JSON messages, for mcap's writer alone
        msgs, times, schema = [], [], b""
        r = McapReader(ours)
        for kind, x in r.records():
            if kind == "schema":
                schema = x.data
            elif kind == "messages":
                msgs.extend(x.payload(k) for k in range(len(x)))
                times.extend(x.log_time.tolist())
        assert len(msgs) == n
        ref = os.path.join(d, "ref.mcap")

        def mcap_write() -> None:
            with open(ref, "wb") as f:
                w = McapRefWriter(f)
                w.start()
                sid = w.register_schema("imu", "jsonschema", schema)
                cid = w.register_channel("imu", "json", sid)
                add = w.add_message
                for t, m in zip(times, msgs):
                    add(cid, t, m, t)
                w.finish()

        t_ref_w = timed(mcap_write, args.repeat)

        def mcap_read() -> None:
            k = 0
            with open(ref, "rb") as f:
                for _s, _c, m in make_reader(f).iter_messages():
                    k += len(m.data) > 0
            assert k == n

        t_ref_r = timed(mcap_read, args.repeat)
        back = os.path.join(d, "back.fastpack.zst")
        t_imp = timed(lambda: import_mcap(ref, back, force=True), args.repeat)
        rows_out = [
            ("export (archive -> MCAP)", t_exp, "mcap Writer, same JSON", t_ref_w, t_exp / t_ref_w, "<= 1.3 (time)"),
            ("import (MCAP -> archive)", t_imp, "mcap reader, iterate", t_ref_r, t_ref_r / t_imp, ">= 0.8 (speed)"),
        ]
        print(f"{n} typed records, {os.path.getsize(ours) / 1e6:.1f} MB MCAP (ours), "
              f"{os.path.getsize(ref) / 1e6:.1f} MB (mcap's); medians of {args.repeat}")
        print(f"{'path':26} {'ours s':>8} {'rec/s':>10}  {'baseline':24} {'base s':>8} {'ratio':>6}  target")
        for name, a, bn, b, ratio, target in rows_out:
            ok = ratio <= 1.3 if "time" in target else ratio >= 0.8
            print(f"{name:26} {a:8.2f} {n / a:10.0f}  {bn:24} {b:8.2f} {ratio:6.2f}  {target} "
                  f"{'ok' if ok else 'MISSED'}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
