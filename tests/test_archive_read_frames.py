"""Archive.read(frames=...), Archive.frames_decompressed and channel_matches: the public hooks a
dataset partition uses (a channel over a run of frames; proof of what was decompressed)."""
from __future__ import annotations

import numpy as np
import pytest

import fastodin
from fastodin.archive.reader import channel_matches
from fastodin.errors import UsageError


@pytest.fixture(scope="module")
def arch(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "f.fastpack.zst"
    n = 200_000
    with fastodin.Writer(path) as w:
        w.write_many(np.arange(n) * 1e-3, "v", np.arange(n, dtype="<f8"))
        w.write_many(np.arange(50) * 1.0, "cam", np.full((50, 6000), 7, np.uint8))   # its own frames
    return path


def test_open_decompresses_nothing(arch):
    with fastodin.open(arch) as ar:
        ar.info()
        assert ar.complete and ar.frames_decompressed == 0


def test_read_over_frames_equals_the_slice_of_a_full_read(arch):
    with fastodin.open(arch) as ar:
        t, v = ar.read("v")
        full = ar.frames_decompressed
        vf = [e.frame_no for e in ar.frames if ar.ids["v"] in e.channels]
        assert len(vf) > 3 and full == len(vf)            # read() decompresses only v's frames
        parts = [ar.read("v", frames=vf[k:k + 2]) for k in range(0, len(vf), 2)]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), t)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), v)
        assert ar.frames_decompressed == 2 * full           # each frame once more


def test_read_frames_with_a_window_and_other_channels_frames(arch):
    with fastodin.open(arch) as ar:
        t, v = ar.read("v", 10.0, 20.0)
        before = ar.frames_decompressed
        t2, v2 = ar.read("v", 10.0, 20.0, frames=range(len(ar.frames)))
        assert np.array_equal(t, t2) and np.array_equal(v, v2)
        assert ar.frames_decompressed - before == before    # the window prunes the same frames
        cam = [e.frame_no for e in ar.frames if ar.ids["cam"] in e.channels]
        before = ar.frames_decompressed
        t3, _ = ar.read("v", frames=cam)                    # frames without v: nothing to read
        assert t3.shape == (0,) and ar.frames_decompressed == before


def test_read_frames_out_of_range_is_a_usage_error(arch):
    with fastodin.open(arch) as ar:
        with pytest.raises(UsageError, match="has frames 0.."):
            ar.read("v", frames=[len(ar.frames)])
        with pytest.raises(UsageError):
            ar.read("v", frames=[-1])


def test_channel_matches_is_the_readers_rule(arch):
    with fastodin.open(arch) as ar:
        for pat in ("v", "c*", "?", "CAM", "*"):
            assert {ar.names[i] for i in ar.channel_ids(pat)} == {n for n in ar.ids if channel_matches(n, pat)}
    assert channel_matches("odin/set/0xABCD", "odin/set/0xabcd") and not channel_matches("Imu", "imu")


def test_a_typed_read_of_an_empty_window_is_an_empty_typed_array(tmp_path):
    # (was a DataError "payloads of 0 bytes, its layout says 8": a dataset partition whose window
    # misses every record of its frames reads exactly that)
    path = tmp_path / "e.fastpack.zst"
    dt = np.dtype([("a", "<f8"), ("b", "<u2")])
    with fastodin.Writer(path) as w:
        w.write_many([0.0, 1.0], "v", np.arange(2.0))
        w.write_many([0.0, 1.0], "s", np.zeros(2, dt))
    with fastodin.open(path) as ar:
        t, v = ar.read("v", 5.0, 6.0)
        assert t.shape == (0,) and v.dtype == np.float64 and v.shape == (0,)
        t, s = ar.read("s", frames=[])
        assert t.shape == (0,) and s.dtype == dt


def test_a_typed_odin_set_read_over_frames_is_those_frames_rows(tmp_path):
    from fastodin.odin import OdinToFastPack, Simulator, WriterSink

    path = tmp_path / "o.fastpack.zst"
    with fastodin.Writer(path) as w:
        conv = OdinToFastPack(WriterSink(w))
        conv.add_many(Simulator(seed=3).packets(duration=30.0))
        conv.close()
    with fastodin.open(path) as ar:
        t, v = ar.read(0xB5A6)
        assert v.dtype.names is not None
        fr = [e.frame_no for e in ar.frames if ar.ids["odin/set/0xB5A6"] in e.channels]
        assert len(fr) > 2
        parts = [ar.read(0xB5A6, frames=[k]) for k in fr]
    assert np.array_equal(np.concatenate([p[0] for p in parts]), t)
    for f in ("timestamp", "sequence", "imu.accel", "imu.time_us"):
        assert np.array_equal(np.concatenate([p[1][f] for p in parts]), v[f]), f
