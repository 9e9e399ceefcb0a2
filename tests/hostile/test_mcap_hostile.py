"""Hostile MCAP input for ``fastodin convert IN.mcap OUT``: a clear one-line DataError that names the
record and offset, bounded memory and time, never a traceback (run in a child with a memory ceiling)."""
import struct
import sys
import zlib

import numpy as np
import pytest
import zstandard

from fastodin.mcap import _format as F

RSS_LIMIT = 512 << 20      # the harness's limit (tests/hostile/conftest.py)

MSG = 0x05


def rec(op, body):
    return F.record(op, body)


def mcap(*records, footer=True):
    out = F.MAGIC + rec(F.Op.HEADER, F.header_body("", "hostile"))
    out += b"".join(records)
    if footer:
        out += rec(F.Op.DATA_END, F.data_end_body(0)) + F.footer_record(b"", 0, 0) + F.MAGIC
    return out


def message(cid, t, data=b"x"):
    return rec(MSG, struct.pack("<HIQQ", cid, 0, t, t) + data)


def chunk(records, usize=None, comp="zstd", crc=None, data=None):
    body = b"".join(records)
    if data is None:
        data = zstandard.ZstdCompressor().compress(body) if comp == "zstd" else body
    return rec(F.Op.CHUNK, F.chunk_body(0, 0, len(body) if usize is None else usize,
                                        zlib.crc32(body) if crc is None else crc, comp, data))


CH = rec(F.Op.CHANNEL, F.channel_body(1, 0, "/a", "octet-stream", {}))
SC = rec(F.Op.SCHEMA, F.schema_body(1, "s", "jsonschema", b"{}"))

CASES = {
    "opcode 0": (mcap(rec(0, b"")), "opcode 0"),
    "first record not a header": (F.MAGIC + CH, "must be the Header"),
    "bad utf-8 topic": (mcap(rec(F.Op.CHANNEL, struct.pack("<HHI", 1, 0, 2) + b"\xff\xfe" + F.string("x")
                                 + struct.pack("<I", 0))), "not UTF-8"),
    "string longer than record": (mcap(rec(F.Op.CHANNEL, struct.pack("<HHI", 1, 0, 0xFFFFFFF0))), "needs"),
    "map longer than record": (mcap(rec(F.Op.CHANNEL, F.channel_body(1, 0, "/a", "x", {})[:-4]
                                        + struct.pack("<I", 1 << 30))), "needs"),
    "message on undefined channel": (mcap(CH, message(9, 5)), "channel 9"),
    "channel of undefined schema": (mcap(rec(F.Op.CHANNEL, F.channel_body(1, 7, "/a", "json", {}))), "schema 7"),
    "schema redefined differently": (mcap(SC, rec(F.Op.SCHEMA, F.schema_body(1, "s", "jsonschema", b"[]"))),
                                     "defined twice"),
    "short message": (mcap(CH, rec(MSG, b"\x01\x00" + bytes(10))), "at least 22"),
    "chunk claims 1 TiB": (mcap(chunk([CH, message(1, 5)], usize=1 << 40)), "max_chunk_size"),
    "zstd frame lies about its size": (mcap(chunk([CH], data=zstandard.ZstdCompressor().compress(bytes(1 << 20)))),
                                       "zstd frame claims"),
    "chunk crc mismatch": (mcap(chunk([CH, message(1, 5)], crc=1234)), "CRC"),
    "chunk record past the chunk": (mcap(chunk([CH, rec(MSG, bytes(40))[:-20]], comp="")), "claims"),
    "unknown compression": (mcap(chunk([CH], comp="brotli", data=b"zz")), "unknown chunk compression"),
    "zstd garbage": (mcap(chunk([CH], data=b"\x28\xb5\x2f\xfd" + bytes(40))), "zstd"),
    "trailing bytes after the magic": (mcap(CH) + b"junk", "after the closing magic"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_mcap(tmp_path, bounded, name):
    data, want = CASES[name]
    assert len(data) < 8192
    src = tmp_path / "h.mcap"
    src.write_bytes(data)
    out = tmp_path / "o.fastpack.zst"
    r = bounded.cli("convert", str(src), str(out), timeout=60)
    assert not r.timed_out
    assert r.returncode == 1, r.text
    err = r.stderr.decode()
    assert "Traceback" not in err and "internal error" not in err, err
    assert want in err, err
    assert len(err.strip().splitlines()) == 1
    assert r.peak_rss < RSS_LIMIT
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_zstd_bomb_is_bounded(tmp_path, bounded):
    """A 200 MiB chunk of zeros in a few KB: decompressed at most once, within the limit, then a clear error."""
    zeros = zstandard.ZstdCompressor(level=19).compress(bytes(200 << 20))
    data = mcap(rec(F.Op.CHUNK, F.chunk_body(0, 0, 200 << 20, 0, "zstd", zeros)))
    assert len(data) < 64 << 10
    src = tmp_path / "b.mcap"
    src.write_bytes(data)
    r = bounded.cli("convert", str(src), str(tmp_path / "o.fastpack.zst"), timeout=60)
    assert r.returncode == 1 and "opcode 0" in r.stderr.decode()
    assert r.peak_rss < RSS_LIMIT


def test_error_names_offset():
    import tempfile
    import os

    from fastodin.errors import DataError
    from fastodin.mcap.importer import import_mcap

    d = tempfile.mkdtemp()
    p = os.path.join(d, "x.mcap")
    data = mcap(CH, message(9, 5))
    open(p, "wb").write(data)
    with pytest.raises(DataError) as ei:
        import_mcap(p, os.path.join(d, "o.fastpack.zst"))
    assert "offset" in str(ei.value) and ei.value.channel == 9


def test_random_bytes_after_the_magic(tmp_path, bounded):
    rng = np.random.default_rng(7)
    code = ("import sys, glob\nfrom fastodin.mcap.importer import import_mcap\nfrom fastodin.errors import DataError\n"
            "bad = 0\nfor p in sorted(glob.glob(sys.argv[1] + '/*.mcap')):\n"
            "    try:\n        import_mcap(p, p + '.fastpack.zst')\n    except DataError:\n        bad += 1\n"
            "print('ok', bad)\n")
    base = mcap(CH, chunk([CH, message(1, 5), message(1, 6, b"abc")]), message(1, 7))
    for k in range(60):
        b = bytearray(base)
        for _ in range(1 + k % 5):
            b[rng.integers(8, len(b))] = rng.integers(0, 256)
        (tmp_path / f"f{k:02d}.mcap").write_bytes(bytes(b))
    r = bounded([sys.executable, "-c", code, str(tmp_path)], timeout=120)
    assert r.returncode == 0 and r.stdout.startswith(b"ok"), r.text
    assert r.peak_rss < RSS_LIMIT
