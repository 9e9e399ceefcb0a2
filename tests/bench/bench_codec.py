"""Benchmark of the FastPack codec paths (run by hand: ``python tests/bench/bench_codec.py``).

Workload: 1,000,000 records, 16-byte payloads (two f64), 5 named channels round-robin (the stream
begins with the 5 definition records), 1 ms apart.  Each path is compared with a naive
``struct.unpack_from`` / ``struct.pack_into`` loop measured in the same process.  Medians of 3
(after one warm-up call).
"""
from __future__ import annotations

import argparse
import random
import statistics
import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fastodin.columns import channel_array, decode_columns, encode_columns, record_size, scan  # noqa: E402

NAMES = ["imu/accel", "imu/gyro", "gps/pos", "baro/alt", "mag/field"]
HDR = struct.Struct("<dII")


def median_time(fn, repeat=3):
    """Median wall time of ``repeat`` calls, after one warm-up call (not counted)."""
    ts = []
    out = fn()
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def naive_decode(buf) -> int:
    """Baseline: one struct.unpack_from per record, payload as a memoryview slice."""
    mv = memoryview(buf)
    unpack = HDR.unpack_from
    p = 0
    n = len(buf)
    count = 0
    out = []
    append = out.append
    while n - p >= 16:
        t, i, ln = unpack(mv, p)
        sz = 16 + ln + (-ln & 7)
        if sz > n - p:
            break
        append((t, i, mv[p + 16 : p + 16 + ln]))
        p += sz
        count += 1
    return count


def naive_encode(times, ids, payloads) -> bytes:
    """Baseline: one struct.pack_into per record into a preallocated bytearray."""
    total = sum(record_size(len(p)) for p in payloads)
    out = bytearray(total)
    pack = HDR.pack_into
    p = 0
    for t, i, pl in zip(times, ids, payloads):
        ln = len(pl)
        pack(out, p, t, i, ln)
        out[p + 16 : p + 16 + ln] = pl
        p += 16 + ln + (-ln & 7)
    return bytes(out)


def named_stream(n: int):
    """Definitions of 5 names, then n records of two f64 round-robin, 1 ms apart."""
    head = bytearray()
    for k, name in enumerate(NAMES, 1):
        nb = name.encode()
        head += HDR.pack(0.0, k, len(nb)) + nb + b"\0" * (-len(nb) & 7)
    times = np.arange(n) * 1e-3
    ids = (np.arange(n) % 5 + 1).astype(np.uint32)
    vals = np.stack([times, -times], axis=1)
    return bytes(head) + encode_columns(times, ids, vals), times, ids, vals


def mixed_stream(n: int, irregular: bool):
    sizes = [8, 16, 24, 40, 100]
    order = [random.randrange(5) for _ in range(n)] if irregular else [k % 5 for k in range(n)]
    parts = []
    pad = [bytes(s) for s in sizes]
    for k, c in enumerate(order):
        parts.append(HDR.pack(k * 1e-3, c + 1, sizes[c]) + pad[c] + b"\0" * (-sizes[c] & 7))
    return b"".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.n
    random.seed(0)
    rows = []

    data, times, ids, vals = named_stream(n)
    total = n + 5
    base_dec, cnt = median_time(lambda: naive_decode(data))
    assert cnt == total
    base_dec_rate = total / base_dec

    def row(path, seconds, nrec, base_rate):
        rate = nrec / seconds
        rows.append((path, rate, rate / base_rate))

    row("naive struct.unpack_from loop (baseline, decode)", base_dec, total, base_dec_rate)
    t, c = median_time(lambda: decode_columns(data))
    assert c.count == total
    row("decode_columns (uniform 32-byte records)", t, total, base_dec_rate)
    def chunked_scan():
        pos, k = 0, 0
        while pos < len(data):
            s = scan(data, pos, pos + 32 * 1024)
            k += s.count
            pos = s.end
        return k

    t, k = median_time(chunked_scan)
    assert k == total
    row("scan in 32 KiB windows (the Decoder's use)", t, total, base_dec_rate)
    t, (tt, v) = median_time(lambda: channel_array(data, "gps/pos", ("<f8", 2)))
    assert v.shape == (n // 5, 2)
    row("channel_array one channel (rate of whole stream)", t, total, base_dec_rate)

    tl, il, pl = times.tolist(), ids.tolist(), [bytes(r) for r in vals]
    base_enc, _ = median_time(lambda: naive_encode(tl, il, pl))
    base_enc_rate = n / base_enc
    row("naive struct.pack_into loop (baseline, encode)", base_enc, n, base_enc_rate)
    t, enc = median_time(lambda: encode_columns(times, ids, vals))
    assert enc == data[len(data) - len(enc) :]
    row("encode_columns (16-byte payloads)", t, n, base_enc_rate)

    for irregular in (False, True):
        mixed = mixed_stream(n, irregular)
        bt, cnt = median_time(lambda: naive_decode(mixed))
        t, c = median_time(lambda: decode_columns(mixed))
        assert c.count == cnt == n
        label = "irregular interleave" if irregular else "mixed sizes round-robin"
        row(f"decode_columns ({label}, 8/16/24/40/100 B)", t, n, n / bt)
        rows.append((f"  naive loop on the same stream", n / bt, 1.0))

    try:
        from fastodin.codec import Decoder, Encoder  # noqa: F401
    except Exception as e:  # pragma: no cover - the codec lands separately
        print(f"(fastodin.codec not available: {e}; Decoder/Encoder rows skipped)")
    else:
        chunk = 32 * 1024

        def run_decoder():
            dec = Decoder(namespace=True)
            k = 0
            for o in range(0, len(data), chunk):
                dec.feed(data[o : o + chunk])
                for _ in dec:
                    k += 1
            return k

        t, k = median_time(run_decoder)
        assert k == n, k
        row("Decoder, 32 KiB chunks, names, every record", t, n, base_dec_rate)

        names = [NAMES[i - 1] for i in il]

        def run_encoder():
            enc = Encoder(namespace=True)
            add = enc.add
            for tt_, nm, p in zip(tl, names, pl):
                add(tt_, nm, p)
            return enc.take()

        t, out = median_time(run_encoder)
        # the Encoder injects each definition right before first use (same bytes, other order)
        assert len(out) == len(data), (len(out), len(data))
        row("Encoder record by record, names", t, n, base_enc_rate)

    print(f"{'path':58s} {'records/s':>14s} {'vs naive':>9s}")
    for path, rate, ratio in rows:
        print(f"{path:58s} {rate:14,.0f} {ratio:8.1f}x")


if __name__ == "__main__":
    main()
