"""Issue 8 item 5: writer metadata (id-0 ``{"fastodin": ...}`` and the recorder's ``{"odin":
"report"}``) with wrong JSON types never raises a raw TypeError/AttributeError: the record is
ignored with a counted note naming it, the data still reads (untyped), ``verify`` says NOT SOUND,
and every CLI command answers with one line and a sensible exit code.  Object dtypes are refused
on both sides (their bytes would be pointers)."""
import struct
import sys

import numpy as np
import orjson
import pytest

import fastodin
from fastodin.archive.layout import Layout
from fastodin.errors import DataError, UsageError

LAY_O = {"fields": [{"name": "v", "kind": "scalar", "dtype": "|O", "shape": []}], "descr": [["v", "|O"]],
         "itemsize": 8}
BAD = {
    "tags_list": {"fastodin": "file", "tags": [1, 2]},
    "tags_str": {"fastodin": "file", "tags": "x"},
    "preset_list": {"fastodin": "file", "preset": [1]},
    "channels_list": {"fastodin": "stream", "id": "s", "channels": [1]},
    "channel_unhashable": {"fastodin": "stream", "id": "s", "channels": {"data": ["x"]}},
    "layouts_str": {"fastodin": "stream", "id": "x", "channels": {"data": "x"}, "layouts": "x"},
    "layout_list": {"fastodin": "stream", "id": "x", "channels": {"data": "x"}, "layouts": {"data": [1]}},
    "stream_tags_str": {"fastodin": "stream", "id": "s", "tags": "t", "channels": {"data": "x"}},
    "stream_name_list": {"fastodin": "stream", "id": "x", "name": [1], "channels": {"data": "x"}},
    "stream_id_int": {"fastodin": "stream", "id": 5, "channels": {"data": "x"}},
    "dtype_O": {"fastodin": "channel", "name": "x", "layout": LAY_O},
    "stream_dtype_O": {"fastodin": "stream", "id": "x", "channels": {"data": "x"}, "layouts": {"data": LAY_O}},
    "named_stream_dtype_O": {"fastodin": "stream", "id": "x", "name": "x", "channels": {"data": "x"},
                             "layouts": {"data": LAY_O}},
    "layout_str": {"fastodin": "channel", "name": "x", "layout": "x"},
    "channel_name_int": {"fastodin": "channel", "name": 3, "layout": LAY_O},
    "field_without_kind": {"fastodin": "channel", "name": "x",
                           "layout": {"fields": [{"name": "s", "variable": True}], "descr": [], "itemsize": 0}},
    "field_not_a_map": {"fastodin": "channel", "name": "x", "layout": {"fields": [7], "descr": [], "itemsize": 0}},
    "audio_channels_str": {"fastodin": "channel", "name": "x", "layout": {
        "fields": [{"name": "s", "kind": "audio", "variable": True, "dtype": "<i2", "channels": "x"}],
        "descr": [], "itemsize": 0}},
    "descr_garbage": {"fastodin": "channel", "name": "x",
                      "layout": {"fields": [{"name": "v"}], "descr": [["v", {"a": 1}]], "itemsize": 8}},
    "huge_shape": {"fastodin": "channel", "name": "x", "layout": {
        "fields": [{"name": "v"}], "descr": [["v", "<f8", [10 ** 9, 10 ** 9]]], "itemsize": 8}},
}
ODIN_BAD = {
    "report_stats_list": {"odin": "report", "stats": [1], "sets": {}},
    "report_sets_list": {"odin": "report", "stats": {}, "sets": [1]},
    "report_set_str": {"odin": "report", "sets": {"0x0001": "x"}},
    "report_sequence_list": {"odin": "report", "sets": {"0x0001": {"sequence": [1]}}},
    "report_counter_str": {"odin": "report", "sets": {"0x0001": {"sequence": {"gaps": "x"}}}},
    "report_burst_list": {"odin": "report", "burst": [1]},
}


def _rec(t: float, i: int, p: bytes) -> bytes:
    return struct.pack("<dII", t, i, len(p)) + p + bytes(-len(p) & 7)


def _file(*metas: dict, odin: bool = False) -> bytes:
    name = b"odin/set/0x0001" if odin else b"x"
    return (b"".join(_rec(0.0, 0, orjson.dumps(m)) for m in metas) + _rec(0.0, 1, name)
            + _rec(0.5, 1, b"\x01" * 8) + _rec(1.0, 1, b"\x02" * 8))


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_writer_metadata_is_ignored_with_a_note(tmp_path, case):
    p = tmp_path / f"{case}.fastpack"
    p.write_bytes(_file(BAD[case]))
    assert len(p.read_bytes()) < 600
    with fastodin.open(p) as ar:          # was: raw TypeError / AttributeError
        assert ar.meta_ignored == 1
        assert any("record 0 of frame 0" in n for n in ar.notes), ar.notes
        assert ar.layouts == {}
        t, v = ar.read("x")               # the data reads, as raw bytes
        assert t.tolist() == [0.5, 1.0] and v.tolist() == [[1] * 8, [2] * 8]
        info = ar.info()
        assert info["records"] == 2 and info["notes"]
        assert isinstance(ar.tags, dict)


def test_ignored_metadata_notes_are_bounded(tmp_path):
    p = tmp_path / "many.fastpack"
    p.write_bytes(_file(*[BAD["tags_list"]] * 500))
    with fastodin.open(p) as ar:
        assert ar.meta_ignored == 500
        assert len(ar.notes) <= 25 and ar.notes[-1] == "... and 480 more metadata records ignored"


def test_a_good_record_after_a_bad_one_still_applies(tmp_path):
    good = {"fastodin": "channel", "name": "x", "layout": Layout.from_dtype("<f8").to_json()}
    p = tmp_path / "mixed.fastpack"
    p.write_bytes(_file(BAD["dtype_O"], good, BAD["tags_list"]))
    with fastodin.open(p) as ar:
        assert ar.meta_ignored == 2
        assert ar.read("x")[1].dtype == np.float64


def test_object_dtypes_are_refused():
    with pytest.raises(DataError, match="object dtype"):
        Layout.from_json(LAY_O)
    with pytest.raises(UsageError, match="object dtype"):
        Layout().array("v", "O", ())
    with pytest.raises(UsageError, match="object dtype"):
        Layout.from_dtype([("a", "<f8"), ("b", "O")])


def test_writer_refuses_object_arrays(tmp_path):
    with fastodin.Writer(tmp_path / "o.fastpack.zst") as w:
        with pytest.raises(UsageError, match="object dtype"):        # was: raw TypeError
            w.write_many([0.0, 1.0], "x", np.array([object(), "a"], dtype=object))
        w.write(2.0, "y", b"ok")
    with fastodin.open(tmp_path / "o.fastpack.zst") as ar:
        assert "x" not in ar.layouts and ar.info()["records"] == 1


def _kitchen_sink(tmp_path):
    """One 2 KB file holding every bad record at once, plus an ODIN channel with a bad report."""
    p = tmp_path / "bad.fastpack"
    metas = list(BAD.values()) + [ODIN_BAD["report_stats_list"]]
    data = (b"".join(_rec(0.0, 0, orjson.dumps(m)) for m in metas) + _rec(0.0, 1, b"x")
            + _rec(0.0, 2, b"odin/set/0x0001") + _rec(0.5, 1, b"\x01" * 8) + _rec(0.5, 2, b"\x03" * 12)
            + _rec(1.0, 1, b"\x02" * 8))
    p.write_bytes(data)
    return p


COMMANDS = [
    (["info", "{f}"], 0), (["info", "{f}", "--json"], 0), (["cat", "{f}"], 0), (["cat", "{f}", "--format", "csv"], 0),
    (["cat", "{f}", "--format", "hex"], 0), (["export", "{f}", "-o", "{d}/csv", "--csv"], 0),
    (["export", "{f}", "-o", "{d}/x.npz", "--npz"], 0),
    (["replay", "{f}", "--stdout", "--format", "fastpack", "--speed", "0"], 0),
    (["replay", "{f}", "--stdout", "--speed", "0"], 0), (["convert", "{f}", "{d}/c.fastpack.zst"], 0),
    (["convert", "{f}", "{d}/c.burst", "--to", "burst"], 0), (["convert", "{f}", "{d}/c.pcap", "--to", "pcap"], 0),
    (["verify", "{f}"], 1), (["verify", "{f}", "--json"], 1), (["recover", "{f}", "{d}/r.fastpack.zst"], 0),
]


@pytest.mark.parametrize("argv,code", COMMANDS, ids=[" ".join(x for x in a if "{" not in x) for a, _ in COMMANDS])
def test_every_cli_command_on_bad_metadata(bounded, tmp_path, argv, code):
    p = _kitchen_sink(tmp_path)
    r = bounded.cli(*[a.format(f=p, d=tmp_path) for a in argv], timeout=60)
    assert "internal error" not in r.text and "Traceback" not in r.text, r.text
    assert r.returncode == code, r.text
    err = r.stderr.decode().strip().splitlines()
    assert len(err) <= 1, err          # one line at most (replay's summary, an error)


def test_record_stdin_on_bad_metadata(bounded, tmp_path):
    p = _kitchen_sink(tmp_path)
    r = bounded.cli("record", "--stdin", "--fastpack", "-o", str(tmp_path / "rec.fastpack.zst"), "--quiet",
                    stdin=p.read_bytes(), timeout=60)
    assert "internal error" not in r.text and "Traceback" not in r.text, r.text
    assert r.returncode == 1 and "'tags' is list, expected a map of names" in r.text, r.text
    with fastodin.open(tmp_path / "rec.fastpack.zst") as ar:      # the data was recorded
        assert ar.info()["channels"]["x"]["count"] == 2


@pytest.mark.parametrize("case", sorted(ODIN_BAD))
def test_bad_odin_report_is_ignored(tmp_path, case):
    from fastodin.cli.info import info_dict
    from fastodin.cli.verify import verify

    p = tmp_path / f"{case}.fastpack"
    p.write_bytes(_file(ODIN_BAD[case], odin=True))
    with fastodin.open(p) as ar:            # info and verify read the report: was AttributeError
        d = info_dict(ar)
        assert any(n.startswith("ODIN report ignored") for n in d["notes"]), d["notes"]
        assert d["odin"]["source"].startswith("decoded")
    with fastodin.open(p) as ar:
        assert any(w.startswith("ODIN report ignored") for w in verify(ar)["warnings"])


def test_cli_info_on_a_128_byte_file(bounded, tmp_path):
    p = tmp_path / "small.fastpack"
    p.write_bytes(_file(BAD["tags_list"]))
    assert len(p.read_bytes()) <= 128
    r = bounded([sys.executable, "-m", "fastodin", "info", str(p)], timeout=30)
    assert r.returncode == 0 and "'tags' is list" in r.text and "internal error" not in r.text, r.text
