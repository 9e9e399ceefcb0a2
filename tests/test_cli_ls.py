"""``fastodin ls PATH... [--json]``: the dataset catalog on the command line (spec/dataset.md §2)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import fo, one_line_error

import fastodin
from fastodin.datasets import ROW_KEYS


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    d = tmp_path_factory.mktemp("ls")
    for k in range(3):
        with fastodin.Writer(d / f"r{k}.fastpack.zst") as w:
            w.set_tag("site", "lab" if k else "field")
            w.write_many(k * 100 + np.arange(50) * 0.1, "imu", np.zeros(50, [("x", "<f8")]))
            w.write_many(k * 100 + np.arange(5) * 1.0, "temp", np.arange(5.0))
    return d


def test_ls_table_of_a_directory(rec):
    p = fo("ls", str(rec))
    assert p.returncode == 0, p.err
    lines = p.out.splitlines()
    assert lines[0].split() == ["path", "channel", "records", "first", "s", "last", "s", "bytes", "kind"]
    body = [line.split() for line in lines[1:-1]]
    assert [(b[0].rsplit("/", 1)[-1], b[1], b[2]) for b in body] == [
        (f"r{k}.fastpack.zst", c, n) for k in range(3) for c, n in (("imu", "50"), ("temp", "5"))]
    assert lines[-1] == "3 files, 6 channels, 165 records" and p.err == ""


def test_ls_json_rows_are_the_catalog(rec):
    p = fo("ls", str(rec / "r*.fastpack.zst"), "--json")
    assert p.returncode == 0, p.err
    rows = json.loads(p.out)
    assert rows == json.loads(json.dumps(fastodin.dataset(str(rec / "r*.fastpack.zst")).rows()))
    assert all(list(r) == list(ROW_KEYS) for r in rows)
    r = rows[0]
    assert (r["channel"], r["kind"], r["count"], r["start"], r["end"], r["frames"], r["tags"], r["error"]) == (
        "imu", "layout", 50, 0.0, 4.9, 1, {"site": "field"}, None)


def test_ls_selects_by_channel_time_and_tag(rec):
    rows = json.loads(fo("ls", str(rec), "--channel", "t*", "--tag", "site=lab", "--start", "150", "--json").out)
    assert [(r["path"].rsplit("/", 1)[-1], r["channel"]) for r in rows] == [("r2.fastpack.zst", "temp")]


def test_ls_lists_bad_files_with_their_error_and_exits_by_the_worst(rec, tmp_path):
    bad = tmp_path / "bad.fastpack.zst"
    bad.write_bytes(b"\x28\xb5\x2f\xfd" + b"\xff" * 40)
    p = fo("ls", str(rec / "r0.fastpack.zst"), str(bad))
    assert p.returncode == 1
    assert "imu" in p.out and f"ERROR  {bad}: CorruptFrameError" in p.out
    assert "1 unreadable" in p.out
    assert one_line_error(p).startswith("fastodin ls: error: 1 file could not be read, e.g. ")
    p = fo("ls", str(rec / "r0.fastpack.zst"), str(bad), str(tmp_path / "missing.fastpack.zst"), "--json")
    assert p.returncode == 3
    rows = json.loads(p.out)
    err = {r["path"]: r["error"] for r in rows if r["error"]}
    assert set(err) == {str(bad), str(tmp_path / "missing.fastpack.zst")}
    assert err[str(tmp_path / "missing.fastpack.zst")].startswith("No such file or directory")


def test_ls_usage_errors():
    assert fo("ls").returncode == 2
    assert one_line_error(fo("ls", ".", "--tag", "novalue"), 2)
    assert "must be before" in one_line_error(fo("ls", ".", "--start", "5", "--end", "1"), 2)
