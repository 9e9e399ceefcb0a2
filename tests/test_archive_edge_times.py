"""Reader regressions: records at +-inf and NaN times are never dropped by channel selection or
time pruning; raw files whose namespace resets re-bind ids keep every record's own name."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import fastodin
import fastodin.errors
from fastodin.archive import Writer, open_archive
from fastodin.codec import Encoder

INF = math.inf


def _rows(it):
    return [(r.time, r.name, bytes(r.payload)) for r in it]


def _same(a, b):
    """Record lists equal, NaN times equal to NaN."""
    assert len(a) == len(b), (a, b)
    for x, y in zip(a, b):
        assert x[1:] == y[1:], (a, b)
        assert x[0] == y[0] or (math.isnan(x[0]) and math.isnan(y[0])), (a, b)


@pytest.mark.parametrize("frames", ["one", "many"])
def test_infinite_times_survive_selection(tmp_path, frames):
    p = tmp_path / "inf.fastpack.zst"
    with Writer(p) as w:
        for t, name, payload in [(INF, "a", b"A"), (-INF, "b", b"B"), (1.0, "c", b"C")]:
            w.write(t, name, payload)
            if frames == "many":
                w.flush()
    with open_archive(p) as ar:
        assert _rows(ar.records(channels="a")) == [(INF, "a", b"A")]
        assert _rows(ar.records(channels="b")) == [(-INF, "b", b"B")]
        assert sorted(_rows(ar.records())) == [(-INF, "b", b"B"), (1.0, "c", b"C"), (INF, "a", b"A")]
        assert [r.time for r in ar.records(order="time")] == [-INF, 1.0, INF]
        # half-open [start, end): an open side has no bound at all
        assert [r.time for r in ar.records(start=0.0, order="time")] == [1.0, INF]
        assert [r.time for r in ar.records(end=2.0, order="time")] == [-INF, 1.0]
        assert [r.time for r in ar.records(start=-INF, end=INF, order="time")] == [-INF, 1.0]
        assert [r.time for r in ar.records(channels="a", start=INF)] == [INF]
        assert ar.read("a")[0].tolist() == [INF] and ar.read("b")[0].tolist() == [-INF]
        assert ar.read("a", start=0.0)[0].tolist() == [INF]
        cols = ar.columns()
        assert {k: v[0].tolist() for k, v in cols.items()} == {"a": [INF], "b": [-INF], "c": [1.0]}
        assert ar.columns("a")["a"][0].tolist() == [INF]
        assert ar.at(0.0, "a").time == INF and ar.at(0.0, "b").time == -INF
        assert ar.at(INF, "a", "before").time == INF and ar.at(INF, "a").time == INF
        assert ar.at(-INF, "b", "after").time == -INF and ar.at(5.0, "b", "after") is None
        assert len(ar.frames) == (3 if frames == "many" else 1)
        info = ar.info()
        assert {k: c["count"] for k, c in info["channels"].items()} == {"a": 1, "b": 1, "c": 1}
        assert info["records"] == 3 and info["time"] == [-INF, INF]


def _nan_file(tmp_path):
    enc = Encoder(namespace=True)
    enc.add(math.nan, "a", b"1")
    enc.add(2.0, "a", b"2")
    enc.add(INF, "b", b"3")
    p = tmp_path / "nan.fastpack"
    p.write_bytes(enc.take())
    return p


def test_raw_nan_times_are_not_dropped(tmp_path):
    p = _nan_file(tmp_path)
    with fastodin.open(p) as ar:
        _same(_rows(ar.records(channels="a")), [(math.nan, "a", b"1"), (2.0, "a", b"2")])
        assert _rows(ar.records(channels="b")) == [(INF, "b", b"3")]
        assert len(list(ar.records())) == 3 and len(list(ar.records(order="time"))) == 3
        assert _rows(ar.records(channels="a", start=0.0)) == [(2.0, "a", b"2")]   # NaN is in no range
        t, v = ar.read("a")
        assert np.isnan(t[0]) and t[1] == 2.0 and v.tobytes() == b"12"
        assert ar.columns()["a"][0].shape == (2,) and ar.columns("b")["b"][0].tolist() == [INF]
        assert ar.at(1.0, "a").time == 2.0 and ar.at(1.0, "a", "before") is None
        info = ar.info()
        assert info["channels"]["a"]["count"] == 2 and info["channels"]["b"]["count"] == 1
        assert info["channels"]["a"]["first"] == 2.0 and info["records"] == 3


def test_raw_all_nan_file(tmp_path):
    enc = Encoder(namespace=True)
    for k in range(5):
        enc.add(math.nan, "x", bytes([k]))
    p = tmp_path / "allnan.fastpack"
    p.write_bytes(enc.take())
    with fastodin.open(p) as ar:
        assert [bytes(r.payload) for r in ar.records(channels="x")] == [bytes([k]) for k in range(5)]
        assert len(list(ar.records(order="time"))) == 5
        assert ar.info()["channels"]["x"]["count"] == 5
        assert ar.at(0.0, "x") is None


def test_reset_rebinding_an_id_keeps_each_records_name(tmp_path):
    enc = Encoder(namespace=True)
    enc.add(0.0, "a", b"A")
    enc.reset(0.5)
    enc.add(1.0, "b", b"B")          # id 1 again, now named "b"
    enc.add(2.0, "a", b"A2")         # "a" now on id 2
    p = tmp_path / "reset.fastpack"
    p.write_bytes(enc.take())
    with fastodin.open(p) as ar:
        got = list(ar.records())
        assert [(r.time, r.id, r.name, bytes(r.payload)) for r in got] == [
            (0.0, 1, "a", b"A"), (1.0, 1, "b", b"B"), (2.0, 2, "a", b"A2")]
        assert _rows(ar.records(channels="b")) == [(1.0, "b", b"B")]
        assert _rows(ar.records(channels="a")) == [(0.0, "a", b"A"), (2.0, "a", b"A2")]
        assert _rows(ar.records(channels="a", order="time")) == [(0.0, "a", b"A"), (2.0, "a", b"A2")]
        assert _rows(ar.records(channels="?")) == [(0.0, "a", b"A"), (1.0, "b", b"B"), (2.0, "a", b"A2")]
        assert [bytes(r.payload) for r in ar.records(channels=1)] == [b"A", b"B"]   # an int is the file's id
        t, v = ar.read("a")
        assert t.tolist() == [0.0, 2.0] and list(v) == [b"A", b"A2"]
        cols = ar.columns()
        assert cols["a"][0].tolist() == [0.0, 2.0] and cols["b"][0].tolist() == [1.0]
        assert ar.at(1.9, "a").time == 2.0 and ar.at(0.4, "b").time == 1.0
        info = ar.info()
        assert {k: c["count"] for k, c in info["channels"].items()} == {"a": 2, "b": 1}


def test_name_on_two_ids_without_reset(tmp_path):
    # hand-built: ids 3 and 5 are both defined as "x"
    data = _rec(0, 3, b"x") + _rec(0, 5, b"x") + _rec(1, 3, b"p3") + _rec(2, 5, b"p5")
    p = tmp_path / "two.fastpack"
    p.write_bytes(data)
    with fastodin.open(p) as ar:
        assert [(r.id, bytes(r.payload)) for r in ar.records(channels="x")] == [(3, b"p3"), (5, b"p5")]
        assert ar.read("x")[0].tolist() == [1.0, 2.0]
        assert ar.info()["channels"]["x"]["count"] == 2


def _rec(t, i, p):
    return struct.pack("<dII", t, i, len(p)) + p + b"\0" * (-len(p) & 7)


def test_raw_definitions_named_falsy_bind_nothing(tmp_path):
    # as Perl Data::FastPack: a definition named "" or "0" leaves the id unbound (and is hidden)
    data = (_rec(0, 3, b"") + _rec(1, 3, b"x") + _rec(2, 3, b"data") + _rec(3, 4, b"0") + _rec(4, 4, b"0")
            + _rec(5, 0, b"") + _rec(6, 3, b"0") + _rec(7, 3, b"y") + _rec(8, 3, b"d2"))
    p = tmp_path / "falsy.fastpack"
    p.write_bytes(data)
    with fastodin.open(p) as ar:
        assert _rows(ar.records()) == [(2.0, "x", b"data"), (8.0, "y", b"d2")]
        assert _rows(ar.records(channels="y")) == [(8.0, "y", b"d2")]
        assert ar.info()["records"] == 2


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.sampled_from([0.0, 1.0, -1.0, INF, -INF, math.nan]),
                                    st.sampled_from(["a", "b", "c"]), st.binary(max_size=9)),
                          st.just("reset")), max_size=30),
       st.sampled_from([64, 1 << 22]), st.sampled_from(["raw", "zstd"]))
def test_raw_files_lose_no_record(tmp_path_factory, ops, chunk, form):
    """Whatever the times and resets: records(), and records(channels=name) per name, give
    exactly the records added, with their names, in file order -- for a raw .fastpack and for
    the same stream compressed by plain zstd in two frames (no fastodin index: rebuilt)."""
    from fastodin.archive import reader

    enc = Encoder(namespace=True)
    want = []
    parts = []
    for k, op in enumerate(ops):
        if op == "reset":
            enc.reset(0.0)
        else:
            enc.add(*op)
            want.append(op)
        if k == len(ops) // 2:
            parts.append(enc.take())
    parts.append(enc.take())
    p = tmp_path_factory.mktemp("raw") / "x.fastpack"
    if form == "raw":
        p.write_bytes(b"".join(parts))
    else:
        zc = zstandard.ZstdCompressor()
        p.write_bytes(b"".join(zc.compress(x) for x in parts if x))
    old = reader.RAW_CHUNK
    reader.RAW_CHUNK = chunk
    try:
        with fastodin.open(p) as ar:
            _same(_rows(ar.records()), want)
            for name in "abc":
                _same(_rows(ar.records(channels=name)), [w for w in want if w[1] == name])
                if any(w[1] == name for w in want):
                    assert ar.read(name)[0].shape[0] == sum(w[1] == name for w in want)
            assert ar.info()["records"] == len(want)
            assert len(list(ar.records(order="time"))) == len(want)
            assert sum(v[0].shape[0] for v in ar.columns().values()) == len(want)
            for name in {w[1] for w in want}:
                ts = [w[0] for w in want if w[1] == name and not math.isnan(w[0])]
                for q in (-INF, -0.5, 0.0, 0.7, INF):
                    for mode in ("nearest", "before", "after"):
                        got = ar.at(q, name, mode)
                        if mode == "before":
                            c = [x for x in ts if x <= q]
                            exp = max(c) if c else None
                        elif mode == "after":
                            c = [x for x in ts if x >= q]
                            exp = min(c) if c else None
                        else:
                            dist = [(0.0 if x == q else abs(x - q), x) for x in ts]
                            exp = min(dist)[1] if dist else None
                        assert (got.time if got is not None else None) == exp, (q, mode)
    finally:
        reader.RAW_CHUNK = old


def test_writer_error_lives_in_errors():
    from fastodin.archive import WriterError
    from fastodin.archive.writer import WriterError as W2

    assert WriterError is fastodin.errors.WriterError is W2
    assert "WriterError" in fastodin.errors.__all__
    assert issubclass(WriterError, fastodin.errors.FastOdinError)


def test_public_frame_columns(tmp_path):
    p = tmp_path / "fc.fastpack.zst"
    with Writer(p) as w:
        for k in range(10):
            w.write(k * 0.1, "a" if k % 2 else "b", bytes([k]) * 4)
    with open_archive(p) as ar:
        e = ar.frames[0]
        t, i, o, n = ar.frame_columns(e, ar.frame_data(e))
        assert t.shape[0] == 10 and sorted(set(i.tolist())) == sorted(ar.ids.values())
        assert n.tolist() == [4] * 10


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 0, 1, 2, 3, 7]),
                          st.sampled_from([b"", b"0", b"a", b"b", b"c", b"0a", b"\xff"])), max_size=40),
       st.sampled_from([16, 48, 1 << 22]))
def test_raw_namespace_pass_matches_the_codec(tmp_path_factory, recs, chunk):
    """The vectorised raw-file namespace pass (definitions, falsy names that bind nothing, resets,
    re-bound ids, any chunking) gives exactly the records and names of the codec's
    record-by-record decoder (the reference rules)."""
    from fastodin.archive import reader

    data = b"".join(_rec(float(k), i, p) for k, (i, p) in enumerate(recs))
    want = [(r.time, r.id, r.name, bytes(r.payload)) for r in fastodin.decode(data, namespace=True)]
    p = tmp_path_factory.mktemp("ns") / "x.fastpack"
    p.write_bytes(data)
    old = reader.RAW_CHUNK
    reader.RAW_CHUNK = chunk
    try:
        with fastodin.open(p) as ar:
            got = [(r.time, r.id, r.name, bytes(r.payload)) for r in ar.records()]
            assert got == want
            for name in {w[2] for w in want if w[2] is not None}:
                assert [g for g in got if g[2] == name] == [w for w in want if w[2] == name]
                assert ar.info()["channels"][name]["count"] == sum(w[2] == name for w in want)
    finally:
        reader.RAW_CHUNK = old


def test_channel_table_answers_as_the_dict(tmp_path, monkeypatch):
    """A raw chunk of many channels keeps its index statistics as numpy columns (ChannelTable);
    every query answers exactly as with the plain dict."""
    from fastodin.archive import reader
    from fastodin.archive.index import ChannelTable

    rng = np.random.default_rng(5)
    n = 3000
    enc = Encoder(namespace=True)
    for k in range(6000):
        c = int(rng.integers(0, n))
        enc.add(float(rng.integers(0, 50)) / 4, f"c{c}", bytes([k & 255]) * int(rng.integers(0, 12)))
        if k == 4000:
            enc.reset(9.0)
    p = tmp_path / "many.fastpack"
    p.write_bytes(enc.take())

    def answers():
        with fastodin.open(p) as ar:
            info = ar.info()
            return (info, [(r.time, r.id, r.name, bytes(r.payload)) for r in ar.records(channels="c1*")],
                    _rows(ar.records(start=2.0, end=5.0, order="time")),
                    [(k, v[0].tolist()) for k, v in sorted(ar.columns(start=1.0).items())],
                    [_at(ar.at(3.1, name)) for name in sorted(ar.ids)[::37]],
                    [type(e.channels) for e in ar.frames])

    def _at(r):
        return None if r is None else (r.time, r.id, r.name, bytes(r.payload))

    table = answers()
    assert ChannelTable in table[-1]
    monkeypatch.setattr(reader, "_TABLE_CHANNELS", 1 << 30)
    plain = answers()
    assert set(plain[-1]) == {dict}
    assert table[:-1] == plain[:-1]
