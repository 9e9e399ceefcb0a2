"""Issue 8 item 4 (BURST): 2.3 MB of BURST with 65,536 set ids took 75 s to convert (the DATA fast
path re-tested a 65,536-packet window and rebuilt a 65,536-entry table whenever a set joined it; a
0x04 type packet re-examined every set).  Memory and time must be linear with small constants.

Timing checks compare a 1x and a 4x input of the same shape (linear: ~4x; the quadratic paths were
16x and more) with a generous bound, best of three, so that a loaded machine does not fail them."""
import os
import struct
import time

import pytest

from fastodin.odin.burst import burst_encode_many
from fastodin.odin.mapping import convert_burst
from fastodin.odin.packets import (
    ExtItem,
    IdentifierExt,
    TypeDef,
    TypeDescriptor,
    TypeField,
)

RSS_LIMIT = 512 << 20  # the ceiling (tests/hostile/conftest.py)


def ident(sid):
    return struct.pack("<BHBI", 1, sid, 0, 7) + struct.pack("<IH", sid, 4)


def data(sid, seq=0):
    return struct.pack("<BHBIH", 2, sid, 0, 1000 + sid, seq) + b"abcd"


def custom_ext(sid):  # one entry of custom type 5, which no 0x04 has described yet
    return IdentifierExt(sid, 7, 1, 0, (ExtItem(sid, 4, 13, 5, "c"),)).to_bytes()


def type_packet(type_id):
    return TypeDescriptor(1, 1, 0, (TypeDef(type_id, 4, "t", (TypeField(10, 4, 0, "f"),)),)).to_bytes()


SHAPES = {
    # the input: each set's identifier, then one DATA of it
    "identifier_then_data": lambda n: [p for s in range(n) for p in (ident(s), data(s))],
    # every identifier, then DATA round-robin over all sets
    "round_robin": lambda n: [ident(s) for s in range(n)] + [data(s, r) for r in range(2) for s in range(n)],
    # DATA of every set before its identifier (held, then released)
    "data_first": lambda n: [data(s) for s in range(n)] + [ident(s) for s in range(n)],
    # sets waiting for a custom type, then many type packets (each re-examined every set)
    "custom_types": lambda n: ([p for s in range(n) for p in (custom_ext(s), data(s))]
                               + [type_packet(100 + k) for k in range(n)] + [type_packet(5)]
                               + [data(s, 1) for s in range(n)]),
}


def _best_time(buf, runs=3):
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        convert_burst(buf)
        best = min(best, time.perf_counter() - t)
    return best


#: sets in the 1x input of each shape (big enough for the quadratic paths to show: 4x gave 10x-20x)
BASE_SETS = {"identifier_then_data": 4096, "round_robin": 4096, "data_first": 2048, "custom_types": 2048}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_conversion_time_is_linear_in_the_number_of_sets(bounded, shape):
    # in a child: the timings are its own, and the test process does not keep the memory it used
    n = BASE_SETS[shape]
    code = f"""
import sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from test_burst_many_sets import SHAPES, _best_time
from fastodin.odin.burst import burst_encode_many
small = burst_encode_many(SHAPES[{shape!r}]({n}))
big = burst_encode_many(SHAPES[{shape!r}]({4 * n}))
print(_best_time(small), _best_time(big, runs=2))
"""
    r = bounded.python(code, timeout=300)
    assert r.returncode == 0 and not r.timed_out, r.text[-2000:]
    t1, t4 = map(float, r.stdout.split())
    assert t4 <= 8 * t1 + 0.5, f"{shape}: {n} sets {t1:.3f} s, {4 * n} sets {t4:.3f} s"


def test_custom_type_packets_resolve_the_sets_waiting_for_them():
    _, rep = convert_burst(burst_encode_many(SHAPES["custom_types"](16)))
    assert rep["stats"]["type_descriptors"] == 17
    assert rep["stats"]["definition_changes"] == 16      # type 5 arrived: every set was refreshed, once
    assert rep["unresolved"] == 0 and rep["records"] == 16 * 3 + 17


def test_65536_sets_convert_in_bounded_memory_and_time(bounded, tmp_path):
    """The issue's case: 2.3 MB, 65,536 set ids (75 s before; a few seconds now)."""
    src = tmp_path / "sets.burst"
    src.write_bytes(burst_encode_many(SHAPES["identifier_then_data"](65536)))
    assert 2_000_000 < src.stat().st_size < 2_500_000
    out = tmp_path / "sets.fastpack.zst"
    r = bounded.cli("convert", "--from", "burst", str(src), str(out), timeout=60)
    assert r.returncode == 0 and not r.timed_out, r.text[-2000:]
    assert r.peak_rss <= RSS_LIMIT, r.peak_rss
    assert "131072 packets" in r.text
