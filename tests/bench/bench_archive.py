"""Archive benchmark against mcap 1.6.0 (run by hand: ``python tests/bench/bench_archive.py``).

Workload (issue 3): 1,000,000 records, 16-byte payloads (two f64), 5 channels round-robin, 1 ms
apart.  Prints records/s of each path, mcap's figure measured in the same run, the ratio and the
target.  Medians of ``--repeat`` runs (default 3).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from typing import Any, Callable, List, Tuple

import numpy as np
import zstandard

import fastodin.archive as fa

N_CH = 5


def workload(n: int) -> Tuple[List[float], List[str], List[bytes], np.ndarray]:
    i = np.arange(n, dtype=np.float64)
    times = (i * 1e-3).tolist()
    names = [f"ch{k % N_CH}" for k in range(n)]
    vals = np.stack([i, i * 0.5], axis=1)
    payloads = [r.tobytes() for r in vals]
    return times, names, payloads, vals


def count(it: Any) -> int:
    """Consume an iterator the way a user loop does; the same loop for every reader."""
    k = 0
    for _r in it:
        k += 1
    return k


def median(fn: Callable[[], Any], repeat: int) -> Tuple[float, Any]:
    out = []
    res = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lookups", type=int, default=100)
    args = ap.parse_args()
    n, rep = args.n, args.repeat
    from mcap.reader import make_reader
    from mcap.writer import CompressionType
    from mcap.writer import Writer as McapWriter

    d = tempfile.mkdtemp()
    fp = os.path.join(d, "bench.fastpack.zst")
    fp2 = os.path.join(d, "bench_many.fastpack.zst")
    mp = os.path.join(d, "bench.mcap")
    times, names, payloads, vals = workload(n)
    rows: List[Tuple[str, float, float, str]] = []

    def ours_write() -> None:
        with fa.Writer(fp) as w:
            wr = w.write
            for t, c, p in zip(times, names, payloads):
                wr(t, c, p)

    t = np.asarray(times)   # inputs prepared outside the timing, as mcap's payload list is

    def ours_write_many() -> None:
        with fa.Writer(fp2) as w:
            for k in range(N_CH):
                w.write_many(t[k::N_CH], f"ch{k}", vals[k::N_CH])

    def mcap_write() -> None:
        with open(mp, "wb") as f:
            w = McapWriter(f, chunk_size=1 << 20, compression=CompressionType.ZSTD)
            w.start()
            sid = w.register_schema(name="two_f64", encoding="raw", data=b"")
            ids = {f"ch{k}": w.register_channel(topic=f"ch{k}", message_encoding="raw", schema_id=sid)
                   for k in range(N_CH)}
            add = w.add_message
            for t, c, p in zip(times, names, payloads):
                ns = int(t * 1e9)
                add(channel_id=ids[c], log_time=ns, data=p, publish_time=ns)
            w.finish()

    tw, _ = median(ours_write, rep)
    twm, _ = median(ours_write_many, rep)
    tmw, _ = median(mcap_write, rep)
    rows.append(("write (record by record)", n / tw, n / tmw, ">= 7x"))
    rows.append(("write_many (5 channels)", n / twm, n / tmw, ">= 40x"))

    def ours_read_all() -> int:
        with fa.open_archive(fp) as ar:
            return count(ar.records())

    def ours_read_time() -> int:
        with fa.open_archive(fp) as ar:
            return count(ar.records(order="time"))

    def mcap_read(order: bool) -> int:
        with open(mp, "rb") as f:
            return count(make_reader(f).iter_messages(log_time_order=order))

    tr, c1 = median(ours_read_all, rep)
    tmr, c2 = median(lambda: mcap_read(False), rep)
    assert c1 == c2 == n, (c1, c2)
    rows.append(("read all, file order", n / tr, n / tmr, ">= 12x"))
    trt, c3 = median(ours_read_time, rep)
    tmrt, c4 = median(lambda: mcap_read(True), rep)
    assert c3 == c4 == n
    rows.append(("read all, time order", n / trt, n / tmrt, "-"))

    def ours_channel() -> np.ndarray:
        with fa.open_archive(fp) as ar:
            return ar.read("ch2", dtype="<f8")[1]

    def mcap_channel() -> int:
        with open(mp, "rb") as f:
            r = make_reader(f)
            out = [m.data for _s, _c, m in r.iter_messages(topics=["ch2"], log_time_order=False)]
            return len(out)

    tc, arr = median(ours_channel, rep)
    tmc, cnt = median(mcap_channel, rep)
    assert arr.shape == (n // N_CH, 2) and cnt == n // N_CH
    assert float(arr[1, 0]) == 7.0
    rows.append(("one channel into numpy (of all records)", n / tc, n / tmc, ">= 40x"))

    rnd = random.Random(1)
    qs = [rnd.uniform(0, n * 1e-3) for _ in range(args.lookups)]

    def ours_lookups() -> int:
        hits = 0
        for q in qs:
            with fa.open_archive(fp) as ar:
                r = ar.at(q, "ch2")
                hits += r is not None
        return hits

    def mcap_lookups() -> int:
        hits = 0
        for q in qs:
            with open(mp, "rb") as f:
                r = make_reader(f)
                ns = int(q * 1e9)
                for _m in r.iter_messages(topics=["ch2"], starting_at=ns, log_time_order=True):
                    hits += 1
                    break
        return hits

    tl, h1 = median(ours_lookups, rep)
    tml, h2 = median(mcap_lookups, rep)
    rows.append((f"{args.lookups} cold point lookups (lookups/s)", args.lookups / tl, args.lookups / tml, ">= 30x"))

    # zstd alone on the same raw bytes, and everything into columns
    raw = b"".join(fa.open_archive(fp).frame_data(e) for e in fa.open_archive(fp).frames)
    cz = zstandard.ZstdCompressor(level=3)
    tzc, comp = median(lambda: cz.compress(raw), rep)
    dz = zstandard.ZstdDecompressor()
    tzd, _ = median(lambda: dz.decompress(comp), rep)

    def ours_columns() -> int:
        with fa.open_archive(fp) as ar:
            return sum(v[0].shape[0] for v in ar.columns().values())

    tcol, c5 = median(ours_columns, rep)
    assert c5 == n

    size_ours = os.path.getsize(fp)
    size_many = os.path.getsize(fp2)
    size_mcap = os.path.getsize(mp)

    print(f"\nworkload: {n} records, 16-byte payloads, {N_CH} channels, 1 ms apart; median of {rep}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print(f"{'path':44s} {'fastodin/s':>12s} {'mcap/s':>12s} {'ratio':>8s}  target")
    for name, ours, theirs, target in rows:
        print(f"{name:44s} {ours:12,.0f} {theirs:12,.0f} {ours / theirs:7.1f}x  {target}")
    print(f"\n{'file size (record by record)':44s} {size_ours:12,d} {size_mcap:12,d} {size_ours / size_mcap:7.3f}x  <= 0.25x")
    print(f"{'file size (write_many)':44s} {size_many:12,d} {size_mcap:12,d} {size_many / size_mcap:7.3f}x")
    print(f"\nraw FastPack bytes: {len(raw):,}; zstd -3 alone: compress {tzc * 1e3:.1f} ms "
          f"({len(raw) / tzc / 1e6:.0f} MB/s), decompress {tzd * 1e3:.1f} ms ({len(raw) / tzd / 1e6:.0f} MB/s)")
    print(f"read everything into columns (Archive.columns): {tcol * 1e3:.1f} ms = {tcol / tzd:.2f}x zstd "
          f"decompression (target <= 1.7x); {n / tcol:,.0f} records/s")
    shutil.rmtree(d)


if __name__ == "__main__":
    main()
