"""Dataset channels on a real dask.distributed LocalCluster with 2 worker processes: counts, means and a
time-window selection equal reading the files one by one with Archive.read; partitions run on both
workers; known divisions; a file changed after planning fails its partition."""
from __future__ import annotations

import importlib.util
import logging

import dataset_files as D
import numpy as np
import pytest

import fastodin
from fastodin.errors import FileChangedError

# dask and distributed are imported by the tests, not at collection (a lighter pytest process)
pytestmark = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("dask", "distributed", "pyarrow")),
                                reason="needs dask[dataframe], distributed and pyarrow (the test extra)")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        with Client(cluster) as c:
            assert len(c.scheduler_info()["workers"]) == 2
            yield c


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dsk")
    runs = D.write_runs(d)
    (d / "odin").mkdir()
    return d, runs, D.write_odin(d / "odin")


def _per_file(paths, channel, start=None, end=None):
    out = []
    for p in paths:
        with fastodin.open(p) as ar:
            out.append(ar.read(channel, start, end))
    return out


def test_counts_and_means_equal_archive_read_and_use_both_workers(client, files):
    import dask.dataframe as dd
    from distributed import get_task_stream

    d, runs, _ = files
    ds = fastodin.dataset(d)
    imu = ds.to_dask("imu", partition_bytes=1 << 20)           # ~1 frame per partition: many partitions
    assert imu.npartitions == len(ds.parts("imu", partition_bytes=1 << 20)) >= 8
    assert imu.known_divisions and imu.index.name == "time"
    ref = _per_file(runs, "imu")
    with get_task_stream(client) as ts:
        count, mean_x, mean_acc1, nsum = dd.compute(imu["x"].count(), imu["x"].mean(), imu["acc[1]"].mean(),
                                                    imu["n"].sum())
    allv = np.concatenate([v for _, v in ref])
    assert count == allv.shape[0] == 4 * D.N_IMU
    assert mean_x == pytest.approx(float(allv["x"].mean()), rel=1e-12)
    assert mean_acc1 == pytest.approx(float(allv["acc"][:, 1].astype(np.float64).mean()), rel=1e-6)
    assert nsum == int(allv["n"].astype(np.int64).sum())
    workers = {t["worker"] for t in ts.data if "fastodin-read" in str(t["key"])}
    assert len(workers) == 2, workers
    # per-file means through a groupby on the file each time belongs to
    per = imu["x"].groupby((imu.index // 1000).astype("int64")).mean().compute().sort_index()
    assert per.tolist() == pytest.approx([float(v["x"].mean()) for _, v in ref], rel=1e-12)
    temp = ds.to_dask("temp")
    tref = np.concatenate([v for _, v in _per_file(runs, "temp")])
    assert temp["value"].mean().compute() == pytest.approx(float(tref.mean()), rel=1e-12)


def test_time_window_selection_equals_archive_read(client, files):
    d, runs, _ = files
    ds = fastodin.dataset(d)
    w = ds.to_dask("imu", fields=["x", "n"], start=1050.0, end=2010.0).compute()
    ref = _per_file(runs, "imu", 1050.0, 2010.0)
    assert list(w.columns) == ["x", "n"]
    assert np.array_equal(w.index.to_numpy(), np.concatenate([t for t, _ in ref]))
    assert np.array_equal(w["x"].to_numpy(), np.concatenate([v["x"] for _, v in ref]))
    # with known divisions, .loc on time touches only the partitions that hold it
    imu = ds.to_dask("imu", partition_bytes=1 << 20)
    sel = imu.loc[3010.0:3011.0]
    assert sel.npartitions == 1
    got = sel.compute()
    t, v = _per_file([runs[3]], "imu", 3010.0, np.nextafter(3011.0, np.inf))[0]
    assert np.array_equal(got.index.to_numpy(), t) and np.array_equal(got["acc[0]"].to_numpy(), v["acc"][:, 0])


def test_odin_set_on_the_cluster_equals_odin_decode(client, files):
    _, _, odin = files
    ds = fastodin.dataset(odin)
    df = ds.to_dask("odin/set/0xB5A6").compute()
    tables = [fastodin.odin.decode(p)[0xB5A6] for p in odin]
    assert np.array_equal(df.index.to_numpy(), np.concatenate([t.time for t in tables]))
    for col in ("imu.accel.x", "imu.sample.code", "imu.time_us", "sequence"):
        assert np.array_equal(df[col].to_numpy(), np.concatenate([t[col] for t in tables])), col


def test_overlapping_files_have_unknown_divisions(client, tmp_path):
    for k in range(2):
        with fastodin.Writer(tmp_path / f"o{k}.fastpack.zst") as w:
            w.write_many(np.arange(100) * 1.0 + k * 50, "v", np.arange(100.0))
    ddf = fastodin.dataset(tmp_path).to_dask("v")
    assert not ddf.known_divisions and ddf.npartitions == 2
    assert ddf["value"].sum().compute() == 2 * sum(range(100))


def test_a_file_changed_after_planning_fails_its_partition(client, tmp_path):
    paths = D.write_runs(tmp_path, n_files=2, n_imu=20_000)
    ddf = fastodin.dataset(paths).to_dask("imu")
    assert ddf.npartitions == 2
    D.write_runs(tmp_path, n_files=1, n_imu=20_001, overwrite=True)           # run0 rewritten under the plan
    with pytest.raises(FileChangedError, match="run0.fastpack.zst: changed since it was catalogued"):
        ddf["x"].sum().compute()
    ok = ddf.partitions[1].compute()                           # the other file's partition still reads
    assert len(ok) == 20_000
