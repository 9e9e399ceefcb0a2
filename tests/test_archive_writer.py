"""Writer, Stream and Layout behaviour (read back through the reader)."""
from __future__ import annotations

import struct
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastodin.archive import PRESETS, Layout, Writer, WriterError, open_archive
from fastodin.errors import DataError, TimestampOrderError, UsageError


def test_tags_streams_layouts_round_trip(tmp_path):
    p = tmp_path / "v.fastpack.zst"
    with Writer(p, preset="fast") as w:
        w.set_tag("description", "My recording")
        cam = w.create_stream("camera", "left_eye", compression="medium")
        cam.set_tag("camera_id", "left")
        cam.get_config_record_metadata().scalar("exposure", "float32")
        cam.get_data_record_metadata().add_image_spec("image", 8, 4, "rgb8").add_scalar("gain", "uint16")
        cam.create_config_record(0.0, 0.01)
        imgs = [np.random.default_rng(i).integers(0, 255, (4, 8, 3), dtype=np.uint8) for i in range(5)]
        for i, img in enumerate(imgs):
            cam.create_data_record(i * 0.033, img, i)
        w.set_tag("late", [1, 2])
        imu = w.create_stream("imu", data=Layout().vector3d("acc").vector3d("gyro"))
        imu.config(0.0)
        imu.state(0.0, b"")
        for i in range(10):
            imu.data(i * 0.01, (i, 0, 9.8), (0, 0, i))
        cam.set_tag("late_tag", True)
    with open_archive(p) as ar:
        info = ar.info()
        assert info["tags"] == {"description": "My recording", "late": [1, 2]}
        s = info["streams"]["camera/left_eye"]
        assert s["flavor"] == "left_eye" and s["tags"] == {"camera_id": "left", "late_tag": True}
        assert s["compression"] == "medium" and s["count"] == 6
        assert info["streams"]["imu"]["channels"] == {"data": "imu", "config": "imu:config", "state": "imu:state"}
        assert info["channels"]["camera/left_eye"]["count"] == 5
        assert info["preset"] == "fast"
        t, v = ar.read("camera/left_eye")
        assert t.tolist() == [i * 0.033 for i in range(5)]
        assert v["image"].shape == (5, 4, 8, 3) and all(np.array_equal(v["image"][i], imgs[i]) for i in range(5))
        assert v["gain"].tolist() == list(range(5))
        t, v = ar.read("camera/left_eye:config")
        assert v["exposure"].tolist() == [np.float32(0.01)]
        t, v = ar.read("imu")
        assert v["acc"][3].tolist() == [3.0, 0.0, 9.8] and v["gyro"][3].tolist() == [0.0, 0.0, 3.0]
        lay = ar.layouts["camera/left_eye"]
        assert lay.fields[0]["pixel_format"] == "rgb8" and lay.fields[0]["width"] == 8


def test_data_before_config_raises(tmp_path):
    with Writer(tmp_path / "a.fastpack.zst") as w:
        s = w.create_stream("x")
        with pytest.raises(UsageError, match="before its config"):
            s.data(0.0, b"1")
        with pytest.raises(UsageError, match="before its config"):
            s.data_many([0.0], np.zeros(1, [("a", "u1")]))
        s.config(0.0)
        s.data(0.0, b"1")


def test_timestamp_order(tmp_path):
    with Writer(tmp_path / "a.fastpack.zst") as w:
        w.write(5.0, "a", b"x")
        w.write(3.0, "a", b"y")      # before any flush: fine, sorted in the frame
        assert w.flush(4.0) == 4      # file metadata + definition + 2 records
        with pytest.raises(TimestampOrderError):
            w.write(3.5, "a", b"z")
        with pytest.raises(TimestampOrderError):
            w.write(3.5, "b", b"z")
        with pytest.raises(TimestampOrderError):
            w.write_many([4.5, 3.9], "a", [b"1", b"2"])
        with pytest.raises(TimestampOrderError):
            w.flush(3.0)
        w.write(4.0, "a", b"w")
        with pytest.raises(UsageError):
            w.write(float("nan"), "a", b"w")
        with pytest.raises(UsageError):
            w.write_many([float("nan")], "a", [b"w"])
        with pytest.raises(UsageError):
            w.flush(float("nan"))
    with open_archive(tmp_path / "a.fastpack.zst") as ar:
        assert [(r.time, bytes(r.payload)) for r in ar.records()] == [(3.0, b"y"), (5.0, b"x"), (4.0, b"w")]
        assert [r.time for r in ar.records(order="time")] == [3.0, 4.0, 5.0]


def test_usage_errors(tmp_path):
    with pytest.raises(UsageError):
        Writer(tmp_path / "a", preset="bogus")
    with pytest.raises(UsageError):
        Writer(tmp_path / "a", frame_size=10)
    with pytest.raises(UsageError):
        Writer(tmp_path / "a", flush_interval=0)
    w = Writer(tmp_path / "b.fastpack.zst")
    with pytest.raises(UsageError):
        w.set_tag("bad", object())
    with pytest.raises(UsageError):
        w.set_tag(1, "x")
    w.create_stream("s")
    with pytest.raises(UsageError):
        w._streams["s"].set_tag("bad", {1, 2})
    with pytest.raises(UsageError):
        w.create_stream("s")
    with pytest.raises(UsageError):
        w.create_stream("")
    w.write(0.0, "plain", b"1")
    with pytest.raises(UsageError):
        w.create_stream("plain")
    for bad in (b"", b"0", b'{"fastodin":"file"}'):
        with pytest.raises(UsageError):
            w.write(0.0, 0, bad)
    w.write(0.0, 0, b'{"mine": 1}')
    for bad in ([b'{"fastodin":1}'], [b"0"], [b""]):
        with pytest.raises(UsageError):
            w.write_many([0.0], 0, bad)
    with pytest.raises(UsageError):
        w.write(0.0, 1.5, b"x")
    with pytest.raises(UsageError):
        w.write(0.0, "x", 12)
    with pytest.raises(UsageError):
        w.write("soon", "x", b"1")
    with pytest.raises(UsageError):
        w.write_many([0.0, 1.0], "y", [b"1"])
    w.close()
    w.close()  # idempotent
    with pytest.raises(UsageError):
        w.write(1.0, "plain", b"1")
    with open_archive(tmp_path / "b.fastpack.zst") as ar:
        recs = list(ar.records())
        assert [(r.id, bytes(r.payload)) for r in recs if r.id == 0] == [(0, b'{"mine": 1}')]


def test_layout_errors_and_freeze(tmp_path):
    with pytest.raises(UsageError):
        Layout().image("i", 2, 2, "yuv-nope")
    with pytest.raises(UsageError):
        Layout().audio("a", 1, 1, "float13")
    with pytest.raises(UsageError):
        Layout().scalar("a", "not-a-dtype")
    with pytest.raises(UsageError):
        Layout().scalar("a").scalar("a")
    with pytest.raises(UsageError):
        Layout().scalar("")
    with pytest.raises(UsageError):
        Layout.from_dtype("u1").scalar("x")
    with Writer(tmp_path / "a.fastpack.zst") as w:
        s = w.create_stream("s")
        s.data_layout.scalar("x", "u2")
        s.config(0.0)
        with pytest.raises(UsageError, match="frozen"):
            s.data_layout.scalar("y")
        with pytest.raises(UsageError):
            s.data(0.0, b"123")   # raw payload of the wrong size for a fixed layout
        with pytest.raises(UsageError):
            s.data(0.0, 1, 2)     # too many values
        with pytest.raises(UsageError):
            s.data(0.0, nope=1)
    with pytest.raises(DataError):
        Layout.from_json({"fields": "x"})


def test_variable_layouts(tmp_path):
    lay = Layout().scalar("seq", "<u4").string("label").audio("pcm", 16000, 2, "int16").blob("extra")
    with Writer(tmp_path / "a.fastpack.zst") as w:
        s = w.create_stream("mic", data=lay)
        s.config(0.0)
        for i in range(4):
            pcm = np.arange(2 * (i + 1), dtype=np.int16).reshape(-1, 2)
            s.data(i * 1.0, i, f"n{i}é", pcm, bytes([i]) * i)
    with open_archive(tmp_path / "a.fastpack.zst") as ar:
        t, v = ar.read("mic")
        assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
        assert v[2]["label"] == "n2é" and int(v[2]["seq"]) == 2 and v[2]["extra"] == b"\x02\x02"
        assert v[3]["pcm"].shape == (4, 2) and v[3]["pcm"].dtype == np.int16
        assert ar.layouts["mic"].fields[2]["rate"] == 16000


def test_structured_dtype_layout_and_write_many(tmp_path):
    dt = np.dtype({"names": ["a", "b", "c"], "formats": ["<u2", ("<f4", (3,)), "S5"],
                   "offsets": [0, 4, 20], "itemsize": 28})
    arr = np.zeros(100, dt)
    arr["a"] = np.arange(100)
    arr["b"] = np.arange(300).reshape(100, 3)
    arr["c"] = [f"r{i}".encode() for i in range(100)]
    t = np.arange(100) * 0.1
    m = np.arange(200, dtype=np.float64).reshape(100, 2)
    with Writer(tmp_path / "a.fastpack.zst", frame_size=2048) as w:
        w.write_many(t, "rows", arr)
        w.write_many(t, "pairs", m)
        w.write_many(t[:3], "blobs", [b"a", b"bb", b"ccc"])     # varying sizes
        w.define_channel("typed", Layout().scalar("v", "<i8"))
        w.write(0.0, "typed", struct.pack("<q", -5))
        with pytest.raises(UsageError):
            w.define_channel("typed", Layout())
        s = w.create_stream("st", data=Layout.from_dtype(dt))
        s.config(0.0)
        s.data_many(t, arr)
    with open_archive(tmp_path / "a.fastpack.zst") as ar:
        tt, v = ar.read("rows")
        assert np.array_equal(tt, t) and v.dtype == dt and np.array_equal(v, arr)
        tt, v = ar.read("pairs")
        assert np.array_equal(v, m)
        tt, v = ar.read("blobs")
        assert list(v) == [b"a", b"bb", b"ccc"]
        assert ar.read("typed")[1]["v"].tolist() == [-5]
        tt, v = ar.read("st")
        assert np.array_equal(v, arr)
        assert ar.read("pairs", start=1.0, end=2.0)[0].tolist() == [t[k] for k in range(10, 20)]


def test_presets_change_compression(tmp_path):
    data = [(i * 0.001, "c", (b"abcdefgh" * 8)) for i in range(5000)]
    sizes = {}
    for preset in ("none", "fast", "max", 5, "Zmedium"):
        p = tmp_path / f"{preset}.fastpack.zst"
        with Writer(p, preset=preset) as w:
            for r in data:
                w.write(*r)
        sizes[preset] = p.stat().st_size
        with open_archive(p) as ar:
            assert ar.info()["records"] == 5000
    assert sizes["none"] > 5000 * 80 > sizes["fast"] >= sizes["max"] * 0.9
    assert set(PRESETS) == {"none", "fast", "light", "medium", "heavy", "tight", "max"}


def test_large_payloads_get_frames_of_their_own(tmp_path, monkeypatch):
    p = tmp_path / "a.fastpack.zst"
    with Writer(p) as w:
        for i in range(300):
            w.write(i * 0.01, "imu", struct.pack("<3d", i, 0, 0))
            if i % 30 == 0:
                w.write(i * 0.01, "camera", bytes([i % 256]) * 100_000)
    with open_archive(p) as ar:
        cam = ar.ids["camera"]
        imu = ar.ids["imu"]
        assert all(not (cam in e.channels and imu in e.channels) for e in ar.frames)
        calls = []
        real = ar.frame_data

        def counting(e):
            calls.append(e.frame_no)
            return real(e)

        monkeypatch.setattr(ar, "frame_data", counting)
        t, v = ar.read("imu", dtype="<f8")
        assert v.shape == (300, 3)
        assert all(cam not in ar.frames[k].channels for k in calls)
        calls.clear()
        r = ar.at(1.0, "imu")
        assert r.time == 1.0 and len(calls) == 1


def test_worker_errors_surface(tmp_path, monkeypatch):
    w = Writer(tmp_path / "a.fastpack.zst", frame_size=1024)

    def boom(parts):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(w, "_writev", boom)
    w.write(0.0, "a", b"x" * 2000)   # cut -> the worker fails
    w._q.join()
    with pytest.raises(WriterError, match="disk full"):
        w.write(1.0, "a", b"x" * 2000)
    with pytest.raises(WriterError):
        w.flush()
    with pytest.raises(WriterError):
        w.close()
    # the file is left as it was (here: nothing written): it still opens
    with open_archive(tmp_path / "a.fastpack.zst") as ar:
        assert ar.info()["records"] == 0


def test_backpressure_bounds_the_queue(tmp_path):
    w = Writer(tmp_path / "a.fastpack.zst", frame_size=1024, queue_frames=1, flush_interval=None)
    gate = threading.Event()
    real = w._write_item

    def slow(g, data, cols=None):
        gate.wait(30)
        real(g, data, cols)

    w._write_item = slow
    done = threading.Event()

    def produce():
        for i in range(20):
            w.write(i * 1.0, "a", b"x" * 2000)
        done.set()

    th = threading.Thread(target=produce)
    th.start()
    time.sleep(0.3)
    assert not done.is_set()       # blocked: one frame in the worker, one waiting at most
    assert w._q.qsize() <= 1
    gate.set()
    th.join(30)
    assert done.is_set()
    w.close()
    with open_archive(tmp_path / "a.fastpack.zst") as ar:
        assert ar.info()["records"] == 20


def test_flush_interval_writes_without_more_calls(tmp_path):
    w = Writer(tmp_path / "a.fastpack.zst", flush_interval=0.05)
    w.write(0.0, "a", b"x")
    deadline = time.monotonic() + 20
    while w.frames == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.frames >= 1
    with open_archive(tmp_path / "a.fastpack.zst") as ar:   # readable while the writer is open
        assert [bytes(r.payload) for r in ar.records()] == [b"x"]
    w.close()


def test_empty_archive(tmp_path):
    with Writer(tmp_path / "e.fastpack.zst") as w:
        w.set_tag("k", "v")
    with open_archive(tmp_path / "e.fastpack.zst") as ar:
        assert ar.complete and ar.tags == {"k": "v"} and list(ar.records()) == []
        assert ar.info()["records"] == 0


rec_st = st.lists(st.tuples(st.floats(0, 100), st.sampled_from(["a", "b", "c/d", "é"]),
                            st.sampled_from([0, 1, 7, 8, 9, 16, 5000])), max_size=80)


@settings(max_examples=60, deadline=None)
@given(rec_st, st.booleans())
def test_round_trip_property(tmp_path_factory, recs, many):
    p = tmp_path_factory.mktemp("rt") / "a.fastpack.zst"
    written = []
    with Writer(p, frame_size=1024, large_payload=4096, flush_interval=None) as w:
        for k, (t, name, size) in enumerate(recs):
            payload = bytes([k % 256]) * size
            written.append((t, name, payload))
            if many and k % 3 == 0:
                w.write_many([t], name, [payload])
            else:
                w.write(t, name, payload)
    with open_archive(p) as ar:
        got = list(ar.records())
        assert len(got) == len(written)
        for name in {n for _, n, _ in written}:
            exp = sorted([(t, pl) for t, n, pl in written if n == name], key=lambda x: x[0])
            have = sorted([(r.time, bytes(r.payload)) for r in got if r.name == name], key=lambda x: x[0])
            assert [x[0] for x in have] == [x[0] for x in exp]
            assert sorted(have) == sorted(exp)
        times = [r.time for r in ar.records(order="time")]
        assert times == sorted(times)
        assert ar.info()["records"] == len(written)


def test_vrs_style_api(tmp_path):
    with Writer(tmp_path / "a.fastpack.zst") as w:
        s = w.create_stream("cam", compression="Zfast")
        s.get_state_record_metadata().scalar("temp", "float32")
        s.create_config_record(0.0)
        s.create_state_record(0.1, 36.6)
        s.create_data_record(0.2, b"raw")
        assert w.flush(0.15) >= 3
    with open_archive(tmp_path / "a.fastpack.zst") as ar:
        assert ar.read("cam:state")[1]["temp"].tolist() == [np.float32(36.6)]
        assert [bytes(r.payload) for r in ar.records("cam")] == [b"raw"]


def test_limits(tmp_path):
    from fastodin.errors import LimitError

    with Writer(tmp_path / "l.fastpack.zst", frame_size=1 << 22) as w:
        with pytest.raises(LimitError):
            w.write(0.0, "n" * 70000, b"x")
        with pytest.raises(LimitError):
            w.create_stream("s" * 70000)
        # tiny records: frames hold at most 65535 records (u16 counts in the index stay valid)
        w.write_many(np.zeros(70000), "many", np.zeros((70000, 0), np.uint8))
        for k in range(300):
            w.write(1.0, f"c{k}", b"")
    with open_archive(tmp_path / "l.fastpack.zst") as ar:
        assert all(e.n_records <= 0xFFFF for e in ar.frames)
        assert ar.info()["channels"]["many"]["count"] == 70000
        assert ar.info()["records"] == 70300


def test_write_many_copies_its_inputs(tmp_path):
    t = np.arange(100_000, dtype=np.float64) * 1e-3
    v = np.arange(200_000, dtype=np.float64).reshape(100_000, 2)
    expect_t, expect_v = t.copy(), v.copy()
    with Writer(tmp_path / "c.fastpack.zst", frame_size=1 << 16, queue_frames=64) as w:
        w.write_many(t, "x", v)
        t[:] = -1.0          # the worker may not have written the frames yet
        v[:] = -1.0
    with open_archive(tmp_path / "c.fastpack.zst") as ar:
        tt, vv = ar.read("x")
        assert np.array_equal(tt, expect_t) and np.array_equal(vv, expect_v)
        assert ar.info()["channels"]["x"]["first"] == 0.0
