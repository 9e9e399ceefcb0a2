"""Time bases (spec/fastpack.md §6.1): integer-nanosecond record times from an exact origin."""
import numpy as np
import pytest

import fastodin
from fastodin.archive import Writer, open_archive
from fastodin.errors import DataError
from fastodin.timebase import EXACT_NS_LIMIT, TimeBase, seconds_to_ns

ORIGIN = 1_700_000_000_000_000_123


def _archive(tmp_path, ns):
    tb = TimeBase.from_ns(ORIGIN)
    path = tmp_path / "tb.fastpack.zst"
    with Writer(path, time_base=tb) as w:
        w.write_many(tb.raw_from_ns(ns), "a", np.arange(len(ns), dtype="<f8"))
    return path


def test_ns_exact_below_2_53(tmp_path):
    off = np.array([0, 1, 999_999_999, 86_400 * 10**9 * 100 + 7, EXACT_NS_LIMIT - 1], np.uint64)
    ns = off + np.uint64(ORIGIN)
    path = _archive(tmp_path, ns)
    with open_archive(path, raw_time=True) as ar:
        t, _ = ar.read("a")
        assert np.array_equal(ar.time_base.ns_from_raw(t), ns)


def test_readers_interpret_seconds(tmp_path):
    ns = np.uint64(ORIGIN) + np.arange(5, dtype=np.uint64) * np.uint64(10**9)
    path = _archive(tmp_path, ns)
    with open_archive(path) as ar:
        assert ar.time_base == TimeBase.from_ns(ORIGIN)
        t, v = ar.read("a")
        assert np.allclose(t, ORIGIN / 1e9 + np.arange(5), rtol=0, atol=1e-6)
        lo = ORIGIN / 1e9 + 1.5
        got = [r.time for r in ar.records(start=lo, end=lo + 2)]
        assert len(got) == 2 and all(lo <= x < lo + 2 for x in got)
        c = ar.info()["channels"]["a"]
        assert abs(c["first"] - ORIGIN / 1e9) < 1e-6 and abs(c["rate"] - 1.0) < 1e-6
        assert ar.at(lo, "a", mode="after").time == got[0]
        t2, _ = ar.read("a", start=lo)
        assert t2.tolist() == [x for x in t.tolist() if x >= lo]


def test_stream_declares_it_for_codec_readers(tmp_path):
    pyzstd = pytest.importorskip("pyzstd")

    ns = np.uint64(ORIGIN) + np.arange(3, dtype=np.uint64) * np.uint64(250)
    path = _archive(tmp_path, ns)
    raw = pyzstd.decompress(path.read_bytes())   # every frame, skippable ones skipped (zstd -d)
    recs = [r for r in fastodin.decode(raw, namespace=True, resolve_time=True) if r.id]
    with open_archive(path) as ar:
        assert [r.time for r in recs] == ar.read("a")[0].tolist()


def test_from_meta_rejects_malformed():
    assert TimeBase.from_meta(None) is None and TimeBase.from_meta({"mode": "absolute"}) is None
    for bad in ([1], {"mode": "delta"}, {"mode": "multiple", "base": 0}, {"mode": "multiple", "origin_ns": -1},
                {"mode": "multiple", "base": float("nan")}, {"mode": "multiple", "origin_ns": 1.5}):
        with pytest.raises(DataError):
            TimeBase.from_meta(bad)


def test_bad_declaration_is_a_note(tmp_path):
    from fastodin.metadata import encode_meta
    data = fastodin.encode([(0.0, 0, encode_meta({"fastodin": "file", "version": 1, "seq": 1, "tags": {},
                                                   "fastpack_time": {"mode": "delta"}})), (2.0, "a", b"y")],
                           namespace=True)
    raw = tmp_path / "r.fastpack"
    raw.write_bytes(data)
    with open_archive(raw) as ar:
        assert ar.time_base is None and any("fastpack_time" in n for n in ar.notes)
        assert ar.read("a")[0].tolist() == [2.0]


def test_seconds_to_ns_is_nearest():
    t = np.array([1700000000.123456789, 1e-9, 3.0])
    from decimal import Decimal
    want = [int((Decimal(x) * 10**9).to_integral_value()) for x in t.tolist()]
    assert seconds_to_ns(t).tolist() == want
