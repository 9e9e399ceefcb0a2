"""Reader: info from the index, selective decompression, typed reads, nearest-record lookups,
raw .fastpack files opened by content."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastodin.archive import Writer, open_archive
from fastodin.codec import Encoder
from fastodin.errors import DataError, UsageError
from fastodin.metadata import encode_meta


@pytest.fixture
def five(tmp_path):
    p = tmp_path / "five.fastpack.zst"
    recs = [(i * 1e-3, f"ch{i % 5}", struct.pack("<dd", i, i * 0.5)) for i in range(20000)]
    with Writer(p, frame_size=32768) as w:
        w.set_tag("site", "lab")
        for r in recs:
            w.write(*r)
    return p, recs


def test_info_from_index_only(five, monkeypatch):
    p, recs = five
    with open_archive(p) as ar:
        monkeypatch.setattr(ar, "frame_data", lambda e: pytest.fail("info decompressed a frame"))
        info = ar.info()
    assert info["format"] == "archive" and info["complete"] and info["tags"] == {"site": "lab"}
    assert info["records"] == 20000 and info["frames"] > 10
    c = info["channels"]["ch3"]
    assert c["count"] == 4000 and c["bytes"] == 64000 and c["first"] == 0.003 and c["last"] == recs[-2][0]
    assert abs(c["rate"] - 200.0) < 1e-6
    assert info["compression_ratio"] > 2
    assert info["time"] == [0.0, recs[-1][0]]


def test_records_selection(five, monkeypatch):
    p, recs = five
    with open_archive(p) as ar:
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs
        got = [(r.time, r.name) for r in ar.records(channels=["ch1", "ch[23]"], start=5.0, end=6.0)]
        exp = [(t, n) for t, n, _ in recs if n in ("ch1", "ch2", "ch3") and 5.0 <= t < 6.0]
        assert got == exp
        assert list(ar.records(channels="nope")) == []
        assert [r.time for r in ar.records(start=19.99)] == [t for t, _, _ in recs if t >= 19.99]
        # only overlapping frames are decompressed
        seen = []
        real = ar.frame_data
        monkeypatch.setattr(ar, "frame_data", lambda e: seen.append(e) or real(e))
        list(ar.records(start=10.0, end=10.01))
        assert len(seen) <= 2
        with pytest.raises(UsageError):
            list(ar.records(order="random"))


def test_time_order_merges_overlapping_frames(tmp_path):
    p = tmp_path / "m.fastpack.zst"
    t = np.arange(5000) * 0.001
    with Writer(p, frame_size=4096) as w:
        for k in range(3):
            w.write_many(t[k::3], f"c{k}", np.arange(len(t[k::3]), dtype="<u8"))
    with open_archive(p) as ar:
        file_order = [r.time for r in ar.records()]
        assert file_order != sorted(file_order)          # frames overlap in time
        times = [(r.time, r.name) for r in ar.records(order="time")]
        assert [x[0] for x in times] == t.tolist()
        assert [x[1] for x in times] == [f"c{k % 3}" for k in range(5000)]
        sub = [r.time for r in ar.records(order="time", start=1.0, end=2.0, channels="c1")]
        assert sub == [x for x in t[1::3].tolist() if 1.0 <= x < 2.0]


def test_read_and_columns(five):
    p, recs = five
    with open_archive(p) as ar:
        t, v = ar.read("ch2", dtype="<f8")
        assert v.shape == (4000, 2) and v[1].tolist() == [7.0, 3.5]
        assert t.tolist() == [x[0] for x in recs if x[1] == "ch2"]
        t, v = ar.read("ch2")
        assert v.dtype == np.uint8 and v.shape == (4000, 16)
        t, v = ar.read("ch2", start=1.0, end=1.02, dtype="<f8")
        assert t.tolist() == [x[0] for x in recs if x[1] == "ch2" and 1.0 <= x[0] < 1.02]
        assert v[:, 0].tolist() == [1002.0, 1007.0, 1012.0, 1017.0]
        cols = ar.columns()
        assert sorted(cols) == [f"ch{k}" for k in range(5)]
        assert np.array_equal(cols["ch4"][1].view("<f8"), ar.read("ch4", dtype="<f8")[1])
        with pytest.raises(UsageError):
            ar.read("nope")
        with pytest.raises(UsageError):
            ar.read("ch*")
        with pytest.raises(UsageError):
            ar.read("ch1", dtype="V3")
        t, v = ar.read("ch1", start=100.0)
        assert t.shape == (0,) and v.shape[0] == 0


def _brute(points, t, mode):
    if mode == "before":
        c = [x for x in points if x <= t]
        return max(c) if c else None
    if mode == "after":
        c = [x for x in points if x >= t]
        return min(c) if c else None
    best = min(points, key=lambda x: (abs(x - t), x))
    return best


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 50), min_size=1, max_size=200), st.lists(st.floats(-5, 55), min_size=1, max_size=10),
       st.booleans())
def test_at_matches_brute_force(tmp_path_factory, points, queries, overlap):
    p = tmp_path_factory.mktemp("at") / "a.fastpack.zst"
    with Writer(p, frame_size=1024, flush_interval=None) as w:
        if overlap:   # unsorted halves -> frames overlap in time
            half = len(points) // 2
            w.write_many(points[:half], "x", np.arange(half, dtype="<u8"))
            w.flush()
            w.write_many(points[half:], "x", np.arange(half, len(points), dtype="<u8"))
        else:
            for k, x in enumerate(sorted(points)):
                w.write(x, "x", struct.pack("<Q", k))
        w.write(25.0, "other", b"o")
    with open_archive(p) as ar:
        for q in queries:
            for mode in ("nearest", "before", "after"):
                r = ar.at(q, "x", mode=mode)
                exp = _brute(points, q, mode)
                assert (r.time if r is not None else None) == exp
                if r is not None:
                    assert r.name == "x"
        with pytest.raises(UsageError):
            ar.at(1.0, "x", mode="sideways")


def test_to_pandas(five):
    pd = pytest.importorskip("pandas")
    p, recs = five
    with open_archive(p) as ar:
        df = ar.to_pandas("ch0", end=1.0, dtype="<f8")
        assert list(df.columns) == ["ch0[0]", "ch0[1]"] and len(df) == 200
        assert df["ch0[0]"].tolist()[:2] == [0.0, 5.0]
        everything = ar.to_pandas(end=0.01)
        assert list(everything.columns) == ["time", "channel", "payload"] and len(everything) == 10
        assert isinstance(df, pd.DataFrame)


def test_raw_fastpack_opens_by_content(tmp_path):
    enc = Encoder(namespace=True)
    enc.add(0.0, 0, encode_meta({"fastodin": "file", "version": 1, "tags": {"a": 1}}))
    enc.add(0.0, 0, encode_meta({"user": True}))
    recs = []
    for i in range(1000):
        r = (i * 0.5, f"n{i % 4}", struct.pack("<d", i))
        recs.append(r)
        enc.add(*r)
    data = enc.take()
    p = tmp_path / "stream.bin"          # extension does not matter
    p.write_bytes(data + data[:30])      # plus a cut record at the end
    with open_archive(p) as ar:
        assert ar.format == "fastpack" and ar.tags == {"a": 1}
        assert ar.damage and ar.damage[0].length == 30
        got = [(r.time, r.name, bytes(r.payload)) for r in ar.records() if r.id]
        assert got == recs
        assert [r.meta() for r in ar.records() if r.id == 0] == [{"user": True}]
        t, v = ar.read("n1", dtype="<f8")
        assert v.tolist() == [float(i) for i in range(1, 1000, 4)]
        assert ar.at(10.2, "n0").time == 10.0
        info = ar.info()
        assert info["channels"]["n3"]["count"] == 250 and info["compression_ratio"] is None


def test_raw_fastpack_with_reset(tmp_path):
    enc = Encoder(namespace=True)
    enc.add(0.0, "a", b"1")
    enc.reset(1.0)
    enc.add(2.0, "b", b"2")
    p = tmp_path / "r.fastpack"
    p.write_bytes(enc.take())
    # id 1 is "a" before the reset and "b" after it: each record keeps its own name (as Perl reads it)
    with open_archive(p) as ar:
        assert [(r.id, r.name, bytes(r.payload)) for r in ar.records()] == [(1, "a", b"1"), (1, "b", b"2")]
        assert [bytes(r.payload) for r in ar.records(channels="b")] == [b"2"]
    enc = Encoder(namespace=True)
    enc.add(0.0, "a", b"1")
    enc.reset(1.0)
    enc.add(2.0, "a", b"2")          # same name again after the reset: fine
    enc.add(3.0, 0, b"0" * 2)        # id-0 payload b"00" is metadata, not a reset
    p.write_bytes(enc.take())
    with open_archive(p) as ar:
        assert [(r.name, bytes(r.payload)) for r in ar.records()] == [("a", b"1"), ("a", b"2"), (None, b"00")]


def test_empty_and_tiny_files(tmp_path):
    p = tmp_path / "empty"
    p.write_bytes(b"")
    with open_archive(p) as ar:
        assert list(ar.records()) == [] and ar.info()["records"] == 0
    p.write_bytes(b"\x28\xb5\x2f\xfd")  # zstd magic only
    with open_archive(p) as ar:
        assert list(ar.records()) == [] and ar.damage


def test_closed_archive(five):
    p, _ = five
    ar = open_archive(p)
    ar.close()
    ar.close()
    with pytest.raises(UsageError):
        list(ar.records())


def test_max_frame_size_limit(five):
    p, _ = five
    with open_archive(p, max_frame_size=1000) as ar:
        with pytest.raises(DataError, match="max_frame_size"):
            list(ar.records())


def test_irregular_and_large_payload_gather(tmp_path):
    p = tmp_path / "g.fastpack.zst"
    rng = np.random.default_rng(3)
    big = [rng.integers(0, 255, 3000, dtype=np.uint8).tobytes() for _ in range(20)]
    small = []
    with Writer(p, frame_size=1 << 16, large_payload=1 << 20) as w:
        for k in range(200):
            pl = struct.pack("<Q", k)
            small.append(pl)
            w.write(k * 0.1, "s", pl)
            if k % 3 == 0:
                w.write(k * 0.1, "noise", b"x" * (k % 7))   # irregular spacing of "s"
            if k % 10 == 0:
                w.write(k * 0.1, "big", big[k // 10])        # shares frames (large_payload is high)
    with open_archive(p) as ar:
        t, v = ar.read("big")
        assert [bytes(r) for r in v] == big
        t, v = ar.read("s", dtype="<u8")
        assert v.tolist() == list(range(200))
        cols = ar.columns()
        assert [bytes(r) for r in cols["big"][1]] == big
        assert cols["s"][1].view("<u8").reshape(-1).tolist() == list(range(200))
        assert list(cols["noise"][1]) == [b"x" * (k % 7) for k in range(0, 200, 3)]


def test_raw_fastpack_in_virtual_frames(tmp_path, monkeypatch):
    from fastodin.archive import reader as reader_mod

    monkeypatch.setattr(reader_mod, "RAW_CHUNK", 4096)
    enc = Encoder(namespace=True)
    recs = []
    for i in range(3000):
        name = f"c{i % 3}"
        pl = struct.pack("<Q", i) if i % 500 else bytes([i % 256]) * 10_000   # some bigger than a chunk
        recs.append((i * 0.01, name, pl))
        enc.add(i * 0.01, name, pl)
    p = tmp_path / "big.fastpack"
    p.write_bytes(enc.take())
    with open_archive(p) as ar:
        assert len(ar.frames) > 10 and ar.complete
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs
        assert ar.info()["channels"]["c1"]["count"] == 1000
        assert ar.at(12.345, "c2").time == recs[1235][0] if recs[1235][1] == "c2" else True
        t, v = ar.read("c1", start=1.0, end=2.0)
        assert t.tolist() == [r[0] for r in recs if r[1] == "c1" and 1.0 <= r[0] < 2.0]
        assert [r.time for r in ar.records(order="time")] == [r[0] for r in recs]
