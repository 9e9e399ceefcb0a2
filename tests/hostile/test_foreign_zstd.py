"""Issue 8 item 18: any zstd-compressed FastPack stream opens, whatever cut its frames: zstd's
seekable format (contrib layout, 64 KiB frames, with per-frame checksums in the seek table),
pyzstd SeekableZstdFile (defaults and small frames), zstd CLI output read from a pipe (no content
size), two concatenated zstd files.  Records crossing frame boundaries are read whole; info calls
such a file a "zstd FastPack stream without fastodin index"; verify passes a sound one."""
import random
import shutil
import struct
import subprocess
import sys

import pytest
import zstandard

import fastodin
from fastodin import Decoder, Encoder, encode_meta
from fastodin.archive import recover
from fastodin.archive.seekable import SEEK_TABLE_MAGIC, SEEKABLE_FOOTER_MAGIC

RSS_LIMIT = 512 << 20      # the ceiling (tests/hostile/conftest.py)
pyzstd = pytest.importorskip("pyzstd")


@pytest.fixture(scope="module")
def stream():
    """~1.8 MB FastPack stream: 5 named channels, payloads of 0..300 bytes (records cross every
    frame boundary), id-0 metadata, a namespace reset that re-binds an id, 4.5 MiB of resets."""
    rnd = random.Random(11)
    enc = Encoder(namespace=True)
    enc.add(0.0, 0, encode_meta({"device": "x"}))
    for i in range(12000):
        enc.add(i * 1e-3, f"c{rnd.randrange(5)}", bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 300))))
    enc.reset()
    for i in range(2000):
        enc.add(20.0 + i * 1e-3, "after", struct.pack("<d", i))
    data = enc.take() + bytes(9 << 19)           # zeros: reset records (a fast path of the scan)
    enc2 = Encoder(namespace=True)
    for i in range(500):
        enc2.add(30.0 + i * 1e-3, "tail", struct.pack("<Q", i))
    return data + enc2.take()


def _records(data):
    dec = Decoder(namespace=True)
    dec.feed(data)
    return [(r.time, r.name, bytes(r.payload)) for r in dec]


def _contrib_seekable(raw: bytes, frame: int = 64 << 10) -> bytes:
    """zstd contrib/seekable_format layout as its compressor writes it: independent frames of
    ``frame`` bytes (no content size), then the seek table with per-frame checksums (the low 32
    bits of each frame's XXH64, which is also the frame's own content checksum)."""
    cctx = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=False)
    out = bytearray()
    table = bytearray()
    for a in range(0, len(raw), frame):
        chunk = raw[a:a + frame]
        co = cctx.compressobj()
        z = co.compress(chunk) + co.flush()
        out += z
        table += struct.pack("<III", len(z), len(chunk), struct.unpack("<I", z[-4:])[0])
    n = len(table) // 12
    body = bytes(table) + struct.pack("<IBI", n, 0x80, SEEKABLE_FOOTER_MAGIC)
    return bytes(out) + struct.pack("<II", SEEK_TABLE_MAGIC, len(body)) + body


def _pyzstd_seekable(path, raw, **kw):
    with pyzstd.SeekableZstdFile(str(path), "w", **kw) as f:
        f.write(raw)


def _zstd_cli(raw, *args):
    return subprocess.run(["zstd", "-q", "-c", *args], input=raw, capture_output=True, check=True).stdout


KINDS = ["contrib-64k", "pyzstd-default", "pyzstd-64k", "zstd-pipe", "two-zstd-files"]


@pytest.fixture(scope="module", params=KINDS)
def foreign(request, stream, tmp_path_factory):
    kind = request.param
    p = tmp_path_factory.mktemp("foreign") / f"{kind}.fastpack.zst"
    if kind == "contrib-64k":
        p.write_bytes(_contrib_seekable(stream))
    elif kind == "pyzstd-default":
        _pyzstd_seekable(p, stream)
    elif kind == "pyzstd-64k":
        _pyzstd_seekable(p, stream, max_frame_content_size=64 << 10)
    else:
        if shutil.which("zstd") is None:
            pytest.skip("zstd CLI not installed")
        if kind == "zstd-pipe":           # read from a pipe: no content size in the header
            p.write_bytes(_zstd_cli(stream))
        else:                             # cut mid-record, each half compressed by zstd, concatenated
            cut = len(stream) // 3 + 5
            p.write_bytes(_zstd_cli(stream[:cut]) + _zstd_cli(stream[cut:], "-6"))
    return kind, p


def test_foreign_stream_reads_exactly(foreign, stream):
    kind, p = foreign
    want = _records(stream)
    with fastodin.open(p) as ar:
        assert ar.format == "zstd" and ar.complete and not ar.damage, (ar.notes, ar.damage)
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == want
        # random access: a window of one channel, nearest record, typed read, columns
        sel = [(r.time, r.name, bytes(r.payload)) for r in ar.records(channels="c3", start=5.0, end=7.5)]
        assert sel and sel == [x for x in want if x[1] == "c3" and 5.0 <= x[0] < 7.5]
        r = ar.at(20.5004, "after")
        assert (r.time, bytes(r.payload)) == (20.5, struct.pack("<d", 500))
        t, v = ar.read("tail", dtype="<u8")
        assert v.tolist() == list(range(500))
        cols = ar.columns(["c1", "after"])
        assert cols["c1"][0].shape[0] == sum(1 for x in want if x[1] == "c1")
        info = ar.info()
        assert info["records"] == len(want)
        assert info["channels"]["after"]["count"] == 2000 and info["channels"]["tail"]["count"] == 500


def test_foreign_stream_reads_as_its_decompressed_raw_file(foreign, stream, tmp_path):
    """Equivalence: the zstd file and the raw .fastpack it decompresses to give the same records,
    names and reader ids (one namespace implementation, frames or not)."""
    kind, p = foreign
    raw = tmp_path / "same.fastpack"
    raw.write_bytes(stream)
    with fastodin.open(p) as a, fastodin.open(raw) as b:
        assert list(a.records()) == list(b.records())
        assert a.names == b.names and a.ids == b.ids
        strip = lambda chans: {k: {f: x for f, x in c.items() if f != "frames"} for k, c in chans.items()}  # noqa: E731
        assert strip(a.info()["channels"]) == strip(b.info()["channels"])   # frame counts differ, naturally


def test_cli_info_verify_convert(foreign, stream, tmp_path):
    kind, p = foreign
    run = lambda *a: subprocess.run([sys.executable, "-m", "fastodin", *a], capture_output=True, text=True)  # noqa: E731
    info = run("info", str(p))
    assert info.returncode == 0, info.stderr
    head = info.stdout.splitlines()[0]
    assert "zstd FastPack stream without fastodin index" in head and "INCOMPLETE" not in head, head
    v = run("verify", str(p))
    assert v.returncode == 0 and v.stdout.rstrip().splitlines()[-1].startswith("SOUND"), v.stdout
    out = tmp_path / "back.fastpack"
    c = run("convert", str(p), str(out))
    assert c.returncode == 0, c.stderr
    assert out.read_bytes() == stream


def test_cut_foreign_file_opens_its_prefix_and_recovers(stream, tmp_path):
    p = tmp_path / "cut.fastpack.zst"
    _pyzstd_seekable(p, stream, max_frame_content_size=64 << 10)
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])
    want = _records(stream)
    with fastodin.open(p) as ar:
        assert ar.format == "zstd" and not ar.complete and ar.damage
        got = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
    assert got and got == want[:len(got)]
    rep = recover(p, tmp_path / "saved.fastpack.zst")
    assert rep.records_saved == len(got) and rep.records_lost is None and rep.records_lost_min >= 1
    run = subprocess.run([sys.executable, "-m", "fastodin", "info", str(p)], capture_output=True, text=True)
    assert run.returncode == 1 and "INCOMPLETE" in run.stdout.splitlines()[0]


def test_foreign_file_reads_in_bounded_memory(bounded, tmp_path):
    """60 MB of records in 64 KiB seekable frames: open, read every record, verify: small memory."""
    rnd = random.Random(3)
    enc = Encoder(namespace=True)
    payloads = [bytes(rnd.randrange(256) for _ in range(n)) for n in range(0, 400, 7)]
    for i in range(300000):
        enc.add(i * 1e-4, f"c{i % 7}", payloads[i % len(payloads)])
    raw = enc.take()
    p = tmp_path / "big.fastpack.zst"
    _pyzstd_seekable(p, raw, max_frame_content_size=64 << 10)
    code = ("import sys, fastodin\n"
            "with fastodin.open(sys.argv[1]) as ar:\n"
            "    n = sum(1 for _ in ar.records())\n"
            "print(n)\n")
    r = bounded([sys.executable, "-c", code, str(p)], timeout=300)
    assert r.returncode == 0 and int(r.stdout) == 300000, r.text
    assert r.peak_rss <= RSS_LIMIT, r.peak_rss
    v = bounded.cli("verify", str(p), timeout=300)
    assert v.returncode == 0 and v.peak_rss <= RSS_LIMIT, v.text
