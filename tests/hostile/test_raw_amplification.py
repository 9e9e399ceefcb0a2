"""Issue 8 item 4 (raw files): a raw .fastpack of many definitions or namespace re-bindings costs
memory and time linear in its size with small constants (was: 48 MB of definitions -> 1.24 GB,
32 MB of re-bindings -> 1.3 GB, one name on many ids quadratic).

Each case runs ``fastodin info`` (open + index summary + the channel table) in a child process at
1x and 4x the size; the memory a record adds is the slope between the two peaks, so the Python
start-up does not count and a regression of the constant fails (before the fix: ~700 B per
definition, ~2.4 KB per re-binding)."""
import struct
import sys

MiB = 1 << 20


def _rec(t: float, i: int, p: bytes) -> bytes:
    return struct.pack("<dII", t, i, len(p)) + p + bytes(-len(p) & 7)


def definitions(n: int) -> bytes:
    """``n`` definitions of ids 1..n (24 bytes each), no data."""
    return b"".join(_rec(0.0, k, b"c%07d" % k) for k in range(1, n + 1))


def rebindings(n: int) -> bytes:
    """``n`` times: a namespace reset, id 1 defined under a new name, one record (56 bytes each)."""
    return b"".join(_rec(float(k), 0, b"") + _rec(float(k), 1, b"r%07d" % k) + _rec(float(k), 1, b"")
                    for k in range(n))


def one_name_on_many_ids(n: int) -> bytes:
    """ids 1..n all defined as "x", one record each (no reset)."""
    return b"".join(_rec(0.0, k, b"x") + _rec(1.0, k, b"d") for k in range(1, n + 1))


def _info_peaks(bounded, tmp_path, make, n):
    peaks = []
    for scale in (1, 4):
        p = tmp_path / f"x{scale}.fastpack"
        p.write_bytes(make(n * scale))
        r = bounded.cli("info", str(p), timeout=120)
        assert r.returncode == 0 and not r.timed_out, r.text[-2000:]
        assert "internal error" not in r.text
        assert r.peak_rss < 512 * MiB
        peaks.append(r.peak_rss)
    return peaks, (peaks[1] - peaks[0]) / (3 * n)


def test_many_definitions_cost_little_memory(bounded, tmp_path):
    (small, big), per_def = _info_peaks(bounded, tmp_path, definitions, 100_000)
    # a definition is 24 bytes on disk; the reader keeps its name both ways (id -> name, name -> id)
    assert per_def < 450, f"{per_def:.0f} bytes per definition (peaks {small >> 20} / {big >> 20} MiB)"


def test_many_rebindings_cost_little_memory(bounded, tmp_path):
    (small, big), per_rb = _info_peaks(bounded, tmp_path, rebindings, 50_000)
    # each re-binding is a channel of its own (a name, a virtual id, index statistics, a summary)
    assert per_rb < 1400, f"{per_rb:.0f} bytes per re-binding (peaks {small >> 20} / {big >> 20} MiB)"


def test_one_name_on_many_ids_is_linear(bounded, tmp_path):
    """Selecting/summarising a name bound to n ids was O(n^2) (a list membership per id)."""
    code = ("import sys, time, fastodin\n"
            "t = time.perf_counter()\n"
            "with fastodin.open(sys.argv[1]) as ar:\n"
            "    assert ar.info()['channels']['x']['count'] == int(sys.argv[2])\n"
            "    assert len(ar.channel_ids('x')) == int(sys.argv[2])\n"
            "print(time.perf_counter() - t)\n")
    took = []
    for n in (10_000, 40_000):
        p = tmp_path / f"same{n}.fastpack"
        p.write_bytes(one_name_on_many_ids(n))
        r = bounded([sys.executable, "-c", code, str(p), str(n)], timeout=120)
        assert r.returncode == 0 and not r.timed_out, r.text[-2000:]
        took.append(float(r.stdout.split()[-1]))
    # linear: 4x the ids take about 4x the time (quadratic took 16x+); generous for a busy machine
    assert took[1] < 10 * max(took[0], 0.05), took
