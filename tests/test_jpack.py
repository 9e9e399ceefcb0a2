"""fastodin.jpack: the cut rule, round trips, the tree on disk, the options object, the CLI."""
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastodin
import fastodin.cli
from fastodin.errors import UsageError
from fastodin.jpack import Cutter, read_file, write_tree
from fastodin.jpack._format import header, parse_header

ZERO = "0" * 32


def perl_cut(sizes, message_limit, byte_limit):
    """Data::FastPack::JPacker's loop, message by message, as it is written: the indexes that open a file."""
    starts, count, nbytes, first = [], 0, 0, True
    for k, size in enumerate(sizes):
        if (not first and (not byte_limit or nbytes + size < byte_limit)
                and (not message_limit or count <= message_limit)):
            count += 1
            nbytes += size
        else:
            starts.append(k)
            count, nbytes, first = 1, size, False
    return starts


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40).map(lambda n: 16 + 8 * n), max_size=300), st.integers(0, 12),
       st.integers(0, 700), st.lists(st.integers(1, 50), max_size=10))
def test_cutter_is_perls_loop(sizes, message_limit, byte_limit, batches):
    """The vectorised cutter (one searchsorted per file) equals the reference's per-message loop,
    whatever batches (frames) the records arrive in."""
    c = Cutter(message_limit, byte_limit)
    got, pos = [], 0
    cuts = sorted({min(b, len(sizes)) for b in np.cumsum(batches).tolist()} | {len(sizes)})
    for end in cuts:
        got += [pos + k for k in c.split(np.array(sizes[pos:end], np.int64))]
        pos = end
    assert got == perl_cut(sizes, message_limit, byte_limit)


def _records(ar, order="file"):
    return [(struct.pack("<d", r.time), r.name if r.id else 0, bytes(r.payload)) for r in ar.records(order=order)]


times = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64), st.just(0.0), st.just(-0.0),
                  st.floats(-1e3, 1e3))
recs = st.lists(st.tuples(times, st.sampled_from(["a", "b", "imu/x", "z" * 40]), st.binary(max_size=300)),
                max_size=120)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs, st.integers(0, 9), st.integers(0, 2000), st.booleans())
def test_round_trip_archive_jpack_archive(tmp_path_factory, records, message_limit, byte_limit, compress):
    """archive -> JPack (none / deflate, any limits) -> archive keeps every record, bit for bit."""
    d = tmp_path_factory.mktemp("rt")
    src = d / "src.fastpack.zst"
    with fastodin.Writer(src, frame_size=1024, flush_interval=None) as w:
        w.set_tag("k", "v")
        for t, name, payload in records:
            w.write(t, name, payload)
    rep = write_tree(src, d / "web", message_limit=message_limit, byte_limit=byte_limit, compress=compress)
    with fastodin.open(d / "web") as j, fastodin.open(src) as a:
        assert not j.damage and j.tags == {"k": "v"}
        assert _records(j) == _records(a)
        assert sum(os.path.getsize(f) for f in rep.files) == rep.bytes_written
    out = d / "back.fastpack.zst"
    assert fastodin.cli.main(["convert", str(d / "web"), str(out)]) == 0
    with fastodin.open(out) as b, fastodin.open(src) as a:
        # The writer keeps each frame in time order (spec/archive.md), and the converted archive cuts
        # its frames elsewhere: with out-of-order writes only the time order is the same, record for
        # record (ties keep their order).
        assert _records(b, "time") == _records(a, "time")


def test_deflate_chunks_are_raw_deflate(tmp_path):
    import zlib

    src = tmp_path / "s.fastpack"
    src.write_bytes(fastodin.encode([(i * 1e-3, "x", bytes(64)) for i in range(2000)], namespace=True))
    rep = write_tree(src, tmp_path / "w", compress=True, message_limit=500)
    assert len(rep.files) == 4 and rep.compression == "deflate"
    got = b""
    for f in rep.files:
        data = open(f, "rb").read()
        opts, pos = parse_header(data, file=f)
        assert opts["jpack_compression"] == "deflate"
        import base64

        raw = base64.b64decode(data[pos:data.index(b'"', pos)], validate=True)
        got += zlib.decompress(raw, -15)               # raw deflate: no zlib header, no gzip
        assert read_file(f) == zlib.decompress(raw, -15)
    assert got == src.read_bytes()
    assert rep.bytes_written < len(got) / 4            # it does compress


def test_tree_layout_and_names(tmp_path):
    src = tmp_path / "s.fastpack"
    src.write_bytes(fastodin.encode([(float(i), "x", b"abc") for i in range(40)], namespace=True))
    rep = write_tree(src, tmp_path / "w", message_limit=1)
    assert len(rep.files) == 21      # 41 messages, 2 a file (message_limit + 1, as fastpack-split)
    names = sorted(os.listdir(tmp_path / "w" / "data" / "jpack" / ZERO))
    assert names == [f"{k:032x}.jpack" for k in range(21)] and names[10] == "0" * 31 + "a.jpack"
    assert sorted(os.listdir(tmp_path / "w")) == ["data"] and sorted(os.listdir(tmp_path / "w" / "data")) == ["jpack"]


def test_existing_output_refused_force_replaces_append_adds(tmp_path):
    src = tmp_path / "s.fastpack"
    src.write_bytes(fastodin.encode([(0.0, "x", b"1")], namespace=True))
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "index.html").write_text("mine")
    write_tree(src, tmp_path / "w")
    with pytest.raises(FileExistsError):
        write_tree(src, tmp_path / "w")
    rep = write_tree(src, tmp_path / "w", append=True)
    assert rep.set_index == 1
    assert sorted(os.listdir(tmp_path / "w" / "data" / "jpack")) == [ZERO, "0" * 31 + "1"]
    write_tree(src, tmp_path / "w", force=True, message_limit=7)
    assert os.listdir(tmp_path / "w" / "data" / "jpack") == [ZERO]
    assert (tmp_path / "w" / "index.html").read_text() == "mine"          # left alone
    assert sorted(os.listdir(tmp_path / "w" / "data")) == ["jpack"]        # no temporary left
    (tmp_path / "w" / "data" / "jpack" / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a JPack set"):
        write_tree(src, tmp_path / "w", force=True)                         # not ours to delete
    with pytest.raises(UsageError):
        write_tree(src, tmp_path / "v", message_limit=-1)
    with pytest.raises(UsageError):
        write_tree(src, tmp_path / "v", force=True, append=True)


def test_failed_export_leaves_nothing(tmp_path):
    cut = tmp_path / "cut.fastpack"
    cut.write_bytes(fastodin.encode([(0.0, "x", b"12345678")] * 3, namespace=True)[:-5])
    with pytest.raises(fastodin.DataError, match="damaged"):
        write_tree(cut, tmp_path / "w")
    assert not (tmp_path / "w").exists()
    # a frame that turns out corrupt only when read, half-way through the export
    src = tmp_path / "s.fastpack.zst"
    with fastodin.Writer(src, frame_size=1024, flush_interval=None) as w:
        for i in range(2000):
            w.write(i * 1e-3, "x", os.urandom(40))
    with fastodin.open(src) as ar:
        e = ar.frames[len(ar.frames) // 2]
    raw = bytearray(src.read_bytes())
    raw[e.data_offset + e.compressed_size // 2] ^= 0xFF
    src.write_bytes(bytes(raw))
    with pytest.raises(fastodin.DataError):
        write_tree(src, tmp_path / "w2", message_limit=10)
    assert os.listdir(tmp_path / "w2" / "data") == []         # the half-written tree is gone


def test_empty_stream(tmp_path):
    src = tmp_path / "e.fastpack"
    src.write_bytes(b"")
    rep = write_tree(src, tmp_path / "w")
    assert rep.files == [] and os.listdir(tmp_path / "w" / "data" / "jpack") == []
    with fastodin.open(tmp_path / "w") as ar:
        assert list(ar.records()) == [] and not ar.damage


def test_sets_are_separate_streams(tmp_path):
    """Two appended sets whose namespaces reuse ids: each record keeps its own name."""
    a, b = tmp_path / "a.fastpack", tmp_path / "b.fastpack"
    a.write_bytes(fastodin.encode([(1.0, "left", b"L1"), (2.0, "left", b"L2")], namespace=True))
    b.write_bytes(fastodin.encode([(3.0, "right", b"R1"), (4.0, "right", b"R2")], namespace=True))
    write_tree(a, tmp_path / "w")
    write_tree(b, tmp_path / "w", append=True)
    with fastodin.open(tmp_path / "w") as ar:
        assert [(r.name, bytes(r.payload)) for r in ar.records()] == [
            ("left", b"L1"), ("left", b"L2"), ("right", b"R1"), ("right", b"R2")]
        assert "2 set(s)" in ar.notes[0]


def test_upper_case_names_read(tmp_path):
    src = tmp_path / "s.fastpack"
    src.write_bytes(fastodin.encode([(float(i), "x", b"abc") for i in range(30)], namespace=True))
    rep = write_tree(src, tmp_path / "w", message_limit=1)
    for f in rep.files:
        d, n = os.path.split(f)
        os.rename(f, os.path.join(d, n[:-6].upper() + ".jpack"))
    with fastodin.open(tmp_path / "w") as ar:
        assert [r.time for r in ar.records()] == [float(i) for i in range(30)]


def test_html_container_and_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "s.fastpack"
    src.write_bytes(fastodin.encode([(0.0, "x", b"1")], namespace=True))
    rep = write_tree(src, "web/", message_limit=5, byte_limit=0)
    opts, _ = parse_header(open(rep.files[0], "rb").read(), file="x")
    assert opts == {"jpack_path": "document.currentScript.src", "jpack_type": "data", "jpack_compression": "none",
                    "jpack_seq": "0", "prefix": "data/jpack", "message_limit": "5", "byte_limit": "0",
                    "read_size": "32768", "write_size": "32768", "group": "default",
                    "html_container": "web/index.html"}
    odd = 'we"ird\\dir,a:b\n'
    rep = write_tree(src, tmp_path / "x", html_container=odd)
    opts, _ = parse_header(open(rep.files[0], "rb").read(), file="x")
    assert opts["html_container"] == odd and opts["jpack_compression"] == "none"


def test_header_parser_is_lenient_with_spacing_and_quotes():
    h = b'  chunkLoader.decodeData( { jpack_path : document.currentScript.src , "jpack_compression" : \'DEFLATE\' } ,' \
        b' function ( ) { return "'
    opts, pos = parse_header(h, file="x")
    assert opts["jpack_compression"] == "DEFLATE" and pos == len(h)
    assert parse_header(header("none", 1, 2, "i.html"), file="x")[1] == len(header("none", 1, 2, "i.html"))


NODE = shutil.which("node")
_NODE_JS = r"""
const fs = require("fs"), vm = require("vm"), zlib = require("zlib");
let out = [];
for (const f of process.argv.slice(1)) {
  let got = null;
  const ctx = { document: { currentScript: { src: "file://" + f } },
                chunkLoader: { decodeData: (o, fn) => { got = [o, fn()]; } } };
  vm.createContext(ctx);
  vm.runInContext(fs.readFileSync(f, "utf8"), ctx);             // the chunk is a script, as in the browser
  const bin = Buffer.from(atob(got[1]), "latin1");                // the worker's atob
  out.push(got[0].jpack_compression === "deflate" ? zlib.inflateRawSync(bin) : bin);
}
process.stdout.write(Buffer.concat(out));
"""


@pytest.mark.skipif(NODE is None, reason="node not installed")
@pytest.mark.parametrize("compress", [False, True])
def test_chunks_run_as_javascript(tmp_path, compress):
    """Each .jpack is a script the browser runs: node evaluates it with a stub chunkLoader, atob's the
    string and (deflate) raw-inflates it, as Data::JPack's worker does with pako."""
    src = tmp_path / "s.fastpack"
    data = fastodin.encode([(i * 0.5, f"c{i % 3}", bytes(range(i % 50))) for i in range(3000)], namespace=True)
    src.write_bytes(data)
    rep = write_tree(src, tmp_path / 'we"ird\\ root', message_limit=400, compress=compress)
    p = subprocess.run([NODE, "-e", _NODE_JS] + rep.files, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == data


def test_cli_export_jpack(tmp_path):
    src = tmp_path / "s.fastpack.zst"
    with fastodin.Writer(src) as w:
        for i in range(100):
            w.write(i * 0.01, "x", struct.pack("<d", math.sin(i)))
    fo = [sys.executable, "-m", "fastodin", "export", str(src), "--jpack", str(tmp_path / "w")]
    p = subprocess.run(fo + ["--message-limit", "10", "--compress"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "deflate" in p.stdout and ".jpack files" in p.stdout
    p = subprocess.run(fo, capture_output=True, text=True)
    assert p.returncode == 3 and "exists (use --force" in p.stderr and len(p.stderr.splitlines()) == 1
    p = subprocess.run(fo + ["--force"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(fo + ["--append", "--channel", "x"], capture_output=True, text=True)
    assert p.returncode == 2 and "--channel does not apply to --jpack" in p.stderr
    p = subprocess.run(fo + ["--message-limit", "-3", "--force"], capture_output=True, text=True)
    assert p.returncode == 2
    p = subprocess.run([sys.executable, "-m", "fastodin", "export", str(src), "--csv"], capture_output=True, text=True)
    assert p.returncode == 2 and "-o OUT is required" in p.stderr
    with fastodin.open(tmp_path / "w") as ar:
        assert ar.read("x")[0].shape == (100,)


def test_cli_directory_that_is_no_tree(tmp_path):
    p = subprocess.run([sys.executable, "-m", "fastodin", "info", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 3 and "is a directory" in p.stderr and "not a JPack tree" in p.stderr
