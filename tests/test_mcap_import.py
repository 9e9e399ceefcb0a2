"""fastodin convert IN.mcap OUT.fastpack.zst and back, with files written by mcap's own writer:
topics, schemas, encodings, channel metadata, message bytes and log times identical."""
import subprocess
import sys

import numpy as np
import orjson
import pytest

from fastodin.archive import open_archive
from fastodin.mcap.export import export_mcap
from fastodin.mcap.importer import import_mcap

mcap_writer = pytest.importorskip("mcap.writer")
mcap_reader = pytest.importorskip("mcap.reader")

T0 = 1_700_000_000_123_456_789          # an epoch time whose ns an f64 of seconds cannot hold
DAY = 86_400 * 10**9


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def _field(num, wire, payload):
    key = _varint(num << 3 | wire)
    return key + (_varint(len(payload)) + payload if wire == 2 else payload)


def _descriptor_set():
    """A real FileDescriptorSet (protobuf wire format, written by hand): message P {double x = 1; string s = 2;}"""
    fx = _field(1, 2, b"x") + _field(3, 0, _varint(1)) + _field(4, 0, _varint(1)) + _field(5, 0, _varint(1))
    fs = _field(1, 2, b"s") + _field(3, 0, _varint(2)) + _field(4, 0, _varint(1)) + _field(5, 0, _varint(9))
    msg = _field(1, 2, b"P") + _field(2, 2, fx) + _field(2, 2, fs)
    fdp = _field(1, 2, b"p.proto") + _field(2, 2, b"demo") + _field(4, 2, msg) + _field(12, 2, b"proto3")
    return _field(1, 2, fdp)


def _pb(x, s):
    import struct

    return _field(1, 1, struct.pack("<d", x)) + _field(2, 2, s.encode())


def make_mcap(path, compression="zstd", chunk_size=4096, span=99 * DAY):
    """JSON (jsonschema), protobuf and schemaless channels, several chunks, metadata, an attachment;
    log times over ``span`` ns (99 days: more than f64 seconds or f64 ns-as-seconds keep)."""
    ct = {"zstd": mcap_writer.CompressionType.ZSTD, "lz4": mcap_writer.CompressionType.LZ4,
          "": mcap_writer.CompressionType.NONE}[compression]
    with open(path, "wb") as f:
        w = mcap_writer.Writer(f, chunk_size=chunk_size, compression=ct)
        w.start(profile="x-test", library="mcap-python test")
        js = w.register_schema("Point", "jsonschema", orjson.dumps(
            {"type": "object", "properties": {"x": {"type": "number"}, "n": {"type": "integer"}}}))
        pb = w.register_schema("demo.P", "protobuf", _descriptor_set())
        c1 = w.register_channel("/point", "json", js, {"frame": "map"})
        c2 = w.register_channel("/proto", "protobuf", pb)
        c3 = w.register_channel("/free", "cbor", 0, {"k": "v"})
        c4 = w.register_channel("/point", "json", js, {"frame": "odom"})     # a second channel, same topic
        rng = np.random.default_rng(1)
        n = 600
        times = np.sort(rng.integers(0, span, n)).astype(np.int64) + T0
        times[-1] = T0 + span
        for k, t in enumerate(times.tolist()):
            c = (c1, c2, c3, c4)[k % 4]
            if c in (c1, c4):
                data = orjson.dumps({"x": float(k) / 3, "n": k})
            elif c == c2:
                data = _pb(k * 0.25, f"m{k}")
            else:
                data = bytes(rng.integers(0, 256, k % 37, dtype=np.uint8))
            if c == c2:     # publish times and sequence numbers that say something: carried too
                w.add_message(c, log_time=t, data=data, publish_time=t - 1000 - k, sequence=k)
            else:
                w.add_message(c, log_time=t, data=data, publish_time=t, sequence=0)
        w.add_metadata("calibration", {"fx": "512.5", "fy": "511"})
        w.add_metadata("robot", {"name": "r2"})
        w.add_attachment(create_time=T0 + 5, log_time=T0 + 7, name="notes.txt", media_type="text/plain",
                         data=b"hello attachment")
        w.finish()
    return path


def read_all(path):
    with open(path, "rb") as f:
        r = mcap_reader.make_reader(f)
        s = r.get_summary()
        msgs = {}
        for sc, ch, m in r.iter_messages(log_time_order=False):
            key = (ch.topic, ch.message_encoding, tuple(sorted(ch.metadata.items())),
                   (sc.name, sc.encoding, sc.data) if sc else None)
            msgs.setdefault(key, []).append((m.log_time, m.publish_time, m.sequence, m.data))
        meta = [(m.name, m.metadata) for m in r.iter_metadata()]
        att = [(a.name, a.media_type, a.log_time, a.create_time, a.data) for a in r.iter_attachments()]
        hdr = r.get_header()
    return s, {k: sorted(v) for k, v in msgs.items()}, meta, att, (hdr.profile, hdr.library)


@pytest.mark.parametrize("compression", ["zstd", "lz4", ""])
def test_round_trip_identical(tmp_path, compression):
    if compression == "lz4":
        pytest.importorskip("lz4")
    src = make_mcap(tmp_path / "in.mcap", compression)
    s_in, m_in, meta_in, att_in, _h = read_all(src)
    assert len(s_in.chunk_indexes) > 3
    rep = import_mcap(src, tmp_path / "a.fastpack.zst")
    assert rep["messages"] == 600 and rep["inexact_times"] == 0 and rep["truncated"] is None
    assert rep["skipped"] == {} and rep["attachments"] == 1
    back = tmp_path / "back.mcap"
    export_mcap(tmp_path / "a.fastpack.zst", back)
    s_out, m_out, meta_out, att_out, h = read_all(back)
    assert m_out == m_in               # topics, encodings, channel metadata, schemas, bytes, log times
    assert meta_out == meta_in
    assert att_out == att_in
    assert h[0] == "x-test"


def test_archive_view(tmp_path):
    src = make_mcap(tmp_path / "in.mcap")
    import_mcap(src, tmp_path / "a.fastpack.zst")
    with open_archive(tmp_path / "a.fastpack.zst") as ar:
        assert set(ar.ids) >= {"/point", "/proto", "/free", "/point#4", "/proto#mcap"}
        assert ar.read("/proto#mcap")[1]["sequence"][:3].tolist() == [1, 5, 9]
        assert ar.tags["calibration"] == {"fx": "512.5", "fy": "511"} and ar.tags["robot"] == {"name": "r2"}
        tag = ar.tags["mcap"]
        assert tag["channels"]["2"]["message_encoding"] == "protobuf"
        t, v = ar.read("/point")
        _s, m_in, *_ = read_all(src)
        want = [lt for lt, *_x in m_in[("/point", "json", (("frame", "map"),),
                                      ("Point", "jsonschema", next(k for k in m_in if k[0] == "/point")[3][2]))]]
        assert np.allclose(t, np.array(want) / 1e9, rtol=0, atol=1e-6)          # seconds since the epoch
        assert orjson.loads(bytes(v[0])) == {"x": 0.0, "n": 0}
        lo = T0 / 1e9 + 10 * 86400
        got = [r.time for r in ar.records(channels="/proto", start=lo, end=lo + 30 * 86400)]
        assert got and all(lo <= x < lo + 30 * 86400 for x in got)
    p = subprocess.run([sys.executable, "-m", "fastodin", "cat", str(tmp_path / "a.fastpack.zst"), "--channel",
                        "/proto", "--start", str(lo), "--end", str(lo + 30 * 86400)], capture_output=True, text=True)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == len(got)


def test_beyond_104_days_is_reported(tmp_path):
    src = make_mcap(tmp_path / "in.mcap", span=110 * DAY)
    rep = import_mcap(src, tmp_path / "a.fastpack.zst")
    assert rep["inexact_times"] > 0


def test_cli_convert(tmp_path):
    src = make_mcap(tmp_path / "in.mcap")
    out = tmp_path / "a.fastpack.zst"
    run = [sys.executable, "-m", "fastodin", "convert", str(src), str(out)]
    p = subprocess.run(run, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "600 messages" in p.stdout and "1 attachments" in p.stdout
    p = subprocess.run(run, capture_output=True, text=True)
    assert p.returncode == 3 and "--force" in p.stderr
    p = subprocess.run(run[:-1] + [str(tmp_path / "x.fastpack")], capture_output=True, text=True)
    assert p.returncode == 2 and "converts to an archive" in p.stderr
    p = subprocess.run([sys.executable, "-m", "fastodin", "export", str(out), "--mcap", str(tmp_path / "b.mcap")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert read_all(tmp_path / "b.mcap")[1] == read_all(src)[1]
    assert not list(tmp_path.glob("*.part"))


def test_truncated_input_keeps_the_complete_part(tmp_path):
    src = make_mcap(tmp_path / "in.mcap", chunk_size=2048)
    data = src.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[:len(data) * 2 // 3])
    rep = import_mcap(cut, tmp_path / "a.fastpack.zst")
    assert rep["truncated"] and 0 < rep["messages"] < 600
    p = subprocess.run([sys.executable, "-m", "fastodin", "convert", str(cut), str(tmp_path / "b.fastpack.zst")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "cut short" in p.stderr
    with open_archive(tmp_path / "b.fastpack.zst") as ar:
        chans = ar.info()["channels"]
        assert sum(chans[c]["count"] for c in rep["channels"]) == rep["messages"]


def test_lz4_without_the_extra_is_exit_4(tmp_path):
    pytest.importorskip("lz4")
    import os

    src = make_mcap(tmp_path / "in.mcap", "lz4")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "lz4").mkdir()
    (shim / "lz4" / "__init__.py").write_text("raise ImportError('hidden for this test')\n")
    env = dict(os.environ, PYTHONPATH=str(shim))
    p = subprocess.run([sys.executable, "-m", "fastodin", "convert", str(src), str(tmp_path / "a.fastpack.zst")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 4 and "fastodin[mcap]" in p.stderr, p.stderr
    assert not (tmp_path / "a.fastpack.zst").exists()


def test_recover_and_convert_keep_exact_times(tmp_path):
    """An imported archive recovered, or converted archive -> archive, still exports every log_time exactly."""
    from fastodin.archive import recover

    src = make_mcap(tmp_path / "in.mcap")
    import_mcap(src, tmp_path / "a.fastpack.zst")
    recover(tmp_path / "a.fastpack.zst", tmp_path / "r.fastpack.zst")
    p = subprocess.run([sys.executable, "-m", "fastodin", "convert", str(tmp_path / "a.fastpack.zst"),
                        str(tmp_path / "c.fastpack.zst")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    want = read_all(src)[1]
    for name in ("r", "c"):
        export_mcap(tmp_path / f"{name}.fastpack.zst", tmp_path / f"{name}.mcap")
        assert read_all(tmp_path / f"{name}.mcap")[1] == want
