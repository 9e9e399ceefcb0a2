"""fastodin.jpack against the golden trees the real fastpack-split wrote (tests/vectors/jpack/README.md).

Our export equals them byte for byte except the order of the options object's keys (Perl hash
order there, a fixed order here); our import of them gives back the input's records.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import fastodin
from fastodin.columns import scan
from fastodin.jpack import read_file, write_tree

VEC = Path(__file__).parent / "vectors" / "jpack"
#: (tree, input, fastpack-split options); a missing tree is a failure, not a skip
TREES = [
    ("a-default", "a.fastpack", {}),
    ("a-m100-b16000", "a.fastpack", {"message_limit": 100, "byte_limit": 16000}),
    ("b-default", "b.fastpack", {}),
    ("b-m100-b16000", "b.fastpack", {"message_limit": 100, "byte_limit": 16000}),
]
_HEAD = re.compile(rb'(chunkLoader\.decodeData\(\{jpack_path:document\.currentScript\.src,)(.*?)'
                   rb'(\}, function\(\)\{ return ")', re.S)


def files_of(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def split_options(data: bytes):
    """(bytes before the options, [key:"value" items], bytes after): the only part whose order may differ."""
    m = _HEAD.match(data)
    assert m is not None, data[:200]
    return m.group(1), m.group(2).split(b", "), data[m.end(2):]


def assert_same_tree(ours: Path, golden: Path):
    assert files_of(ours) == files_of(golden)
    assert files_of(golden), golden
    for rel in files_of(golden):
        a, b = (ours / rel).read_bytes(), (golden / rel).read_bytes()
        pa, ia, ra = split_options(a)
        pb, ib, rb = split_options(b)
        assert pa == pb and ra == rb, rel
        assert sorted(ia) == sorted(ib), rel
        assert len(ia) == len(set(ia)) == 10


def normalised(stream: bytes) -> bytes:
    """The stream as fastpack-split re-encodes it: every record's padding zeroed."""
    out = bytearray(stream)
    sc = scan(stream)
    assert sc.end == len(stream)
    for o, n in zip(sc.offset.tolist(), sc.length.tolist()):
        out[o + n:o + n + (-n & 7)] = bytes(-n & 7)
    return bytes(out)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Every kind of input fastodin.jpack takes for the same stream: archive, raw, plain zstd."""
    d = tmp_path_factory.mktemp("src")
    shutil.copy(VEC / "a.fastpack.zst", d / "a.fastpack.zst")
    for s in ("a", "b"):
        raw = (VEC / f"{s}.fastpack").read_bytes()
        (d / f"{s}.fastpack").write_bytes(raw)
        (d / f"{s}.plain.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(raw))
    return d


def test_golden_inputs_are_what_the_readme_says():
    a = (VEC / "a.fastpack").read_bytes()
    with fastodin.open(VEC / "a.fastpack.zst") as ar:
        assert b"".join(ar.frame_data(e) for e in ar.frames) == a   # a.fastpack = zstd -d a.fastpack.zst
    assert scan(a).count == 1875 and scan((VEC / "b.fastpack").read_bytes()).count == 1248
    assert normalised((VEC / "b.fastpack").read_bytes()) != (VEC / "b.fastpack").read_bytes()  # has non-zero pads


#: every kind of source of the same stream (b has no fastodin archive: it is a hand-built raw stream)
EXPORTS = [(t, i, o, k) for t, i, o in TREES
           for k in (("archive", "raw", "zstd") if i == "a.fastpack" else ("raw", "zstd"))]


@pytest.mark.parametrize("tree,inp,opts,kind", EXPORTS, ids=[f"{t}-{k}" for t, _i, _o, k in EXPORTS])
def test_export_equals_fastpack_split(tree, inp, opts, kind, sources, tmp_path, monkeypatch):
    stem = inp.split(".")[0]
    src = {"archive": sources / f"{stem}.fastpack.zst", "raw": sources / f"{stem}.fastpack",
           "zstd": sources / f"{stem}.plain.zst"}[kind]
    monkeypatch.chdir(tmp_path)                 # html_container is recorded as given: "<tree>/index.html"
    rep = write_tree(src, tree, **opts)
    assert_same_tree(tmp_path / tree, VEC / tree)
    assert rep.records == scan((VEC / inp).read_bytes()).count
    assert rep.set_index == 0 and rep.compression == "none"
    assert not (tmp_path / tree / "index.html").exists()    # fastpack-split writes none either


def test_cli_export_equals_fastpack_split(tmp_path):
    shutil.copy(VEC / "a.fastpack.zst", tmp_path / "a.fastpack.zst")
    p = subprocess.run([sys.executable, "-m", "fastodin", "export", "a.fastpack.zst", "--jpack", "a-m100-b16000",
                        "--message-limit", "100", "--byte-limit", "16000"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "19 .jpack files" in p.stdout
    assert_same_tree(tmp_path / "a-m100-b16000", VEC / "a-m100-b16000")


@pytest.mark.parametrize("tree,inp,opts", TREES, ids=[t[0] for t in TREES])
def test_import_equals_input(tree, inp, opts):
    stream = (VEC / inp).read_bytes()
    chunks = sorted((VEC / tree / "data" / "jpack").rglob("*.jpack"))
    assert b"".join(read_file(c) for c in chunks) == normalised(stream)
    with fastodin.open(VEC / tree) as got, fastodin.open(VEC / inp) as want:
        assert got.container == "jpack" and not got.damage and got.complete
        g = [(struct.pack("<d", r.time), r.id, r.name, bytes(r.payload)) for r in got.records()]
        w = [(struct.pack("<d", r.time), r.id, r.name, bytes(r.payload)) for r in want.records()]
        assert g == w and len(g) > 1000
        assert got.info()["channels"] == want.info()["channels"]
        assert got.layouts.keys() == want.layouts.keys() and got.tags == want.tags


def test_import_one_file_and_set_dir():
    set_dir = VEC / "b-default" / "data" / "jpack" / ("0" * 32)
    one = set_dir / ("0" * 32 + ".jpack")
    with fastodin.open(one) as a, fastodin.open(set_dir) as b, fastodin.open(VEC / "b.fastpack") as c:
        assert [bytes(r.payload) for r in a.records()] == [bytes(r.payload) for r in c.records()]
        assert [bytes(r.payload) for r in b.records()] == [bytes(r.payload) for r in c.records()]


def test_perl_deflate_chunk():
    """A raw-deflate chunk written by Data::JPack itself decodes to its input."""
    assert read_file(VEC / "perl-deflate-a.jpack") == (VEC / "a.fastpack").read_bytes()
    with fastodin.open(VEC / "perl-deflate-a.jpack") as ar:
        assert ar.info()["records"] == fastodin.open(VEC / "a.fastpack").info()["records"]


def test_cli_info_cat_convert_read_golden(tmp_path):
    tree = str(VEC / "a-m100-b16000")
    fo = [sys.executable, "-m", "fastodin"]
    p = subprocess.run(fo + ["info", tree, "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert '"container": "jpack"' in p.stdout
    p = subprocess.run(fo + ["cat", tree, "--channel", "gps", "--format", "jsonl"], capture_output=True, text=True)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 150, p.stderr
    out = tmp_path / "back.fastpack"
    p = subprocess.run(fo + ["convert", tree, str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == (VEC / "a.fastpack").read_bytes()
    p = subprocess.run(fo + ["convert", tree, str(tmp_path / "back.fastpack.zst")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    with fastodin.open(tmp_path / "back.fastpack.zst") as a, fastodin.open(VEC / "a.fastpack.zst") as b:
        assert [(r.time, r.name, bytes(r.payload)) for r in a.records()] == \
            [(r.time, r.name, bytes(r.payload)) for r in b.records()]


def test_golden_set_is_complete():
    for tree, _inp, _o in TREES:
        assert (VEC / tree / "data" / "jpack" / ("0" * 32) / ("0" * 32 + ".jpack")).is_file(), tree
    assert os.path.getsize(VEC / "perl-deflate-a.jpack") == 54734
