"""The viewer's data API (spec/view-api.md) through a real server on loopback: envelopes compared
with a brute force over the decoded records on random windows (NaN, ±inf, ties, single-record and
empty windows, every field type, a channel out of time order, ODIN sets as decode types them,
several files), and every bad request refused with a one-line JSON error."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from view_helpers import check_envelope, get_json, request, series, serving

import fastodin
from fastodin.archive.layout import Layout
from fastodin.metadata import encode_meta
from fastodin.view import summary as sm
from fastodin.view.dataset import MAX_POINTS, ViewSet

DT = np.dtype([("x", "<f8"), ("y", "<f4"), ("k", "<i2"), ("b", "?"), ("u", "<u8")])
N = 40_000


def _values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.zeros(n, DT)
    a["x"] = rng.standard_normal(n)
    a["x"][rng.integers(0, n, n // 50)] = np.nan
    a["x"][rng.integers(0, n, n // 500)] = np.inf
    a["x"][rng.integers(0, n, n // 500)] = -np.inf
    a["x"][5000:5200] = np.nan               # whole blocks of NaN
    a["y"] = rng.standard_normal(n).astype(np.float32)
    a["k"] = rng.integers(-30000, 30000, n)
    a["b"] = rng.random(n) < 0.3
    a["u"] = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)   # > 2**53: exact ints
    return a


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("view")
    main = str(d / "main.fastpack.zst")
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, N // 4, N)).astype(np.float64) * 1e-3     # ties on purpose
    a = _values(N, 2)
    with fastodin.Writer(main, frame_size=1 << 14) as w:
        w.set_tag("site", "lab")
        w.write_many(t, "sig", a)
        w.write_many([7.25], "one", np.array([3.5]))
        w.write(0.5, "rawch", b"opaque")
    # a raw .fastpack whose channel is not in time order (and has a NaN time): read whole per window
    raw = str(d / "shuffled.fastpack")
    lay = Layout.from_dtype(np.dtype("<f8"))
    times = rng.permutation(2000).astype(np.float64) * 0.01
    times[17] = np.nan
    vals = rng.standard_normal(2000)
    recs = [(0.0, 0, encode_meta({"fastodin": "channel", "name": "u", "layout": lay.to_json()}))]
    recs += [(float(tt), "u", np.float64(v).tobytes()) for tt, v in zip(times, vals)]
    with open(raw, "wb") as f:
        f.write(fastodin.encode(recs, namespace=True))
    return {"main": main, "raw": raw, "t": t, "a": a, "raw_t": times, "raw_v": vals}


@pytest.fixture(scope="module")
def srv(files):
    with serving([files["main"]]) as s:
        yield s


@pytest.fixture(scope="module")
def raw_srv(files):
    with serving([files["raw"]]) as s:
        yield s


def _window(data, draw):
    span = float(data[-1]) if data.shape[0] else 1.0
    kind = draw(st.sampled_from(["whole", "start", "end", "both", "tiny", "empty", "exact"]))
    x = st.floats(-0.1 * span - 1, span * 1.1 + 1, allow_nan=False)
    if kind == "whole":
        return None, None
    if kind == "start":
        return draw(x), None
    if kind == "end":
        return None, draw(x)
    if kind == "tiny":
        a = draw(x)
        return a, a + draw(st.floats(1e-9, 5e-3))
    if kind == "empty":
        return span * 2 + 5, span * 2 + 6
    if kind == "exact":       # bounds on record times (ties included)
        i, j = sorted(draw(st.lists(st.integers(0, data.shape[0] - 1), min_size=2, max_size=2)))
        a, b = float(data[i]), float(data[j])
        return (a, b) if b > a else (a, None)
    a, b = sorted([draw(x), draw(x)])
    return (a, b) if b > a else (a, None)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_series_equals_brute_force(srv, files, data):
    t, a = files["t"], files["a"]
    field = data.draw(st.sampled_from(["x", "y", "k", "b", "u"]))
    start, end = _window(t, data.draw)
    points = data.draw(st.sampled_from([1, 2, 3, 7, 100, 1000, 2000, 5000, MAX_POINTS]))
    j = series(srv, "sig", field, start, end, points)
    check_envelope(j, t, a[field], start, end, points)


def test_whole_span_defaults_and_keys(srv, files):
    status, j = get_json(srv, "/api/series", channel="sig", field="x")
    assert status == 200
    assert set(j) == {"channel", "field", "start", "end", "points", "t0", "t1", "min", "max", "n", "nan", "generation"}
    assert j["points"] == 1000 and len(j["n"]) <= 1000 and sum(j["n"]) == N
    assert "inf" in j["max"] and "-inf" in j["min"]          # ±inf are strings
    check_envelope(j, files["t"], files["a"]["x"], None, None, 1000)


def test_all_nan_runs_are_null(srv, files):
    t = files["t"]
    a0, a1 = float(t[5010]), float(t[5150])
    j = series(srv, "sig", "x", a0, a1, 5)
    assert any(m is None for m in j["min"]) or sum(j["n"]) <= 5
    check_envelope(j, t, files["a"]["x"], a0, a1, 5)
    # every record of a window of NaN only: min/max null, nan = n
    k = np.flatnonzero((t >= a0) & (t < a1))
    j = series(srv, "sig", "x", a0, a1, len(k) + 1)
    assert all(m is None for m in j["min"]) == bool(np.isnan(files["a"]["x"][k]).all())


def test_single_record_and_empty_windows(srv):
    j = series(srv, "one", "value")
    assert (j["t0"], j["t1"], j["min"], j["max"], j["n"], j["nan"]) == ([7.25], [7.25], [3.5], [3.5], [1], [0])
    j = series(srv, "one", "value", 7.25, 7.26)
    assert j["n"] == [1]
    j = series(srv, "one", "value", 7.0, 7.25)       # end is exclusive
    assert j["n"] == [] and j["t0"] == [] and j["min"] == []
    j = series(srv, "one", "value", 100.0, 200.0)
    assert j["n"] == []


def test_channels_listing(srv, files):
    status, j = get_json(srv, "/api/channels")
    assert status == 200
    chans = {c["name"]: c for c in j["channels"]}
    assert j["tags"] == {"site": "lab"}
    sig = chans["sig"]
    assert [(f["name"], f["dtype"]) for f in sig["fields"]] == [("x", "<f8"), ("y", "<f4"), ("k", "<i2"),
                                                                 ("b", "|b1"), ("u", "<u8")]
    assert sig["count"] == N and sig["start"] == files["t"][0] and sig["end"] == files["t"][-1]
    assert sig["kind"] == "layout" and sig["ordered"] is True
    assert chans["rawch"]["fields"] == [] and chans["rawch"]["kind"] == "raw"
    assert chans["one"]["fields"] == [{"name": "value", "dtype": "<f8"}]
    for c in j["channels"]:
        assert set(c) == {"name", "fields", "count", "start", "end", "kind", "stream", "role", "ordered", "file"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_channel_out_of_time_order(raw_srv, files, data):
    t, v = files["raw_t"], files["raw_v"]
    start, end = _window(np.sort(t[~np.isnan(t)]), data.draw)
    points = data.draw(st.sampled_from([1, 3, 50, 1000, 3000]))
    j = series(raw_srv, "u", "value", start, end, points)
    check_envelope(j, t, v, start, end, points)


def test_out_of_order_channel_is_flagged(raw_srv):
    _s, j = get_json(raw_srv, "/api/channels")
    (u,) = [c for c in j["channels"] if c["name"] == "u"]
    assert u["ordered"] is False and u["count"] == 2000


def test_odin_fields_are_decodes_columns(tmp_path):
    from fastodin.cli.demo import odin_demo
    from fastodin.odin import decode

    path = str(tmp_path / "demo.fastpack.zst")
    assert odin_demo(path, seconds=2.0, out=open(os.devnull, "w")) == 0
    res = decode(path)
    with serving([path]) as s, fastodin.open(path) as ar:
        _st, j = get_json(s, "/api/channels")
        sets = [c for c in j["channels"] if c["kind"] == "odin-set"]
        assert sets
        for c in sets:
            sid = int(c["name"].rsplit("0x", 1)[1], 16)
            cols = res[sid].columns(expand=True)
            names = [f["name"] for f in c["fields"]]
            assert "sequence" in names and not {"timestamp", "ticks", "time"} & set(names)
            assert set(names) <= set(cols)
            times, typed = ar.read(c["name"])            # Archive.read's typed ODIN columns
            from fastodin.odin.schema import flat_columns

            read_cols = flat_columns(typed)
            assert set(names) <= set(read_cols)
            for f in names[:6]:
                col = cols[f]
                assert np.array_equal(read_cols[f], col, equal_nan=col.dtype.kind == "f")
                assert c["fields"][names.index(f)]["dtype"] == col.dtype.str
                for pts in (10, 100000 // 10):
                    jj = series(s, c["name"], f, None, None, min(pts, MAX_POINTS))
                    check_envelope(jj, times, col, None, None, min(pts, MAX_POINTS))
        ev = get_json(s, "/api/events")[1]
        total = sum(len(e) for e in res.events.values())
        assert ev["count"] == total and not ev["truncated"]
        assert all(set(e) == {"t", "channel", "text"} for e in ev["events"])
        assert {e["channel"] for e in ev["events"]} == {f"odin/event/{k}" for k in res.events}
        some = ev["events"][0]
        k = int(some["channel"].rsplit("/", 1)[1])
        assert some["t"] in [float(x) for x in ar.read(some["channel"])[0]]
        assert some["text"] in [p.rstrip(b"\0").decode() for p in res.events[k].payloads]
        few = get_json(s, "/api/events", limit=3)[1]
        assert len(few["events"]) == 3 and few["truncated"] is True and few["count"] == total
        t0 = ev["events"][2]["t"]
        part = get_json(s, "/api/events", start=t0)[1]
        assert all(e["t"] >= t0 for e in part["events"]) and part["count"] == total - 2


def test_several_files_prefix_names(files, tmp_path):
    other = str(tmp_path / "main.fastpack.zst")          # the same stem as the first file
    with fastodin.Writer(other) as w:
        w.write_many(np.arange(10) * 1.0, "sig", np.arange(10.0))
    with serving([files["main"], files["raw"], other]) as s:
        _st, j = get_json(s, "/api/channels")
        names = {c["name"] for c in j["channels"]}
        assert {"main:sig", "shuffled:u", "main~2:sig"} <= names
        assert all(":" in n for n in names)
        assert j["tags"] == {"main:site": "lab"}
        assert [f["name"] for f in j["files"]] == ["main", "shuffled", "main~2"]
        jj = series(s, "main~2:sig", "value")
        assert jj["max"] == list(np.arange(10.0))
        jj = series(s, "main:sig", "x", None, None, 100)
        check_envelope(jj, files["t"], files["a"]["x"], None, None, 100)
        st_, e = get_json(s, "/api/series", channel="sig", field="x")
        assert st_ == 400 and "FILE:CHANNEL" in e["error"]
        _st, info = get_json(s, "/api/info")
        assert [f["name"] for f in info["files"]] == ["main", "shuffled", "main~2"]


def _error(s, path):
    status, headers, body = request(s, path)
    assert body.endswith(b"\n") and body.count(b"\n") == 1, body       # one line of JSON
    j = json.loads(body)
    assert set(j) == {"error", "status"} and j["status"] == status
    assert headers["content-type"].startswith("application/json")
    return status, j["error"]


@pytest.mark.parametrize("query,needle", [
    ("channel=nope&field=x", "unknown channel"),
    ("channel=sig&field=nope", "no field"),
    ("channel=rawch&field=x", "raw channel"),
    ("field=x", "channel is required"),
    ("channel=sig", "field is required"),
    ("channel=sig&field=x&start=abc", "not a number"),
    ("channel=sig&field=x&end=1e999", "finite"),
    ("channel=sig&field=x&start=nan", "finite"),
    ("channel=sig&field=x&start=inf", "finite"),
    ("channel=sig&field=x&start=2&end=1", "greater than start"),
    ("channel=sig&field=x&start=1&end=1", "greater than start"),
    ("channel=sig&field=x&points=0", "between 1 and"),
    ("channel=sig&field=x&points=20001", "between 1 and"),
    ("channel=sig&field=x&points=1.5", "not an integer"),
    ("channel=sig&field=x&points=", "not an integer"),
    ("channel=sig&field=x&channel=sig", "given 2 times"),
    ("channel=sig&field=x&strat=1", "unknown parameter"),
    ("channel=..%2F..%2Fetc%2Fpasswd&field=x", "unknown channel"),
])
def test_bad_series_requests(srv, query, needle):
    status, msg = _error(srv, "/api/series?" + query)
    assert status == 400 and needle in msg, msg


def test_bad_event_and_other_requests(srv):
    assert _error(srv, "/api/events?limit=0")[0] == 400
    assert _error(srv, "/api/events?start=5&end=4")[0] == 400
    assert _error(srv, "/api/channels?x=1")[0] == 400
    assert _error(srv, "/api/nothing")[0] == 404
    status, _h, body = request(srv, "/api/channels", method="POST")
    assert status == 405 and b"read-only" in body


@pytest.mark.parametrize("path", [
    "/static/../fastodin/__init__.py", "/static/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd",
    "/static/view.js/../../../pyproject.toml", "//etc/passwd", "/static//view.js", "/static/", "/static",
    "/fastodin/view/static/view.js", "/static/view.js%00.txt", "/api/../static/view.js", "/index.html/..",
    "/static/VIEW.JS", "/" + "a" * 3000,
])
def test_path_traversal_refused(srv, path):
    status, _h, body = request(srv, path)
    assert status == 404, (path, status)
    assert json.loads(body)["status"] == 404            # our one-line error, never a file's content
    assert b"root:x" not in body and b"[project]" not in body and b"import" not in body


def test_static_files_and_page(srv):
    for path in ("/", "/index.html", "/static/view.js", "/static/uPlot.iife.min.js", "/static/uPlot.min.css",
                 "/static/view.css", "/static/uPlot-LICENSE.txt", "/favicon.ico", "/?channel=sig&field=x"):
        status, h, body = request(srv, path)
        assert status == 200 and body, path
        assert h["x-content-type-options"] == "nosniff"
    status, h, body = request(srv, "/")
    assert "script-src 'self'" in h["content-security-policy"]
    assert b"/static/uPlot.iife.min.js" in body and b"http" not in body.replace(b'http-equiv', b'')   # no CDN
    assert b"MIT License" in request(srv, "/static/uPlot-LICENSE.txt")[2]
    status, h, body = request(srv, "/static/view.js", method="HEAD")
    assert status == 200 and body == b"" and int(h["content-length"]) > 1000


@pytest.mark.parametrize("host,ok", [
    (None, True), ("127.0.0.1:{p}", True), ("localhost:{p}", True), ("LOCALHOST:{p}", True), ("[::1]:{p}", True),
    ("evil.example:{p}", False), ("evil.example", False), ("127.0.0.1.evil.example:{p}", False),
    ("127.0.0.1:{q}", False), ("localhost", False), ("", False), ("127.0.0.1:{p}:1", False),
    ("localhost:{p}x", False), ("[::1", False), ("10.0.0.1:{p}", False),
])
def test_host_header_checked(srv, host, ok):
    h = None if host is None else host.format(p=srv.port, q=srv.port + 1)
    for path in ("/api/channels", "/", "/static/view.js"):
        status, _hdr, body = request(srv, path, host=h)
        if ok:
            assert status == 200, (h, path)
        else:
            assert status == 403, (h, path, status)
            assert b"DNS rebinding" in body


def test_info_and_status(srv):
    _s, j = get_json(srv, "/api/info")
    (f,) = j["files"]
    assert f["name"] == "main" and f["tags"] == {"site": "lab"} and f["channels"]["sig"]["count"] == N
    assert f["viewer"]["summary"] == "built"
    _s, j = get_json(srv, "/api/status")
    assert j["ready"] is True and j["generation"] >= 1 and j["files"][0]["ready"] is True
    assert j["progress"][0] == j["progress"][1] > 0


def test_summary_cache_reused_and_invalidated(files, tmp_path):
    cache = str(tmp_path / "cache")
    src = str(tmp_path / "c.fastpack.zst")
    with fastodin.Writer(src) as w:
        w.write_many(np.arange(5000) * 0.1, "p", np.arange(5000.0))
    vs = ViewSet([src], cache_dir=cache)
    vs.build()
    assert not vs.files[0].from_cache
    cf = vs.files[0].cache_file
    assert os.path.dirname(cf) == cache and os.path.exists(cf)
    assert not [n for n in os.listdir(cache) if n.startswith(".summary-")]      # renamed when complete
    vs.close()
    vs = ViewSet([src], cache_dir=cache)
    vs.build()
    assert vs.files[0].from_cache
    e = vs.series("p", "value", None, None, 7)
    assert e["max"][-1] == 4999.0 and int(e["n"].sum()) == 5000
    vs.close()
    # the file changes: the cache is not used
    with fastodin.Writer(src, overwrite=True) as w:
        w.write_many(np.arange(5000) * 0.1, "p", -np.arange(5000.0))
    vs = ViewSet([src], cache_dir=cache)
    vs.build()
    assert not vs.files[0].from_cache
    assert vs.series("p", "value", None, None, 7)["min"][-1] == -4999.0
    vs.close()
    # a damaged cache file is ignored (and rewritten)
    for cut in (0, 5, 20, 200, os.path.getsize(cf) - 3):
        with open(cf, "r+b") as f:
            f.truncate(cut)
        vs = ViewSet([src], cache_dir=cache)
        vs.build()
        assert not vs.files[0].from_cache
        assert vs.series("p", "value", None, None, 7)["min"][-1] == -4999.0
        vs.close()
    # the default cache directory honours XDG_CACHE_HOME
    assert sm.cache_path(src).startswith(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~"))


def test_cache_file_layout(tmp_path):
    """The cache file is as spec/view-api.md says: magic, version, header length, JSON, pad, arrays."""
    import struct

    src = str(tmp_path / "l.fastpack.zst")
    with fastodin.Writer(src) as w:
        w.write_many(np.arange(1000) * 0.1, "p", np.arange(1000.0))
    vs = ViewSet([src], cache_dir=str(tmp_path / "c"))
    vs.build()
    raw = open(vs.files[0].cache_file, "rb").read()
    vs.close()
    magic, version, hl = struct.unpack_from("<8sII", raw)
    assert magic == b"FOVSUM\x00\x01" and version == 1
    head = json.loads(raw[16:16 + hl])
    assert head["format"] == "fastodin-view-summary" and head["block"] == 64 and head["fanout"] == 16
    assert set(head["file"]) == {"size", "mtime_ns", "inode", "fingerprint"}
    base = 16 + hl + (-(16 + hl) & 7)
    arrays = {(a["channel"], a["array"]): a for a in head["arrays"]}
    assert set(arrays) == {("p", "t_first"), ("p", "t_last"), ("p", "min:value"), ("p", "max:value"), ("p", "nan:value")}
    a = arrays[("p", "max:value")]
    got = np.frombuffer(raw, a["dtype"], a["count"], base + a["offset"])
    assert a["count"] == 1000 // 64 and got.tolist() == [64.0 * k + 63 for k in range(15)]
    assert all(a["offset"] % 8 == 0 for a in head["arrays"])
    (c,) = head["channels"]
    assert c == {"name": "p", "n": 1000, "ordered": True, "blocks": 15,
                 "fields": [{"name": "value", "dtype": "<f8", "stat": "<f8"}]}


def test_damaged_frame_is_left_out(tmp_path):
    src = str(tmp_path / "d.fastpack.zst")
    with fastodin.Writer(src, frame_size=4096) as w:
        w.write_many(np.arange(3000) * 0.01, "p", np.arange(3000.0))
    with fastodin.open(src) as ar:
        e = ar.frames[3]
        bad_t = ar.read("p", e.t_min, math.nextafter(e.t_max, math.inf))[0]
        t_all, v_all = ar.read("p")
    with open(src, "r+b") as f:
        f.seek(e.data_offset + e.compressed_size // 2)
        f.write(b"\xff" * 16)
    with serving([src]) as s:
        j = series(s, "p", "value", None, None, 5000)
        keep = ~np.isin(t_all, bad_t)
        check_envelope(j, t_all[keep], v_all[keep], None, None, 5000)
        j = series(s, "p", "value", None, None, 10)
        assert sum(j["n"]) == int(keep.sum())
        info = get_json(s, "/api/info")[1]["files"][0]
        assert any("left out" in n for n in info["viewer"]["notes"])


def test_views_of_an_archive_without_fields(tmp_path):
    src = str(tmp_path / "r.fastpack.zst")
    with fastodin.Writer(src) as w:
        w.write(0.0, "blob", b"abc")
    with serving([src]) as s:
        _st, j = get_json(s, "/api/channels")
        assert [c["fields"] for c in j["channels"]] == [[]]
        assert _error(s, "/api/series?channel=blob&field=value")[0] == 400


def test_infinite_times_in_order(tmp_path):
    """Records at -inf/+inf are in the unbounded windows only; their times are "inf" strings."""
    lay = Layout.from_dtype(np.dtype("<f8"))
    times = [-np.inf, 0.0, 0.5, 1.0, 1.0, 2.0, np.inf, np.inf]
    vals = [1.0, np.nan, -np.inf, 3.0, 4.0, np.inf, -2.0, 5.0]
    recs = [(0.0, 0, encode_meta({"fastodin": "channel", "name": "e", "layout": lay.to_json()}))]
    recs += [(t, "e", np.float64(v).tobytes()) for t, v in zip(times, vals)]
    raw = str(tmp_path / "inf.fastpack")
    with open(raw, "wb") as f:
        f.write(fastodin.encode(recs, namespace=True))
    t, v = np.array(times), np.array(vals)
    with serving([raw]) as s:
        assert get_json(s, "/api/channels")[1]["channels"][0]["ordered"] is True
        j = series(s, "e", "value")
        assert j["t0"][0] == "-inf" and j["t1"][-1] == "inf" and j["min"][2] == "-inf" and j["max"][5] == "inf"
        for start, end, pts in ((None, None, 8), (None, None, 3), (None, None, 1), (0.0, 2.0, 2), (0.5, None, 2),
                                (None, 1.0, 8), (1.0, 1.5, 8)):
            check_envelope(series(s, "e", "value", start, end, pts), t, v, start, end, pts)
