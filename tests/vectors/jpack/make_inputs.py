#!/usr/bin/env python3
"""How the INPUT streams of these golden JPack trees were made (run once; see README.md).

    python make_inputs.py OUTDIR     # writes a.fastpack.zst and b.fastpack into OUTDIR

a.fastpack.zst: an archive written by fastodin.Writer (two streams with layouts, a plain channel,
tags, small frames so it has many); a.fastpack is `zstd -d a.fastpack.zst`.
b.fastpack: a hand-built raw FastPack stream with the awkward cases: namespace definitions, id-0
JSON metadata, a namespace reset, payloads of 0..5000 bytes, NON-ZERO padding bytes (fastpack-split
re-encodes them as zeros), NaN (with payload bits) / -0.0 / +-inf / subnormal times, one record
larger than the small byte limit.
"""
import os
import random
import struct
import sys


import fastodin
from fastodin.archive import Layout


def make_a(path: str) -> None:
    rng = random.Random(15)
    with fastodin.Writer(path, preset="light", frame_size=4096, flush_interval=None) as w:
        w.set_tag("site", "jpack-golden")
        imu = w.create_stream("imu", data=Layout().vector3d("acc").scalar("temp", "float32"))
        gps = w.create_stream("gps", data=Layout().scalar("lat", "float64").scalar("lon", "float64"))
        imu.config(0.0)
        gps.config(0.0)
        for i in range(1500):
            t = i * 0.001
            imu.data(t, (rng.random(), rng.random(), 9.81), 20.0 + rng.random())
            if i % 10 == 0:
                gps.data(t, 52.0 + rng.random() * 1e-3, 4.0 + rng.random() * 1e-3)
            if i % 7 == 0:
                w.write(t, "log", ("event %d" % i).encode() * rng.randint(0, 4))


def rec(t_bits: int, cid: int, payload: bytes, pad: bytes = b"") -> bytes:
    n = len(payload)
    p = -n & 7
    pad = (pad + bytes(8))[:p] if pad else bytes(p)
    return struct.pack("<QII", t_bits, cid, n) + payload + pad


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def make_b(path: str) -> None:
    rng = random.Random(8)
    out = bytearray()
    out += rec(bits(0.0), 0, b'{"device":"golden-b","note":"hand-built"}')
    names = {1: b"small", 2: b"big", 3: b"odd/len"}
    for cid, name in names.items():
        out += rec(bits(0.0), cid, name)
    specials = [0x7FF4000000000001, 0xFFF8000000000123, bits(-0.0), bits(float("inf")), bits(float("-inf")), 1]
    for i in range(1200):
        t = specials[i % len(specials)] if i % 97 == 0 else bits(i * 0.01)
        cid = 1 if i % 5 else 3
        n = rng.randint(0, 24) if cid == 1 else rng.randint(1, 60)
        pad = bytes([rng.randint(1, 255)]) * 7 if i % 3 == 0 else b""
        out += rec(t, cid, rng.randbytes(n), pad)
    out += rec(bits(12.0), 0, b"")          # namespace reset
    out += rec(bits(12.0), 1, b"after-reset")
    for i in range(40):
        out += rec(bits(12.0 + i * 0.1), 1, rng.randbytes(rng.randint(300, 5000)), b"\xff" * 7)
    out += rec(bits(17.0), 1, rng.randbytes(20000))     # larger than the small byte limit: alone in its file
    out += rec(bits(17.5), 0, b'{"end":true}')
    with open(path, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    d = sys.argv[1]
    make_a(os.path.join(d, "a.fastpack.zst"))
    make_b(os.path.join(d, "b.fastpack"))

