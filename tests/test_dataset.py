"""fastodin.dataset: the catalog from indexes only, selection across files, one channel as an Arrow
stream, a DuckDB table and a lazy polars frame (real pyarrow, duckdb, polars), equal to reading
the files one by one with Archive.read; projection and pushdown proven on frames decompressed;
bad files listed, changed files an error, different ODIN definitions an error."""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys

import dataset_files as D
import numpy as np
import pytest

import fastodin
from fastodin.errors import FileChangedError, SchemaMismatch, UsageError

# the engines are imported by the tests that use them, not at collection (a lighter pytest process)
_ENGINES = ("pyarrow", "polars", "duckdb", "pandas")
pytestmark = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in _ENGINES),
                                reason="needs pyarrow, polars, duckdb and pandas (the test extra)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    runs = D.write_runs(d)
    sub = d / "odin"
    sub.mkdir()
    odin = D.write_odin(sub)
    (d / "README.txt").write_text("not a recording")
    (d / ".hidden").mkdir()
    shutil.copy(runs[0], d / ".hidden" / "copy.fastpack.zst")
    return d, runs, odin


def _read(paths, channel, start=None, end=None):
    """The reference: every file read with Archive.read, concatenated in file order."""
    ts, vs = [], []
    for p in paths:
        with fastodin.open(p) as ar:
            if channel in ar.ids:
                t, v = ar.read(channel, start, end)
                ts.append(t)
                vs.append(v)
    return np.concatenate(ts), np.concatenate(vs)


# ---- catalog ---------------------------------------------------------------------------------------

def test_catalog_is_built_from_the_indexes_only(tree):
    d, runs, odin = tree
    ds = fastodin.dataset(d)
    assert ds.frames_decompressed == 0
    assert [f.path for f in ds.files] == runs + odin          # recursive, sorted, hidden entries skipped
    cat = ds.catalog()
    assert list(cat.columns) == list(fastodin.datasets.ROW_KEYS)
    for p in runs + odin:
        with fastodin.open(p) as ar:
            info = ar.info()
        rows = cat[cat.path == p]
        assert set(rows.channel) == set(info["channels"])
        for r in rows.itertuples():
            c = info["channels"][r.channel]
            assert (r.count, r.start, r.end, r.bytes, r.frames) == (c["count"], c["first"], c["last"], c["bytes"],
                                                                    c["frames"])
            assert r.tags == info["tags"] and r.complete and r.error is None
    kinds = dict(zip(cat.channel, cat.kind))
    assert kinds["imu"] == "layout" and kinds["cam"] == "raw" and kinds["odin/set/0x98A8"] == "odin-set"
    assert kinds["0"] == "metadata"


def test_paths_glob_list_and_directory_are_one_rule(tree):
    d, runs, odin = tree
    assert [f.path for f in fastodin.dataset(str(d / "run*.fastpack.zst")).files] == runs
    assert [f.path for f in fastodin.dataset(str(d / "**" / "odin*.fastpack.zst")).files] == odin
    assert [f.path for f in fastodin.dataset([runs[1], runs[0], runs[1]]).files] == [runs[1], runs[0]]
    assert [f.path for f in fastodin.dataset(runs[2]).files] == [runs[2]]


def test_files_that_fail_are_rows_with_their_error(tree, tmp_path):
    d, runs, _ = tree
    bad = tmp_path / "bad.fastpack.zst"
    bad.write_bytes(b"\x28\xb5\x2f\xfd" + b"\xff" * 60)
    cut = tmp_path / "cut.fastpack.zst"
    cut.write_bytes(open(runs[0], "rb").read()[:100])         # a crashed writer's first bytes
    ds = fastodin.dataset([runs[0], str(bad), str(tmp_path / "missing.fastpack.zst"), str(tmp_path / "no*.zst"),
                           str(cut), str(tmp_path)])
    rows = {r["path"]: r for r in ds.rows() if r["channel"] is None}
    assert "CorruptFrameError" in rows[str(bad)]["error"]
    assert "No such file" in rows[str(tmp_path / "missing.fastpack.zst")]["error"]
    assert rows[str(tmp_path / "no*.zst")]["error"].startswith("no file matches")
    codes = {f.path: f.error_code for f in ds.failed}
    assert codes[str(bad)] == 1 and codes[str(tmp_path / "missing.fastpack.zst")] == 3
    assert [f.path for f in ds.files] == [runs[0], str(cut)]    # a crashed writer's file opens, empty
    assert rows[str(cut)]["error"] is None and rows[str(cut)]["complete"] is False
    with pytest.warns(UserWarning, match="could not be opened"):
        t = ds.to_arrow("imu").read_all()
    assert t.num_rows == D.N_IMU                              # the bad files never abort the dataset


def test_selection_by_channel_glob_time_window_and_tags(tree):
    d, runs, odin = tree
    ds = fastodin.dataset(d)
    assert ds.select(channels="odin/set/0x98a8").channels() == ["odin/set/0x98A8"]   # ODIN hex: any case
    assert ds.select(channels=["imu", "t*"]).channels() == ["imu", "temp"]
    lab = ds.select(tags={"site": "lab"})
    assert [f.path for f in lab.files] == [runs[1], runs[3]]
    w = ds.select(channels="imu", start=1050.0, end=2010.0)
    assert {r["path"] for r in w.rows()} == {runs[1], runs[2]}
    assert w.select(start=2000.0).window == (2000.0, 2010.0)
    t = w.to_arrow("imu").read_all()
    ref_t, _ = _read(runs, "imu", 1050.0, 2010.0)
    assert np.array_equal(t["time"].to_numpy(), ref_t)
    assert ds.select(tags={"k": 2}).to_arrow("imu").read_all().num_rows == D.N_IMU
    with pytest.raises(UsageError, match="matches 2 channels"):
        ds.to_arrow("odin/set/0x98A8*")
    with pytest.raises(UsageError, match="no column 'nope'"):
        ds.to_arrow("imu", fields=["nope"])


# ---- Arrow, DuckDB, polars: the same values ---------------------------------------------------------

def test_arrow_duckdb_polars_equal_archive_read(tree):
    import duckdb
    import polars as pl
    import pyarrow as pa
    d, runs, _ = tree
    ds = fastodin.dataset(d)
    ref_t, ref_v = _read(runs, "imu")
    tab = ds.to_arrow("imu").read_all()
    assert tab.column_names == ["time", "x", "acc[0]", "acc[1]", "acc[2]", "n"]
    assert np.array_equal(tab["time"].to_numpy(), ref_t)
    assert np.array_equal(tab["x"].to_numpy(), ref_v["x"])
    assert np.array_equal(tab["acc[2]"].to_numpy(), ref_v["acc"][:, 2])
    assert tab.schema.field("n").type == pa.uint16() and tab.schema.field("acc[0]").type == pa.float32()

    reader = ds.to_arrow("imu")                                   # noqa: F841 (DuckDB finds it by name)
    n, mean_x, max_acc1 = duckdb.sql('select count(*), avg(x), max("acc[1]") from reader').fetchall()[0]
    assert n == ref_t.shape[0] and math.isclose(mean_x, float(ref_v["x"].mean()), rel_tol=1e-12)
    assert max_acc1 == float(ref_v["acc"][:, 1].max())

    lf = ds.to_polars("imu")
    got = lf.select(pl.len(), pl.col("x").mean(), pl.col("acc[1]").max()).collect()
    assert got.row(0) == (n, pytest.approx(mean_x, rel=1e-12), max_acc1)
    per = lf.with_columns((pl.col("time") // 1000).cast(pl.Int64).alias("file")).group_by("file").agg(
        pl.col("x").mean()).sort("file").collect()
    for k, p in enumerate(runs):
        t, v = _read([p], "imu")
        assert per["x"][k] == pytest.approx(float(v["x"].mean()), rel=1e-12)


def test_plain_raw_and_variable_size_channels(tree):
    import polars as pl
    import pyarrow as pa
    d, runs, _ = tree
    ds = fastodin.dataset(d)
    t, v = _read(runs, "temp")
    temp = ds.to_arrow("temp").read_all()
    assert temp.column_names == ["time", "value"] and np.array_equal(temp["value"].to_numpy(), v)
    cam = ds.to_arrow("cam").read_all()
    assert cam.schema.field("payload").type == pa.binary()
    _, cv = _read(runs, "cam")
    assert cam["payload"].to_pylist() == [bytes(r) for r in cv]
    note = pl.from_arrow(ds.to_arrow("note").read_all())
    _, nv = _read(runs, "note")
    assert note["payload"].to_list() == list(nv) and len(set(map(len, nv))) == 5


def test_odin_sets_typed_as_odin_decode(tree):
    import polars as pl
    d, _, odin = tree
    ds = fastodin.dataset(d / "odin")
    for sid in (0x98A8, 0xB5A6):
        tab = ds.to_arrow(sid).read_all()                         # an ODIN set by its id
        times, cols = [], {}
        for p in odin:
            st = fastodin.odin.decode(p)[sid]
            times.append(st.time)
            for k, c in st.columns().items():
                cols.setdefault(k, []).append(c)
        assert np.array_equal(tab["time"].to_numpy(), np.concatenate(times))
        names = [n for n in tab.column_names if n != "time"]
        assert names == [k for k in cols if k not in ("ticks", "time")]
        for k in names:
            ref = np.concatenate(cols[k])
            got = tab[k].to_numpy(zero_copy_only=False) if ref.dtype.kind not in "VS" else np.array(
                tab[k].to_pylist(), dtype=object)
            if ref.dtype.kind in "VS":
                ref = np.array([bytes(x) if ref.dtype.kind == "V" else x.ljust(ref.dtype.itemsize, b"\0")
                                for x in ref.tolist()], dtype=object)
            assert np.array_equal(got, ref), k
    assert ds.to_polars("odin/set/0x9D05").select(pl.col("power.energy").sum()).collect().item() == pytest.approx(
        sum(float(fastodin.odin.decode(p)[0x9D05]["power.energy"].sum()) for p in odin))


def test_odin_sets_with_different_definitions_are_a_clear_error(tmp_path):
    a = D.write_custom(str(tmp_path / "a32.fastpack.zst"), "f32")
    b = D.write_custom(str(tmp_path / "b64.fastpack.zst"), "f64", start_ticks=10 ** 9)
    c = D.write_custom(str(tmp_path / "c32.fastpack.zst"), "f32", start_ticks=2 * 10 ** 9)
    ch = D.custom_channel()
    ds = fastodin.dataset(tmp_path)
    with pytest.raises(SchemaMismatch) as e:
        ds.to_arrow(ch)
    msg = str(e.value)
    assert "probe.value:<f4" in msg and "probe.value:<f8" in msg and "2 file(s), e.g. " + a in msg and b in msg
    assert sorted(len(v) for v in e.value.schemas.values()) == [1, 2]
    same = fastodin.dataset([a, c]).to_arrow(ch).read_all()       # one definition: one table
    assert same.num_rows == 2 * len(fastodin.odin.decode(a)[int(ch[-4:], 16)])
    chg = D.write_changing(str(tmp_path / "sub_changing.fastpack.zst"))
    with pytest.raises(SchemaMismatch, match="changes inside the file"):
        fastodin.dataset(chg).to_arrow(ch)
    with pytest.raises(SchemaMismatch):
        fastodin.dataset([a, b]).to_dask(ch) if _has("dask") else fastodin.dataset([a, b]).schema(ch)


def _has(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def test_layouts_that_differ_across_files_are_a_clear_error(tmp_path):
    for k, dt in enumerate(("<f8", "<f4")):
        with fastodin.Writer(tmp_path / f"{k}.fastpack.zst") as w:
            w.write_many([k * 10.0], "v", np.zeros(1, dt))
    with pytest.raises(SchemaMismatch, match=r"\[value:<f8\].*\[value:<f4\]"):
        fastodin.dataset(tmp_path).to_polars("v")


# ---- pushdown: frames not decompressed ------------------------------------------------------------------

def _frames_of(paths, channel, start=None, end=None):
    n = 0
    for p in paths:
        with fastodin.open(p) as ar:
            ids = ar.channel_ids(channel)
            for e in ar.frames:
                for cid in ids:
                    c = e.channels.get(cid)
                    if c and (start is None or c[3] >= start) and (end is None or c[2] < end):
                        n += 1
                        break
    return n


def test_projection_and_time_pushdown_skip_frames(tree):
    import polars as pl
    d, runs, _ = tree
    ds = fastodin.dataset(runs)
    all_frames = sum(len(fastodin.open(p).frames) for p in runs)
    imu_frames = _frames_of(runs, "imu")
    assert 0 < imu_frames < all_frames
    # a channel reads only its frames (cam and temp live in other frames)
    before = ds.frames_decompressed
    assert ds.to_arrow("imu", fields=["x"]).read_all().num_rows == 4 * D.N_IMU
    assert ds.frames_decompressed - before == imu_frames
    # an Arrow window reads only the frames the index says may hold it
    before = ds.frames_decompressed
    t = ds.to_arrow("imu", start=1010.0, end=1020.0).read_all()
    assert t.num_rows == 10_000 and ds.frames_decompressed - before == _frames_of(runs, "imu", 1010.0, 1020.0) == 1
    # polars: the filter's bounds on time are pushed down; the whole filter still applies
    lf = ds.to_polars("imu")
    before = ds.frames_decompressed
    q = lf.filter((pl.col("time") >= 2010.0) & (pl.col("time") <= 2030.0) & (pl.col("n") < 500))
    got = q.select(pl.len(), pl.col("x").sum()).collect()
    rt, rv = _read(runs, "imu", 2010.0, math.nextafter(2030.0, math.inf))
    keep = rv["n"] < 500
    assert got.row(0) == (int(keep.sum()), pytest.approx(float(rv["x"][keep].sum()), rel=1e-12))
    assert ds.frames_decompressed - before == _frames_of(runs, "imu", 2010.0, 2030.0001) < imu_frames / 4
    before = ds.frames_decompressed
    assert lf.filter(pl.col("time").is_between(3001.0, 3002.0)).collect().height == 1001
    assert ds.frames_decompressed - before == 1
    before = ds.frames_decompressed
    assert lf.head(3).collect()["time"].to_list() == [0.0, 0.001, 0.002]      # the row limit stops reading
    assert ds.frames_decompressed - before == 1
    # a filter on another column alone cannot prune: every imu frame, right answer
    before = ds.frames_decompressed
    assert lf.filter(pl.col("n") == 7).collect().height == 4 * D.N_IMU // 1000
    assert ds.frames_decompressed - before == imu_frames


def test_time_window_of_polars_filters():
    import polars as pl
    tw = fastodin.datasets.time_window
    c = pl.col("time")
    assert tw((c > 1.5) & (c < 3)) == (1.5, 3.0)
    assert tw((pl.lit(2.0) > c) & (c >= 1)) == (1.0, 2.0)
    assert tw(c <= 2.0) == (None, math.nextafter(2.0, math.inf))
    assert tw(c == 5) == (5.0, math.nextafter(5.0, math.inf))
    assert tw((c > 1) | (c < 0)) == (None, None)                   # an "or": no bound
    assert tw(c.cast(pl.Int64) > 3) == (None, None)
    assert tw(None) == (None, None)


def test_arrow_stream_is_bounded_and_lazy(tree):
    d, runs, _ = tree
    ds = fastodin.dataset(runs)
    reader = ds.to_arrow("imu", batch_bytes=1 << 20)
    assert ds.frames_decompressed == 0
    first = reader.read_next_batch()
    assert 0 < first.num_rows <= (1 << 20) // 40 + 1 and ds.frames_decompressed <= 3
    sizes = [b.num_rows for b in reader]
    assert sum(sizes) + first.num_rows == 4 * D.N_IMU and max(sizes) < D.N_IMU / 2


# ---- a file that changes ------------------------------------------------------------------------

def test_a_file_rewritten_after_the_catalog_is_an_error_not_a_wrong_answer(tmp_path):
    paths = D.write_runs(tmp_path, n_files=2, n_imu=20_000)
    ds = fastodin.dataset(paths)
    D.write_runs(tmp_path, n_files=1, n_imu=21_000, overwrite=True)            # run0 rewritten (other values, size)
    with pytest.raises(FileChangedError, match="run0.fastpack.zst: changed since it was catalogued") as e:
        ds.to_arrow("imu").read_all()
    assert e.value.path == paths[0]
    assert fastodin.dataset(paths).to_arrow("imu").read_all().num_rows == 41_000


def test_a_file_changed_while_read_fails_that_read(tmp_path):
    paths = D.write_runs(tmp_path, n_files=2, n_imu=60_000)
    ds = fastodin.dataset(paths)
    reader = ds.to_arrow("imu", batch_bytes=1 << 20)
    reader.read_next_batch()
    with open(paths[0], "r+b") as f:                          # changed in place under the reader
        f.seek(0, 2)
        f.write(b"\0" * 8)
    with pytest.raises(FileChangedError, match="changed while it was read"):
        for _ in reader:
            pass


# ---- without the extras -----------------------------------------------------------------------

def test_core_and_ls_work_without_the_extras_and_name_them(tree):
    d, runs, _ = tree
    code = f"""
import sys
for m in ("pyarrow", "polars", "dask", "pandas", "duckdb", "distributed"):
    sys.modules[m] = None
import fastodin
from fastodin.errors import MissingDependency
ds = fastodin.dataset({str(d)!r})
assert ds.rows() and ds.frames_decompressed == 0
for call, extra in ((lambda: ds.to_arrow("imu"), "arrow"), (lambda: ds.to_polars("imu"), "polars"),
                    (lambda: ds.to_dask("imu"), "dask"), (ds.catalog, "pandas")):
    try:
        call()
    except MissingDependency as e:
        assert e.extra == extra and f"pip install 'fastodin[{{extra}}]'" in str(e), e
    else:
        raise AssertionError(extra)
from fastodin.cli import main
sys.exit(main(["ls", {runs[0]!r}]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "imu" in r.stdout and "120000" in r.stdout


def test_the_readme_dataset_example_runs(tmp_path, monkeypatch):
    import re

    text = open(os.path.join(REPO, "README.md")).read().split("## Datasets", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    rec = tmp_path / "recordings"
    rec.mkdir()
    D.write_runs(rec, n_files=2, n_imu=5_000)
    D.write_odin(rec, n_files=2, tags={"site": "lab"})
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert ns["imu"].npartitions == 1 and list(ns["imu"].columns) == ["acc[0]", "acc[1]", "acc[2]"]
    assert set(ns["ds"].catalog().path) == {"recordings/run1.fastpack.zst", "recordings/odin0.fastpack.zst",
                                            "recordings/odin1.fastpack.zst"}


def test_a_dask_partition_read_whole_or_in_chunks_is_the_same_and_bounded_in_memory(tree):
    import tracemalloc

    from fastodin.datasets import read_pandas

    _d, runs, _ = tree
    part = fastodin.dataset(runs).parts("imu")[1]
    assert part.count == D.N_IMU and len(part.frames) > 3
    read_pandas(part, columns=["x"])                           # imports and caches out of the measure
    peaks = []
    frames = []
    for chunk in (part.nbytes, 1 << 20):                     # one Archive.read; a frame or so at a time
        tracemalloc.start()
        df = read_pandas(part, chunk_bytes=chunk)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        frames.append(df)
    pd_testing = pytest.importorskip("pandas").testing
    pd_testing.assert_frame_equal(frames[0], frames[1])
    t, v = _read([runs[1]], "imu")
    assert np.array_equal(frames[0].index.to_numpy(), t) and np.array_equal(frames[0]["acc[1]"].to_numpy(), v["acc"][:, 1])
    assert max(peaks) <= 2 * part.nbytes, (peaks, part.nbytes)
    w = read_pandas(part, columns=["n"], start=1010.0, end=1010.5, chunk_bytes=1 << 20)
    assert list(w.columns) == ["n"] and len(w) == 500


def test_odin_columns_are_the_same_from_raw_packets_or_archive_read_typed(tree):
    # partitions view the packets with the definition found once per file; Archive.read types them
    # itself the same way: Schema takes either
    from fastodin.datasets._odin import set_packet_dtype
    from fastodin.datasets._schema import odin_set_schema

    _d, _, odin = tree
    with fastodin.open(odin[0]) as ar:
        dt = set_packet_dtype(ar, "odin/set/0xB5A6")
        _t, raw = ar.read("odin/set/0xB5A6", dtype="u1")
        _t, typed = ar.read("odin/set/0xB5A6")
    s = odin_set_schema(dt)
    assert raw.dtype == np.uint8 and typed.dtype.names is not None
    a, b = s.columns_of(raw, where="raw"), s.columns_of(typed, where="typed")
    assert list(a) == list(b) == s.names and all(np.array_equal(a[k], b[k]) for k in a)
