"""The viewer on files that grow while it serves them: an archive a Writer (in a thread, short
flush interval) is recording, and a raw .fastpack appended to byte by byte (its last chunk changes,
a record is cut then completed).  After every step the API answers exactly what a brute force over
the records written so far gives.  Waits are bounded (a hang guard, not a speed check: the
latency is the bench's)."""
from __future__ import annotations

import threading
import time

import numpy as np
from view_helpers import check_envelope, get_json, series, serving

import fastodin
from fastodin.archive.layout import Layout
from fastodin.metadata import encode_meta

DT = np.dtype([("a", "<f8"), ("b", "<i4")])


def _count(srv, name):
    _s, j = get_json(srv, "/api/channels")
    for c in j["channels"]:
        if c["name"] == name:
            return c["count"], j["generation"]
    return 0, j["generation"]


def _wait_count(srv, name, want, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got, _g = _count(srv, name)
        if got >= want:
            return got
        time.sleep(0.02)
    raise AssertionError(f"{name}: {got} records served after {timeout} s, {want} written")


def test_archive_being_recorded(tmp_path):
    path = str(tmp_path / "live.fastpack.zst")
    rng = np.random.default_rng(3)
    w = fastodin.Writer(path, flush_interval=0.1, frame_size=1 << 14)
    t_all, v_all = [], []
    k0 = 0

    def batch(n):
        nonlocal k0
        t = (k0 + np.arange(n)) * 1e-3
        v = np.zeros(n, DT)
        v["a"] = rng.standard_normal(n)
        v["a"][rng.random(n) < 0.05] = np.nan
        v["b"] = rng.integers(-9, 9, n)
        k0 += n
        w.write_many(t, "s", v)
        t_all.append(t)
        v_all.append(v)

    batch(3000)
    w.flush()
    lat = []
    try:
        with serving([path], poll_interval=0.1) as srv:
            _wait_count(srv, "s", 3000)
            for n in [1, 63, 64, 65, 2500, 7, 9000, 1]:
                th = threading.Thread(target=batch, args=(n,))   # a writer thread
                th.start()
                th.join()
                t_w = time.monotonic()
                # the writer's timer flushes within flush_interval; the viewer polls every 0.1 s
                _wait_count(srv, "s", k0)
                lat.append(time.monotonic() - t_w)
                t = np.concatenate(t_all)
                v = np.concatenate(v_all)
                for field in ("a", "b"):
                    for start, end, pts in ((None, None, 1000), (None, None, 7), (t[-n], None, 50),
                                            (float(t[len(t) // 3]), float(t[-1]), 2000)):
                        j = series(srv, "s", field, start, end, pts)
                        check_envelope(j, t, v[field], start, end, pts)
            w.close()        # the seek table and consolidated index arrive: same frames, same answers
            time.sleep(0.3)
            _wait_count(srv, "s", k0)
            t = np.concatenate(t_all)
            j = series(srv, "s", "a", None, None, 333)
            check_envelope(j, t, np.concatenate(v_all)["a"], None, None, 333)
    finally:
        w.close()
    print(f"live latency (written -> served): max {max(lat):.3f} s, median {sorted(lat)[len(lat) // 2]:.3f} s")


def test_raw_fastpack_appended(tmp_path):
    """A raw file's last virtual chunk (RAW_CHUNK bytes) grows: the summary forgets that chunk and
    reads it again, keeping what the chunks before it gave."""
    from fastodin.archive.reader import RAW_CHUNK

    path = str(tmp_path / "grow.fastpack")
    lay = Layout.from_dtype(np.dtype("<f8"))
    rng = np.random.default_rng(4)
    n = RAW_CHUNK // 24 + 30000               # two virtual chunks
    t = np.arange(n) * 0.01
    v = rng.standard_normal(n)
    v[::97] = np.nan
    recs = [(0.0, 0, encode_meta({"fastodin": "channel", "name": "g", "layout": lay.to_json()}))]
    recs += [(float(a), "g", np.float64(b).tobytes()) for a, b in zip(t, v)]
    data = fastodin.encode(recs, namespace=True)
    rec_size = 24                      # 16-byte header + 8-byte payload
    head = len(data) - n * rec_size
    first = RAW_CHUNK // rec_size
    cuts = [head + 100 * rec_size, head + 100 * rec_size + 13, head + (first + 5) * rec_size + 5,
            head + (first + 6) * rec_size, head + (first + 77) * rec_size, head + (first + 4200) * rec_size,
            len(data) - 1, len(data)]
    with open(path, "wb") as f:
        f.write(data[:cuts[0]])
    with serving([path], poll_interval=0.05) as srv:
        done = 0
        for c in cuts:
            with open(path, "r+b") as f:
                f.seek(0, 2)
                f.write(data[f.tell():c])
            whole = (c - head) // rec_size
            got = _wait_count(srv, "g", whole)
            assert got == whole
            done = whole
            for start, end, pts in ((None, None, 5), (None, None, 2000), (t[done // 2], None, 17),
                                    (t[max(0, done - 300)], None, 2000)):
                j = series(srv, "g", "value", start, end, pts)
                check_envelope(j, t[:done], v[:done], start, end, pts)
        assert done == n


def test_replaced_file_is_summarised_anew(tmp_path):
    path = str(tmp_path / "r.fastpack.zst")
    with fastodin.Writer(path) as w:
        w.write_many(np.arange(500) * 0.1, "p", np.arange(500.0))
    with serving([path], poll_interval=0.05) as srv:
        assert series(srv, "p", "value", None, None, 3)["max"][-1] == 499.0
        tmp = str(tmp_path / "r2.fastpack.zst")
        with fastodin.Writer(tmp) as w:
            w.write_many(np.arange(200) * 0.1, "p", -np.arange(200.0))
            w.write_many(np.arange(10) * 1.0, "q", np.ones(10))
        import os

        os.replace(tmp, path)
        _wait_count(srv, "q", 10)
        j = series(srv, "p", "value", None, None, 1000)
        check_envelope(j, np.arange(200) * 0.1, -np.arange(200.0), None, None, 1000)
        assert series(srv, "q", "value")["n"] == [1] * 10
