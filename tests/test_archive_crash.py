"""Crash safety and damaged files: SIGKILLed writers, cuts, bit flips, recover()."""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastodin.archive import Writer, open_archive, recover
from fastodin.errors import DataError, FastOdinError

CHILD = textwrap.dedent("""
    import sys, time
    from fastodin.archive import Writer
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "exact":
        w = Writer(path, flush_interval=None, frame_size=1 << 16)
        n = 0
        for batch in range(5):
            for i in range(1000):
                w.write(n * 1e-3, "c%d" % (n % 3), n.to_bytes(8, "little")); n += 1
            w.flush(n * 1e-3)
            w.sync()
            print(n, flush=True)
        for i in range(500):      # pending in memory, never flushed
            w.write(n * 1e-3, "c0", n.to_bytes(8, "little")); n += 1
        print("pending", flush=True)
        time.sleep(120)
    else:
        w = Writer(path, flush_interval=0.01, frame_size=2048)
        n = 0
        print("go", flush=True)
        while True:
            w.write(n * 1e-3, "c%d" % (n % 3), n.to_bytes(8, "little")); n += 1
""")


def _run_child(tmp_path, mode):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "crash.fastpack.zst"
    proc = subprocess.Popen([sys.executable, str(script), str(path), mode], stdout=subprocess.PIPE, text=True)
    return proc, path


def test_sigkill_keeps_exactly_what_was_flushed(tmp_path):
    proc, path = _run_child(tmp_path, "exact")
    flushed = 0
    try:
        for line in proc.stdout:
            line = line.strip()
            if line == "pending":
                break
            flushed = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert flushed == 5000
    with open_archive(path) as ar:          # no exception, index rebuilt by scanning
        assert not ar.complete
        got = [int.from_bytes(r.payload, "little") for r in ar.records()]
        assert got == list(range(5000))
        assert [r.name for r in ar.records()][:4] == ["c0", "c1", "c2", "c0"]
        assert ar.info()["records"] == 5000


def test_sigkill_while_writing_leaves_a_readable_prefix(tmp_path):
    proc, path = _run_child(tmp_path, "stream")
    try:
        assert proc.stdout.readline().strip() == "go"
        # wait until a few frames are on disk, then kill mid-stream
        import time
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < 50_000):
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    with open_archive(path) as ar:
        got = [int.from_bytes(r.payload, "little") for r in ar.records()]
        assert len(got) > 100
        assert got == list(range(len(got)))    # complete frames only, nothing invented
    rep = recover(path, tmp_path / "fixed.fastpack.zst")
    assert rep.records_saved == len(got)
    with open_archive(tmp_path / "fixed.fastpack.zst") as ar:
        assert ar.complete and ar.info()["records"] == len(got)


def _sample(tmp_path, n=600, frame_size=1024, close=True):
    path = tmp_path / "s.fastpack.zst"
    recs = [(i * 0.01, f"c{i % 3}", struct.pack("<Q", i)) for i in range(n)]
    w = Writer(path, frame_size=frame_size, flush_interval=None)
    w.set_tag("t", 1)
    for r in recs:
        w.write(*r)
    if close:
        w.close()
    else:
        w.flush()
        w.sync()
    return path, recs, w


def test_every_cut_opens_with_the_complete_frames(tmp_path):
    path, recs, _ = _sample(tmp_path, n=300, frame_size=1024)
    data = path.read_bytes()
    with open_archive(path) as ar:
        frames = [(e.data_offset + e.compressed_size, e.data_records) for e in ar.frames]
    cut_file = tmp_path / "cut.fastpack.zst"
    for cut in range(0, len(data), 3):
        cut_file.write_bytes(data[:cut])
        with open_archive(cut_file) as ar:
            got = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
        expect = sum(k for end, k in frames if end <= cut)
        assert got == recs[:expect], cut


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_bit_flips_error_or_exact(tmp_path, data):
    if not hasattr(test_bit_flips_error_or_exact, "cache"):
        d = tmp_path / "flip"
        d.mkdir(exist_ok=True)
        path, recs, _ = _sample(d, n=200, frame_size=1024)
        crashed, _, w = _sample(d / "..", n=200, frame_size=1024, close=False)
        test_bit_flips_error_or_exact.cache = (path.read_bytes(), crashed.read_bytes(), recs)
        w.close()
    clean, crashed, recs = test_bit_flips_error_or_exact.cache
    src = (clean, crashed)[data.draw(st.integers(0, 1))]
    pos = data.draw(st.integers(0, len(src) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(src)
    bad[pos] ^= 1 << bit
    p = tmp_path / "bad.fastpack.zst"
    p.write_bytes(bytes(bad))
    try:
        with open_archive(p) as ar:
            ar.info()
            got = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
    except DataError as exc:
        assert "offset" in str(exc) or "frame" in str(exc) or "index" in str(exc), str(exc)
        return
    assert got == recs, f"flip at {pos} bit {bit} gave different records without an error"


def test_corrupt_frame_error_names_frame_and_time_range(tmp_path):
    path, recs, _ = _sample(tmp_path, n=600, frame_size=1024)
    with open_archive(path) as ar:
        e = ar.frames[2]
    bad = bytearray(path.read_bytes())
    bad[e.data_offset + e.compressed_size // 2] ^= 0xFF
    path.write_bytes(bytes(bad))
    with open_archive(path) as ar:
        with pytest.raises(DataError) as info:
            list(ar.records())
        msg = str(info.value)
        assert "frame 2" in msg and repr(e.t_min) in msg and repr(e.t_max) in msg
        assert info.value.offset == e.data_offset
        # other frames still read
        assert [r.time for r in ar.records(end=e.t_min - 1e-9)] == [t for t, _, _ in recs if t < e.t_min]


def test_recover_skips_bad_frames_and_reports(tmp_path):
    path, recs, _ = _sample(tmp_path, n=600, frame_size=1024)
    with open_archive(path) as ar:
        first, mid = ar.frames[0], ar.frames[3]
        lost_first = {r.time for r in ar.records() if first.t_min <= r.time <= first.t_max}
    bad = bytearray(path.read_bytes())
    for e in (first, mid):   # the first frame holds the name definitions
        bad[e.data_offset + e.compressed_size - 6] ^= 0x01
    path.write_bytes(bytes(bad))
    out = tmp_path / "out.fastpack.zst"
    rep = recover(path, out)
    assert rep.frames_lost == 2 and {x["frame"] for x in rep.lost} == {0, 3}
    assert rep.records_lost == first.data_records + mid.data_records
    assert {(x["t_min"], x["t_max"]) for x in rep.lost} == {(first.t_min, first.t_max), (mid.t_min, mid.t_max)}
    assert rep.records_saved + rep.records_lost == len(recs)
    assert "lost" in str(rep) and rep.as_dict()["frames_saved"] == rep.frames_saved
    with open_archive(out) as ar:
        got = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
        assert ar.tags == {"t": 1}
    lost_times = {t for t, _, _ in recs if mid.t_min <= t <= mid.t_max} | lost_first
    assert got == [r for r in recs if r[0] not in lost_times]


def test_damaged_index_frame_in_crashed_file_is_rebuilt(tmp_path):
    path, recs, w = _sample(tmp_path, n=600, frame_size=1024, close=False)
    data = bytearray(path.read_bytes())
    w.close()
    # data is the crashed state (no tail); break the CRC of the second index frame
    with open_archive(path) as ar:
        e = ar.frames[1]
    data[e.data_offset - 5] ^= 0x40
    p = tmp_path / "c.fastpack.zst"
    p.write_bytes(bytes(data))
    with open_archive(p) as ar:
        assert any("rebuilt" in n for n in ar.notes)
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs
        assert ar.info()["records"] == len(recs)


def test_garbage_between_frames(tmp_path):
    path, recs, w = _sample(tmp_path, n=300, frame_size=1024, close=False)
    data = path.read_bytes()
    w.close()
    with open_archive(path) as ar:
        e = ar.frames[1]
    cut = e.data_offset + e.compressed_size
    p = tmp_path / "g.fastpack.zst"
    p.write_bytes(data[:cut] + b"GARBAGE!" * 3 + data[cut:])
    with pytest.raises(DataError, match="unknown bytes at offset"):
        open_archive(p)
    rep = recover(p, tmp_path / "g2.fastpack.zst")
    assert rep.records_saved == len(recs) and rep.lost and rep.lost[0]["offset"] == cut
    with open_archive(tmp_path / "g2.fastpack.zst") as ar:
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs


@pytest.mark.parametrize("seed", range(40))
def test_errors_are_fastodin_errors(tmp_path, seed):
    """A zstd magic followed by garbage is a FastOdinError, or (when the garbage happens to parse as
    the start of a cut frame) opens with that damage reported; never another exception, never sound."""
    import random

    p = tmp_path / "x.fastpack.zst"
    p.write_bytes(struct.pack("<I", 0xFD2FB528) + random.Random(seed).randbytes(64))
    try:
        with open_archive(p) as ar:
            list(ar.records())
            assert ar.damage and not ar.complete
    except FastOdinError:
        pass


def test_oversized_index_frame_is_not_read(tmp_path, monkeypatch):
    from fastodin.archive import reader as reader_mod

    path, recs, w = _sample(tmp_path, n=300, frame_size=1024, close=False)
    data = path.read_bytes()
    w.close()
    p = tmp_path / "o.fastpack.zst"
    p.write_bytes(data)
    monkeypatch.setattr(reader_mod, "MAX_INDEX_FRAME", 64)   # every per-frame index is "too big"
    with pytest.raises(DataError, match="MAX_INDEX_FRAME"):
        open_archive(p)
    rep = recover(p, tmp_path / "o2.fastpack.zst")
    assert rep.records_saved == 0 and rep.lost
    # a complete file with an oversized seek table / consolidated index falls back to scanning
    full = tmp_path / "full.fastpack.zst"
    full.write_bytes(path.read_bytes())
    with pytest.raises(DataError):
        open_archive(full)
