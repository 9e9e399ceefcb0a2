"""``Archive.chunks()``: frame by frame, it gives exactly what ``columns()`` gives at once (its run
slicing and strided views are fast paths: equivalence with the general path on random files,
hypothesis), for archives and raw .fastpack files, with channel and time selections."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastodin


def _joined(ar, channels, start, end, frames=None):
    out = {}
    for _e, chans in ar.chunks(channels, start, end, frames=frames):
        assert chans, "frames without selected records are skipped"
        for name, (t, p) in chans.items():
            rows = [bytes(r) for r in p] if p.dtype == object else [r.tobytes() for r in p]
            got = out.setdefault(name, ([], []))
            got[0].extend(t.tolist())
            got[1].extend(rows)
    return out


def _columns(ar, channels, start, end):
    out = {}
    for name, (t, p) in ar.columns(channels, start, end).items():
        rows = [bytes(r) for r in p] if p.dtype == object else [r.tobytes() for r in p]
        out[name] = (t.tolist(), rows)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_chunks_equal_columns(tmp_path, data):
    n = data.draw(st.integers(1, 3000))
    pattern = data.draw(st.sampled_from(["runs", "round-robin", "random", "sizes"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    names = ["a", "b", "c"]
    if pattern == "runs":
        run = data.draw(st.sampled_from([1, 50, 700]))
        ch = np.repeat(rng.integers(0, 3, n // run + 1), run)[:n]
    elif pattern == "round-robin":
        ch = np.arange(n) % 3
    else:
        ch = rng.integers(0, 3, n)
    path = str(tmp_path / f"c{data.draw(st.integers(0, 10**9))}.fastpack.zst")
    with fastodin.Writer(path, frame_size=data.draw(st.sampled_from([1024, 4096, 1 << 16]))) as w:
        if data.draw(st.booleans()):     # every definition first: frames take the uniform fast path
            for c in names:
                w.write(0.0, c, rng.bytes(8))
        for k in range(n):
            size = 8 if pattern != "sizes" else int(rng.integers(0, 12))
            w.write(k * 1e-3, names[ch[k]], rng.bytes(size))
    sel = data.draw(st.sampled_from([None, "a", ["a", "c"], "*"]))
    start = data.draw(st.sampled_from([None, 0.0, n * 3e-4]))
    end = data.draw(st.sampled_from([None, n * 7e-4, n * 1e-3 + 1]))
    with fastodin.open(path) as ar:
        assert _joined(ar, sel, start, end) == _columns(ar, sel, start, end)
    raw = path[:-4]
    with fastodin.open(path) as ar, open(raw, "wb") as dst:      # what `zstd -d` gives
        for e in ar.frames:
            dst.write(ar.frame_data(e))
    with fastodin.open(raw) as ar:
        assert ar.format == "fastpack"
        assert _joined(ar, sel, start, end) == _columns(ar, sel, start, end)
    os.unlink(raw)
    os.unlink(path)


def test_chunks_views_and_frames(tmp_path):
    path = str(tmp_path / "v.fastpack.zst")
    with fastodin.Writer(path, frame_size=4096) as w:
        w.write_many(np.arange(1000) * 1e-3, "x", np.arange(2000.0).reshape(1000, 2))
    with fastodin.open(path) as ar:
        got = list(ar.chunks("x"))
        assert len(got) == len(ar.frames) > 2
        e, c = got[1]
        t, p = c["x"]
        assert p.dtype == np.uint8 and p.shape[1] == 16 and not p.flags.writeable
        assert p.view("<f8")[:, 0].tolist() == [2.0 * k for k in range(int(round(t[0] * 1e3)), int(round(t[0] * 1e3)) + len(t))]
        only = list(ar.chunks("x", frames=[ar.frames[2]]))
        assert [x[0].frame_no for x in only] == [2]
        assert list(ar.chunks("nothing")) == []


def test_chunks_memory_is_per_frame(tmp_path):
    """Frames are read a few at a time: a file much larger than one frame is never held whole."""
    path = str(tmp_path / "m.fastpack.zst")
    with fastodin.Writer(path, frame_size=1 << 16) as w:
        for k in range(20):
            w.write_many(k + np.arange(10000) * 1e-5, "x", np.zeros((10000, 8)))
    import tracemalloc

    with fastodin.open(path) as ar:
        tracemalloc.start()
        total = 0
        for _e, c in ar.chunks("x"):
            total += c["x"][0].shape[0]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert total == 200000
    assert peak < 8 * (1 << 20), peak        # the file holds 14 MiB of records


@pytest.mark.parametrize("start,end", [(None, None), (0.5, None), (None, 0.5), (0.25, 0.75)])
def test_chunks_nan_and_inf_times(tmp_path, start, end):
    recs = [(t, "x", bytes([k])) for k, t in enumerate([float("-inf"), 0.0, 0.5, float("nan"), 0.75, float("inf")])]
    raw = str(tmp_path / "n.fastpack")
    with open(raw, "wb") as f:
        f.write(fastodin.encode(recs, namespace=True))
    with fastodin.open(raw) as ar:
        a, b = _joined(ar, "x", start, end), _columns(ar, "x", start, end)
        assert [x for x in a.get("x", ([], []))[1]] == [x for x in b.get("x", ([], []))[1]]


@pytest.mark.parametrize("run,frame", [(700, 1 << 16), (3, 1 << 16), (5000, 1 << 14), (1, 4096)])
def test_chunks_equal_columns_long_files(tmp_path, run, frame):
    """Files long enough that most frames take the uniform fast path, with channels in runs."""
    rng = np.random.default_rng(run)
    n = 20000
    ch = np.repeat(rng.integers(0, 3, n // run + 1), run)[:n]
    path = str(tmp_path / "long.fastpack.zst")
    with fastodin.Writer(path, frame_size=frame) as w:
        for k in range(n):
            w.write(k * 1e-3, "abc"[ch[k]], rng.bytes(12))
    with fastodin.open(path) as ar:
        fast = sum(ar._uniform_columns(e, ar.frame_data(e)) is not None for e in ar.frames)
        assert fast >= len(ar.frames) - 2
        for sel, start, end in ((None, None, None), ("b", None, None), (["a", "c"], 3.0, 17.5)):
            assert _joined(ar, sel, start, end) == _columns(ar, sel, start, end)


def test_chunks_times_in_seconds_with_a_time_base(tmp_path):
    """A file that declares a time base: chunks() gives seconds, as read() and columns() do (and
    the viewer's times are those seconds)."""
    from fastodin.timebase import TimeBase

    tb = TimeBase.from_ns(1_700_000_000_000_000_123)
    path = str(tmp_path / "tb.fastpack.zst")
    ns = np.arange(5000, dtype=np.uint64) * np.uint64(1_000_000) + np.uint64(1_700_000_000_000_000_123)
    with fastodin.Writer(path, time_base=tb, frame_size=4096) as w:
        w.write_many(tb.raw_from_ns(ns), "a", np.arange(5000, dtype="<f8"))
    with fastodin.open(path) as ar:
        t_read = ar.read("a")[0]
        assert t_read[0] > 1.6e9                                  # seconds since the epoch
        got = _joined(ar, "a", None, None)
        assert got == _columns(ar, "a", None, None)
        assert got["a"][0] == t_read.tolist()
        s0 = float(t_read[1000])
        assert _joined(ar, "a", s0, None) == _columns(ar, "a", s0, None)
    from fastodin.view.dataset import ViewSet

    vs = ViewSet([path], cache_dir=False)
    vs.build()
    e = vs.series("a", "value", None, None, 5000)
    assert e["t0"].tolist() == t_read.tolist()
    vs.close()
