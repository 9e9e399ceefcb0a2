"""fastodin export --mcap / fastodin.mcap.export_mcap, checked with the real peers: mcap's own reader
(summary, chunk and message indexes) and the jsonschema validator."""
import struct
import subprocess
import sys
import zlib

import numpy as np
import orjson
import pytest

from fastodin.archive import Layout, Writer, open_archive
from fastodin.mcap.export import META_TOPIC, RAW_ENCODING, export_mcap
from fastodin.timebase import seconds_to_ns

mcap_reader = pytest.importorskip("mcap.reader")
mcap_stream = pytest.importorskip("mcap.stream_reader")
jsonschema = pytest.importorskip("jsonschema")


def _messages(path):
    """[(schema, channel, message)] in file order, with mcap's reader."""
    with open(path, "rb") as f:
        r = mcap_reader.make_reader(f)
        return list(r.iter_messages(log_time_order=False)), r.get_summary(), list(r.iter_metadata())


def check_mcap(path):
    """mcap's reader reads the file; its summary and indexes agree with the messages; every JSON
    message validates against its schema.  Returns {topic: [(log_time, decoded or bytes, sequence)]}."""
    msgs, summary, _meta = _messages(path)
    st = summary.statistics
    assert st.message_count == len(msgs)
    counts = {}
    for _s, ch, m in msgs:
        counts[ch.id] = counts.get(ch.id, 0) + 1
    assert st.channel_message_counts == counts
    assert st.channel_count == len(summary.channels) and st.schema_count == len(summary.schemas)
    assert st.chunk_count == len(summary.chunk_indexes)
    if msgs:
        assert st.message_start_time == min(m.log_time for *_x, m in msgs)
        assert st.message_end_time == max(m.log_time for *_x, m in msgs)
    raw = open(path, "rb").read()
    # chunk indexes -> chunks; message indexes -> every message of the chunk, by offset
    n_indexed = 0
    for ci in summary.chunk_indexes:
        op, ln = struct.unpack_from("<BQ", raw, ci.chunk_start_offset)
        assert op == 0x06 and 9 + ln == ci.chunk_length
        with open(path, "rb") as f:
            f.seek(ci.chunk_start_offset)
            chunk = next(iter(mcap_stream.StreamReader(f, skip_magic=True, emit_chunks=True).records))
        data, _n = mcap_stream.get_chunk_data_stream(chunk, validate_crc=True)
        body = data.read(_n)
        assert zlib.crc32(body) == chunk.uncompressed_crc
        times = []
        for cid, off in ci.message_index_offsets.items():
            with open(path, "rb") as f:
                f.seek(off)
                mi = next(iter(mcap_stream.StreamReader(f, skip_magic=True).records))
            assert mi.channel_id == cid
            for lt, o in mi.records:
                op, _ln, c, _seq, lt2 = struct.unpack_from("<BQHIQ", body, o)
                assert (op, c, lt2) == (0x05, cid, lt)
                times.append(lt)
                n_indexed += 1
        assert min(times) == ci.message_start_time and max(times) == ci.message_end_time
    assert n_indexed == len(msgs)
    out = {}
    validators = {}
    for s, ch, m in msgs:
        if ch.message_encoding == "json":
            assert s is not None and s.encoding == "jsonschema"
            v = validators.get(s.id)
            if v is None:
                sch = orjson.loads(s.data)
                assert sch["type"] == "object" and "properties" in sch     # what Foxglove requires
                v = validators[s.id] = jsonschema.Draft202012Validator(sch)
            val = orjson.loads(m.data)
            v.validate(val)
        else:
            val = m.data
        assert m.publish_time == m.log_time
        out.setdefault(ch.topic, []).append((m.log_time, val, m.sequence))
    return out


@pytest.fixture
def typed(tmp_path):
    path = tmp_path / "typed.fastpack.zst"
    rng = np.random.default_rng(3)
    with Writer(path) as w:
        w.set_tag("site", "lab")
        w.set_tag("run", {"n": 3})
        lay = (Layout().vector3d("acc").scalar("temp", "float32").scalar("n", "<u2").string("label", 6)
               .blob("raw", 5).array("m", "int16", (2, 2)))
        imu = w.create_stream("imu", data=lay)
        imu.set_tag("mount", "left")
        imu.config(0.0)
        for k in range(300):
            imu.data(0.01 * k + 0.001, rng.normal(size=3), np.float32(k / 7), k, b"ab" if k % 2 else b"abcdef",
                     bytes([k % 256]) * 5, np.arange(4, dtype=np.int16).reshape(2, 2) * k)
        w.write_many(np.arange(1000) * 1e-3, "pressure", rng.random((1000, 2)))
        w.write_many(np.arange(50) * 0.1, "count", np.arange(50, dtype="<i4"))
        for k in range(20):
            w.write(0.05 * k, "blob", bytes(range(k)))
        w.write(0.5, 0, b'{"note": "hello"}')
    return path


def test_typed_export(typed, tmp_path):
    out = tmp_path / "typed.mcap"
    rep = export_mcap(typed, out)
    got = check_mcap(out)
    ar = open_archive(typed)
    assert rep["messages"] == sum(len(v) for v in got.values())
    assert set(got) == {"imu", "imu:config", "pressure", "count", "blob", META_TOPIC}
    t, v = ar.read("imu")
    rows = got["imu"]
    assert [x[0] for x in rows] == seconds_to_ns(t).tolist()
    for k in (0, 1, 299):
        d = rows[k][1]
        assert d["acc"] == v["acc"][k].tolist()
        assert np.float32(d["temp"]) == v["temp"][k]
        assert d["n"] == int(v["n"][k]) and d["label"] == v["label"][k].rstrip(b"\0").decode("latin-1")
        import base64

        assert base64.b64decode(d["raw"]) == bytes(v["raw"][k])
        assert d["m"] == v["m"][k].reshape(-1).tolist()
    t, v = ar.read("pressure")
    assert [x[1]["value"] for x in got["pressure"]] == v.tolist()
    assert [x[1]["value"] for x in got["count"]] == ar.read("count")[1].tolist()
    t, v = ar.read("blob")
    assert [x[1] for x in got["blob"]] == [bytes(b) for b in v]
    assert got[META_TOPIC][0][1] == {"note": "hello"}
    _m, summary, meta = _messages(out)
    enc = {c.topic: c.message_encoding for c in summary.channels.values()}
    assert enc["blob"] == RAW_ENCODING and enc["imu"] == "json"
    md = {m.name: m.metadata for m in meta}
    assert md["fastodin.tags"] == {"site": "lab", "run": '{"n":3}'}
    assert md["fastodin.stream/imu"] == {"mount": "left"}
    assert not list(tmp_path.glob("*.part"))


def test_odin_export_equals_decode(tmp_path):
    from fastodin.archive.writer import Writer as W
    from fastodin.odin import Simulator, decode
    from fastodin.odin.mapping import OdinToFastPack, WriterSink

    path = tmp_path / "odin.fastpack.zst"
    with W(path) as w:
        conv = OdinToFastPack(WriterSink(w))
        conv.add_many(Simulator(seed=2).packets(duration=1.0))
        conv.close()
    out = tmp_path / "odin.mcap"
    export_mcap(path, out)
    got = check_mcap(out)
    ar = open_archive(path)
    res = decode(ar)
    assert res
    for sid, tab in res.items():
        rows = got[f"odin/set/0x{sid:04X}"]
        assert len(rows) == len(tab)
        cols = tab.columns(expand=False)

        def pick(d, name):
            for part in name.split("."):
                d = d[part]
            return d

        for k in (0, len(tab) // 2, len(tab) - 1):
            d = rows[k][1]
            assert rows[k][2] == int(tab.sequence[k])          # MCAP sequence = ODIN sequence
            for name, col in cols.items():
                want = col[k]
                have = pick(d, name) if "." not in name or name.split(".")[0] in d else d[name]
                _same(have, want)
    for eid, ev in res.events.items():
        rows = got[f"odin/event/{eid}"]
        assert [r[1]["timestamp"] for r in rows] == ev.timestamp.tolist()
    t, _v = ar.read(f"odin/set/0x{next(iter(res)):04X}")
    assert [x[0] for x in got[f"odin/set/0x{next(iter(res)):04X}"]] == seconds_to_ns(t).tolist()


def _same(have, want):
    """A JSON value against a numpy value of the typed column (spec/mcap.md §3)."""
    if isinstance(want, np.void) and want.dtype.names:
        for n in want.dtype.names:
            _same(have[n], want[n])
    elif isinstance(want, np.ndarray):
        flat = want.reshape(-1)
        if flat.dtype.names:
            assert len(have) == flat.shape[0]
            for h, x in zip(have, flat):
                _same(h, x)
        else:
            assert len(have) == flat.shape[0]
            for h, x in zip(have, flat.tolist()):
                _same(h, np.asarray(x, flat.dtype)[()])
    elif isinstance(want, (np.floating, float)):
        assert np.asarray(have, type(want) if isinstance(want, np.floating) else float) == want
    elif isinstance(want, np.bytes_):
        assert have == bytes(want).rstrip(b"\0").decode("latin-1")
    elif isinstance(want, np.bool_):
        assert have is bool(want)
    else:
        assert have == (want.item() if hasattr(want, "item") else want)


def test_times_mcap_cannot_hold(tmp_path):
    path = tmp_path / "t.fastpack"
    import fastodin

    recs = [(-1.0, "a", b"x"), (0.5, "a", b"y"), (float("inf"), "a", b"z"), (float("nan"), "a", b"w"),
            (float("-inf"), "a", b"v"), (2.0, "a", b"u")]
    path.write_bytes(fastodin.encode(recs, namespace=True))
    rep = export_mcap(path, tmp_path / "t.mcap")
    assert rep["skipped"] == {"nan": 1, "inf": 2, "negative": 1, "too_late": 0}
    got = check_mcap(tmp_path / "t.mcap")
    assert [x[0] for x in got["a"]] == [500_000_000, 2_000_000_000]
    rep = export_mcap(path, tmp_path / "t2.mcap", time_offset=1.5)
    assert rep["skipped"]["negative"] == 0 and rep["messages"] == 3
    assert [x[0] for x in check_mcap(tmp_path / "t2.mcap")["a"]] == [500_000_000, 2_000_000_000, 3_500_000_000]


def test_nonfinite_values_left_out(tmp_path):
    path = tmp_path / "nf.fastpack.zst"
    a = np.zeros(3, [("x", "<f8"), ("v", "<f4", (2,)), ("k", "<u1")])
    a["x"] = [1.0, np.nan, np.inf]
    a["v"][2] = [1.0, np.nan]
    with Writer(path) as w:
        w.write_many([0.0, 1.0, 2.0], "s", a)
    rep = export_mcap(path, tmp_path / "nf.mcap")
    got = [x[1] for x in check_mcap(tmp_path / "nf.mcap")["s"]]
    assert got == [{"x": 1.0, "v": [0.0, 0.0], "k": 0}, {"v": [0.0, 0.0], "k": 0}, {"k": 0}]
    assert rep["not_finite_values"] == 3


def test_selection_as_cat(typed, tmp_path):
    out = tmp_path / "sel.mcap"
    export_mcap(typed, out, channels=["imu", "press*"], start=0.5, end=1.0)
    got = check_mcap(out)
    ar = open_archive(typed)
    assert set(got) == {"imu", "pressure"}
    for name in ("imu", "pressure"):
        t = [r.time for r in ar.records(channels=name, start=0.5, end=1.0)]
        assert [x[0] for x in got[name]] == seconds_to_ns(np.array(t)).tolist()


def test_small_windows_and_chunks(typed, tmp_path):
    """Many time windows and chunks give the same messages as one window."""
    a, b = tmp_path / "a.mcap", tmp_path / "b.mcap"
    export_mcap(typed, a)
    export_mcap(typed, b, window=64, chunk_size=2048)
    ga, gb = check_mcap(a), check_mcap(b)
    assert ga == gb
    assert len(_messages(b)[1].chunk_indexes) > 10


def test_cli_export(typed, tmp_path):
    out = tmp_path / "c.mcap"
    run = [sys.executable, "-m", "fastodin", "export", str(typed), "--mcap", str(out)]
    p = subprocess.run(run, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "exported" in p.stdout and out.exists()
    p = subprocess.run(run, capture_output=True, text=True)
    assert p.returncode == 3 and "exists" in p.stderr and "--force" in p.stderr
    p = subprocess.run(run + ["--force", "--channel", "nothing*"], capture_output=True, text=True)
    assert p.returncode == 2 and "no channel matches" in p.stderr
    neg = tmp_path / "neg.fastpack"
    import fastodin

    neg.write_bytes(fastodin.encode([(-2.0, "a", b"x"), (1.0, "a", b"y")], namespace=True))
    p = subprocess.run([sys.executable, "-m", "fastodin", "export", str(neg), "--mcap", str(tmp_path / "n.mcap")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "1 negative" in p.stderr and "--time-offset" in p.stderr
    p = subprocess.run([sys.executable, "-m", "fastodin", "export", str(neg), "--mcap", str(tmp_path / "n2.mcap"),
                        "--time-offset", "2"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([sys.executable, "-m", "fastodin", "convert", str(typed), str(tmp_path / "v.mcap")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert check_mcap(tmp_path / "v.mcap") == check_mcap(out)


def test_variable_layout(tmp_path):
    path = tmp_path / "var.fastpack.zst"
    with Writer(path) as w:
        lay = Layout().scalar("k", "<u2").string("note").blob("blob").audio("mic", 8000, 2, "int16")
        s = w.create_stream("log", data=lay)
        s.config(0.0)
        for k in range(5):
            s.data(0.1 * k, k, "é" * k, bytes(range(k)), np.arange(4 * k, dtype=np.int16).reshape(-1, 2))
    export_mcap(path, tmp_path / "var.mcap")
    got = check_mcap(tmp_path / "var.mcap")["log"]
    import base64

    assert [d["k"] for _t, d, _s in got] == list(range(5))
    assert [d["note"] for _t, d, _s in got] == ["é" * k for k in range(5)]
    assert [base64.b64decode(d["blob"]) for _t, d, _s in got] == [bytes(range(k)) for k in range(5)]
    assert got[3][1]["mic"] == list(range(12))


def test_imported_time_base_is_exact(tmp_path):
    """An archive with an integer-ns time base exports its exact nanoseconds (no f64-seconds rounding)."""
    from fastodin.timebase import TimeBase

    tb = TimeBase.from_ns(1_700_000_000_000_000_001)
    ns = np.array([0, 1, 7, 99 * 86_400 * 10**9 + 3], np.uint64) + np.uint64(tb.origin_ns)
    path = tmp_path / "tb.fastpack.zst"
    with Writer(path, time_base=tb) as w:
        w.write_many(tb.raw_from_ns(ns), "a", np.arange(4.0))
    export_mcap(path, tmp_path / "tb.mcap")
    assert [x[0] for x in check_mcap(tmp_path / "tb.mcap")["a"]] == ns.tolist()
