"""Bad JPack input: a clear JPackError naming the file, and every good chunk still read.

fastodin.open() lists each bad or missing .jpack in Archive.damage and reads the rest;
fastodin.jpack.open_tree(strict=True) raises the first error; when nothing at all is readable,
open() raises.  The CLI refuses damaged input (cat, export, convert), lists it (info, exit 1) and
`recover` saves the good chunks.
"""
import base64
import os
import subprocess
import sys
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastodin
from fastodin.errors import JPackError, LimitError
from fastodin.jpack import open_tree, read_file, write_tree
from fastodin.jpack._format import FOOTER, header

ZERO = "0" * 32


def chunk(payload: bytes, compression: str = "none") -> bytes:
    return header(compression, 0, 0, "t/index.html") + base64.b64encode(payload) + FOOTER


@pytest.fixture
def tree(tmp_path):
    """A tree of 6 chunks, 10 records each (namespace definition in chunk 0), and its records by chunk."""
    src = tmp_path / "s.fastpack"
    recs = [(float(i), "x", b"%03d" % i) for i in range(59)]
    src.write_bytes(fastodin.encode(recs, namespace=True))   # 60 messages
    rep = write_tree(src, tmp_path / "t", message_limit=9)
    assert len(rep.files) == 6
    return tmp_path / "t", rep.files


def payloads(ar):
    return [bytes(r.payload) for r in ar.records()]


def all_but(k):
    return [b"%03d" % i for i in range(59) if not (10 * k - 1 <= i < 10 * k + 9)]


BAD = {
    "not a chunkLoader call": b"<html>hello</html>\n",
    "bad base64 character": header("none", 0, 0, "i") + b"AAAA*AAA" + FOOTER,
    "data after padding": header("none", 0, 0, "i") + b"AA==AAAA" + FOOTER,
    "length not a multiple of 4": header("none", 0, 0, "i") + b"AAAAA" + FOOTER,
    "three padding characters": header("none", 0, 0, "i") + b"AAAAA===" + FOOTER,
    "a lone character before padding": header("none", 0, 0, "i") + b"AAAAA==" + FOOTER,
    "bad deflate": chunk(b"\xff" * 64, "deflate"),
    "deflate cut short": chunk(zlib.compressobj(9, zlib.DEFLATED, -15).compress(bytes(5000)), "deflate"),
    "bytes after the deflate stream": chunk(zlib.compress(b"x" * 10)[2:-4] + b"junk", "deflate"),
    "cut inside the data string": header("none", 0, 0, "i") + b"AAAAAAAA",
    "no footer": header("none", 0, 0, "i") + b'AAAA"; alert(1)',
    "unknown compression": header("gzip", 0, 0, "i") + b"AAAA" + FOOTER,
    "options never end": b"chunkLoader.decodeData({" + b"a:1, " * 20000,
    "options then garbage": b'chunkLoader.decodeData({jpack_path:x}, 42)',
}


@pytest.mark.parametrize("what", list(BAD), ids=list(BAD))
def test_bad_chunk_names_the_file_and_the_rest_is_read(tree, what):
    root, files = tree
    bad = files[2]
    with open(bad, "wb") as f:
        f.write(BAD[what])
    with pytest.raises(JPackError) as ei:
        read_file(bad)
    assert ei.value.file == bad and str(ei.value).startswith(bad + ": ")
    assert isinstance(ei.value, fastodin.DataError) and isinstance(ei.value, ValueError)
    with pytest.raises(JPackError) as ei2:
        fastodin.open(bad)                     # one file, nothing readable: raised
    assert ei2.value.file == bad
    with fastodin.open(root) as ar:
        assert payloads(ar) == all_but(2)      # every good chunk
        assert len(ar.damage) == 1 and ar.damage[0].reason.startswith(bad) and not ar.complete
        assert ar.damage[0].length == os.path.getsize(bad)
    with pytest.raises(JPackError) as ei3:
        open_tree(root, strict=True)
    assert ei3.value.file == bad


def test_missing_sequence_numbers(tree):
    root, files = tree
    os.unlink(files[1])
    os.unlink(files[4])
    with fastodin.open(root) as ar:
        assert payloads(ar) == [p for p in all_but(1) if p in all_but(4)]
        assert [d.reason.split(": ")[0] for d in ar.damage] == [files[1], files[4]]
        assert all("missing" in d.reason for d in ar.damage)
    with pytest.raises(JPackError, match="missing") as ei:
        open_tree(root, strict=True)
    assert ei.value.file == files[1]


def test_first_file_missing_loses_the_definition(tree):
    """Chunk 0 holds the namespace definition: without it, the rest is read under the raw-file rules
    (the first record of the unknown id defines it) and the damage says what is gone."""
    root, files = tree
    os.unlink(files[0])
    with fastodin.open(root) as ar:
        assert len(ar.damage) == 1 and "missing" in ar.damage[0].reason
        assert len(list(ar.records())) == 49     # chunk 0's 10 messages lost, one more becomes a definition


def test_missing_set(tmp_path):
    src = tmp_path / "s.fastpack"
    src.write_bytes(fastodin.encode([(0.0, "x", b"1")], namespace=True))
    for _ in range(3):
        write_tree(src, tmp_path / "t", append=True)
    gone = tmp_path / "t" / "data" / "jpack" / ("0" * 31 + "1")
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    with fastodin.open(tmp_path / "t") as ar:
        assert payloads(ar) == [b"1", b"1"]
        assert len(ar.damage) == 1 and ar.damage[0].reason.startswith(str(gone)) and "set" in ar.damage[0].reason


def test_all_chunks_bad_raises(tree):
    root, files = tree
    for f in files:
        with open(f, "wb") as fh:
            fh.write(b"nope")
    with pytest.raises(JPackError) as ei:
        fastodin.open(root)
    assert ei.value.file == files[0]


def test_not_a_tree(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(JPackError, match="not a JPack tree") as ei:
        fastodin.open(tmp_path)
    assert ei.value.file == str(tmp_path)


def test_chunk_ending_inside_a_record(tmp_path):
    """A record split over two chunks (fastpack-split never does it) is read when both are good and
    reported, with the bytes dropped, when the second is bad; the chunks after are read."""
    data = fastodin.encode([(float(i), "x", b"%02d" % i) for i in range(6)], namespace=True)
    d = tmp_path / "t" / "data" / "jpack" / ZERO
    d.mkdir(parents=True)
    cuts = [0, 30, 72, len(data) - 20, len(data)]   # 30 and len-20: inside records; 72: a boundary
    parts = [data[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    for k, p in enumerate(parts):
        (d / f"{k:032x}.jpack").write_bytes(chunk(p))
    with fastodin.open(tmp_path / "t") as ar:
        assert payloads(ar) == [b"%02d" % i for i in range(6)] and not ar.damage
    (d / f"{1:032x}.jpack").write_bytes(b"broken")
    with fastodin.open(tmp_path / "t") as ar:
        assert "bytes of a record begun in the chunk before are dropped" in ar.damage[0].reason
        assert payloads(ar)[-2:] == [b"04", b"05"]
    (d / f"{3:032x}.jpack").unlink()
    with fastodin.open(tmp_path / "t") as ar:
        assert any("the set ends inside a record" in x.reason for x in ar.damage)


def test_chunk_size_limit(tree):
    root, files = tree
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = bomb.compress(bytes(50 << 20)) + bomb.flush()
    assert len(raw) < 60_000
    with open(files[3], "wb") as f:
        f.write(chunk(raw, "deflate"))
    with pytest.raises(LimitError) as ei:
        read_file(files[3], max_size=1 << 20)
    assert ei.value.file == files[3] and ei.value.limit == 64 * os.path.getsize(files[3])   # > 1 MiB
    with open_tree(root, max_chunk_size=1 << 20) as ar:
        assert payloads(ar) == all_but(3) and "max_chunk_size" in ar.damage[0].reason
    with open(files[3], "wb") as f:       # "none" chunks have no limit (they decode to 3/4 of their size)
        f.write(chunk(bytes(2 << 20)))
    assert len(read_file(files[3], max_size=1 << 20)) == 2 << 20


def test_record_over_limit_in_a_chunk(tree):
    root, files = tree
    import struct

    with open(files[2], "wb") as f:
        f.write(chunk(struct.pack("<dII", 0.0, 1, 1 << 31) + bytes(8)))
    with open_tree(root, max_frame_size=1 << 20) as ar:
        assert payloads(ar) == all_but(2) and "claims" in ar.damage[0].reason


def fo(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastodin", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_on_damaged_tree(tree, tmp_path):
    root, files = tree
    with open(files[2], "wb") as f:
        f.write(BAD["bad base64 character"])
    p = fo("info", str(root))
    assert p.returncode == 1 and files[2] in p.stdout and "DAMAGE" in p.stdout
    assert "fastodin recover" in p.stderr and len(p.stderr.splitlines()) == 1
    p = fo("cat", str(root))
    assert p.returncode == 1 and files[2] in p.stderr and len(p.stderr.splitlines()) == 1
    p = fo("convert", str(root), str(tmp_path / "x.fastpack.zst"))
    assert p.returncode == 1 and "damaged" in p.stderr and not (tmp_path / "x.fastpack.zst").exists()
    p = fo("recover", str(root), str(tmp_path / "saved.fastpack.zst"))
    assert p.returncode == 1 and "unknown number of" in p.stdout, p.stdout + p.stderr
    with fastodin.open(tmp_path / "saved.fastpack.zst") as ar:
        assert payloads(ar) == all_but(2)
    p = fo("export", str(root), "--jpack", str(tmp_path / "again"))
    assert p.returncode == 1 and "damaged" in p.stderr
    for f in files:
        with open(f, "wb") as fh:
            fh.write(b"x")
    p = fo("info", str(root))
    assert p.returncode == 1 and "not a JPack chunk" in p.stderr and "Traceback" not in p.stderr


_GOOD = {c: None for c in ("none", "deflate")}


def _good(comp):
    if _GOOD[comp] is None:
        data = fastodin.encode([(i * 0.5, "x", bytes(range(i % 30))) for i in range(40)], namespace=True)
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = data if comp == "none" else z.compress(data) + z.flush()
        _GOOD[comp] = chunk(body, comp)
    return _GOOD[comp]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["none", "deflate"]),
       st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]), st.floats(0, 1),
                          st.binary(min_size=1, max_size=4)), min_size=1, max_size=4))
def test_mutated_chunks_give_only_jpack_errors(tmp_path_factory, comp, edits):
    """Whatever is done to a good chunk, reading it returns bytes or raises JPackError (never a
    binascii / zlib / struct / Unicode error)."""
    data = bytearray(_good(comp))
    for op, where, b in edits:
        k = int(where * max(len(data) - 1, 0))
        if op == "flip" and data:
            data[k] ^= b[0] or 1
        elif op == "cut":
            del data[k:]
        elif op == "insert":
            data[k:k] = b
        else:
            del data[k:k + len(b)]
    p = tmp_path_factory.mktemp("m") / "x.jpack"
    p.write_bytes(bytes(data))
    try:
        out = read_file(p)
    except JPackError as e:
        assert str(e).startswith(str(p) + ": ")
    else:
        assert isinstance(out, bytes)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=6),
       st.booleans())
def test_mutated_tree_opens_or_raises_a_data_error(tmp_path_factory, flips, compress):
    """Bytes flipped anywhere in a tree's chunks: open() returns (damage listed) or raises a DataError."""
    d = tmp_path_factory.mktemp("t")
    (d / "s.fastpack").write_bytes(fastodin.encode([(float(i), "x%d" % (i % 3), b"%03d" % i) for i in range(59)],
                                                   namespace=True))
    files = write_tree(d / "s.fastpack", d / "t", message_limit=9, compress=compress).files
    for k, where, x in flips:
        raw = bytearray(open(files[k], "rb").read())
        raw[int(where * (len(raw) - 1))] ^= x
        open(files[k], "wb").write(raw)
    try:
        with fastodin.open(d / "t") as ar:
            list(ar.records())
            ar.info()
    except fastodin.DataError:
        pass
