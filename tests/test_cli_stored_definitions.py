"""The command line on recordings made with ``--odin-db``: ``export``/``cat``/``info`` type the sets
from the definitions the recording stores (no ``--odin-db`` needed again; an explicit one wins),
and commands given a packet capture instead of a recording say to ``fastodin convert`` it."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastodin.cli.pcap import write_pcap
from fastodin.odin import Simulator, decode

REPO = Path(__file__).resolve().parents[1]


def fo(*args: str, timeout: float = 120):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("FASTODIN_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "fastodin", *args], capture_output=True, timeout=timeout, env=e)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A BURST capture of a device announcing its sets by 0x01 only, its OdinDB, and the archive
    ``convert --odin-db`` made of it."""
    d = tmp_path_factory.mktemp("rec")
    sim = Simulator(seed=11, self_describing=False)
    packets = sim.packets(n=700)
    db = sim.odin_db()
    (d / "cap.burst").write_bytes(sim.burst(n=700))
    (d / "db.odin.json").write_text(json.dumps(db))
    p = fo("convert", str(d / "cap.burst"), str(d / "rec.fastpack.zst"), "--odin-db", str(d / "db.odin.json"))
    assert p.returncode == 0, p.err
    return d, packets, db


def _npz_tables(path):
    with np.load(path) as z:
        out = {}
        for k in z.files:
            t, _, c = k.partition("/")
            out.setdefault(t, {})[c] = z[k]
    return out


def test_export_npz_typed_without_odin_db(recording, tmp_path):
    d, packets, db = recording
    p = fo("export", str(d / "rec.fastpack.zst"), "-o", str(tmp_path / "out.npz"), "--npz")
    assert p.returncode == 0, p.err
    got = _npz_tables(tmp_path / "out.npz")
    want = decode(packets, odin_db=db)
    assert not any(t.startswith("unresolved_") for t in got)
    for sid, tab in want.items():
        cols = tab.columns(expand=True)
        g = got[f"set_0x{sid:04X}"]
        assert list(g) == list(cols)
        for k, v in cols.items():
            assert g[k].dtype == v.dtype and g[k].tobytes() == np.ascontiguousarray(v).tobytes(), (sid, k)
    assert got["set_0x98A8"]["sensors.temperature"].dtype == np.dtype("<f4")
    assert got["set_0xB5A6"]["imu.sample.x"].dtype == np.dtype("<f4")


def test_export_selection_keeps_stored_definitions(recording, tmp_path):
    d, packets, db = recording
    p = fo("export", str(d / "rec.fastpack.zst"), "-o", str(tmp_path / "sel.npz"), "--npz",
           "--start", "0.05", "--channel", "odin/set/0x98A8")
    assert p.returncode == 0, p.err
    got = _npz_tables(tmp_path / "sel.npz")
    assert list(got) == ["set_0x98A8"]
    want = decode(packets, odin_db=db)[0x98A8]
    m = want.time >= 0.05
    assert m.sum() < len(want) and got["set_0x98A8"]["sensors.pressure"].dtype == np.dtype("<f4")
    assert np.array_equal(got["set_0x98A8"]["sensors.pressure"], want.records["sensors.pressure"][m])


def test_export_explicit_odin_db_wins(recording, tmp_path):
    d, packets, db = recording
    other = copy.deepcopy(db)
    for g in other["root"]["parameters"]:
        for prm in g["parameters"]:
            if prm["global_name"] == "sensors.temperature":
                prm["global_name"], prm["element_type"] = "renamed.temp", "u32"
    (tmp_path / "other.odin.json").write_text(json.dumps(other))
    p = fo("export", str(d / "rec.fastpack.zst"), "-o", str(tmp_path / "o.npz"), "--npz",
           "--odin-db", str(tmp_path / "other.odin.json"))
    assert p.returncode == 0, p.err
    got = _npz_tables(tmp_path / "o.npz")["set_0x98A8"]
    assert "renamed.temp" in got and "sensors.temperature" not in got
    assert got["renamed.temp"].dtype == np.dtype("<u4")


def test_cat_and_info_without_odin_db(recording):
    d, packets, db = recording
    p = fo("cat", str(d / "rec.fastpack.zst"), "--channel", "odin/set/0x98A8", "--limit", "3")
    assert p.returncode == 0, p.err
    first = [json.loads(l) for l in p.out.splitlines() if l.strip()][0]
    assert isinstance(first["values"]["sensors.temperature"], float)
    p = fo("info", str(d / "rec.fastpack.zst"))
    assert p.returncode == 0, p.err
    assert "odin/set/0x98A8" in p.out


def test_capture_instead_of_recording_says_convert(tmp_path):
    sim = Simulator(seed=12)
    pk = sim.packets(n=60)
    pcap = tmp_path / "cap.pcap"
    pcap.write_bytes(write_pcap([(i * 0.01, x) for i, x in enumerate(pk)], port=9000))
    burst = tmp_path / "cap.burst"
    burst.write_bytes(sim.burst(n=60))
    for cmd in (["cat"], ["info"], ["replay", "--stdout"], ["export", "-o", str(tmp_path / "x.npz"), "--npz"]):
        p = fo(*cmd, str(pcap))
        assert p.returncode == 1 and "Traceback" not in p.err, (cmd, p.err)
        assert "pcap capture" in p.err and f"fastodin convert {pcap} OUT.fastpack.zst" in p.err, (cmd, p.err)
    for cmd in (["cat"], ["info"]):
        p = fo(*cmd, str(burst))
        assert p.returncode == 1 and "BURST" in p.err and f"fastodin convert {burst} " in p.err, (cmd, p.err)
    # the hint is right: convert, then cat works
    out = tmp_path / "cap.fastpack.zst"
    assert fo("convert", str(pcap), str(out)).returncode == 0
    assert fo("info", str(out)).returncode == 0
    # random bytes get no capture hint
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(1, 256)) * 8)
    p = fo("cat", str(junk))
    assert p.returncode == 1 and "convert" not in p.err, p.err


def test_capture_kind():
    from fastodin.cli.sources import capture_kind

    assert capture_kind(str(REPO / "tests" / "vectors" / "odin" / "burst_framed_stream.bin")) == "burst"
    assert capture_kind(str(REPO / "pyproject.toml")) is None
    assert capture_kind("/nonexistent/file") is None


def test_hostile_stored_definitions_do_not_break_cat_or_export(tmp_path):
    # a stored dtype holding Python objects / not fitting its entry: raw bytes, never a crash
    import fastodin
    from fastodin.metadata import encode_meta
    from fastodin.odin.schema import EntryDef, SetDef

    d = SetDef(0, 0x0A0B, (EntryDef(5, 4), EntryDef(6, 2)))
    d = SetDef(d.computed_set_id, 0x0A0B, d.entries)
    ch = "odin/set/0x%04X" % d.set_id
    meta = {"odin": "set", "channel": ch, "set_id": d.set_id, "definition_identifier": 0x0A0B,
            "entries": [{"global_id": 5, "size": 4, "name": "v", "dtype": "|O"},
                        {"global_id": 6, "size": 2, "dtype": "<f8"}]}
    pkt = bytes([2]) + d.set_id.to_bytes(2, "little") + bytes(7) + np.float32(1.5).tobytes() + b"\x07\x00"
    path = tmp_path / "bad.fastpack.zst"
    with fastodin.Writer(str(path)) as w:
        w.write(0.0, 0, encode_meta(meta))
        w.write(0.0, ch + "/identifier", d.identifier_packet().to_bytes())
        w.write(0.0, ch, pkt)
    p = fo("cat", str(path), "--channel", ch)
    assert p.returncode == 0, p.err
    assert json.loads(p.out.splitlines()[-1])["values"]["v"] == np.float32(1.5).tobytes().hex()
    p = fo("export", str(path), "-o", str(tmp_path / "b.npz"), "--npz")
    assert p.returncode == 0, p.err
    got = _npz_tables(tmp_path / "b.npz")["set_0x%04X" % d.set_id]
    assert got["v"].dtype == np.dtype("V4") and got["0x00000006"].dtype == np.dtype("V2")
