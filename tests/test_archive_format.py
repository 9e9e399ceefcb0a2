"""Archive byte layout: seekable-format pieces, index entries, and interop with zstd readers."""
from __future__ import annotations

import io
import shutil
import struct
import subprocess

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from fastodin.archive import Writer, open_archive
from fastodin.archive.index import (FrameEntry, consolidated_payload, entry_payload, parse_index_payload)
from fastodin.archive.seekable import (INDEX_MAGIC, SEEK_TABLE_MAGIC, SEEKABLE_FOOTER_MAGIC, ZSTD_MAGIC,
                                       build_seek_table, parse_footer, parse_seek_table, seek_table_size,
                                       skippable_frame, zstd_frame_header, zstd_frame_size)
from fastodin.codec import Decoder, Encoder
from fastodin.errors import CorruptFrameError, DataError, TruncatedError


def _records(n=3000, chans=3):
    return [(i * 1e-3, f"c{i % chans}", struct.pack("<dd", i, i * 0.5)) for i in range(n)]


def _write(path, recs, **kw):
    with Writer(path, **kw) as w:
        for r in recs:
            w.write(*r)
    return path


# ---- seekable pieces ---------------------------------------------------------------------------

def test_seek_table_round_trip_and_footer():
    st_ = build_seek_table([(10, 20), (30, 0), (1, 2)])
    assert st_[:4] == struct.pack("<I", SEEK_TABLE_MAGIC)
    assert struct.unpack("<I", st_[4:8])[0] == len(st_) - 8
    assert st_[-4:] == struct.pack("<I", SEEKABLE_FOOTER_MAGIC)
    assert parse_footer(st_[-9:]) == (3, 0)
    assert seek_table_size(3, 0) == len(st_)
    assert parse_seek_table(st_, 3, 0) == [(10, 20), (30, 0), (1, 2)]


def test_seek_table_errors():
    st_ = build_seek_table([(10, 20)])
    assert parse_footer(b"\x00" * 9) is None
    assert parse_footer(b"short") is None
    with pytest.raises(CorruptFrameError):
        parse_seek_table(st_[:-1], 1, 0)
    bad = b"\x00" + st_[1:]
    with pytest.raises(CorruptFrameError):
        parse_seek_table(bad, 1, 0)


def test_zstd_frame_walk_matches_real_frames():
    for level in (-131072, 1, 19):
        for size in (0, 1, 1000, 300_000):
            data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            f = zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)
            hs, content, ck = zstd_frame_header(f[:18])
            assert content == len(data) and ck
            buf = f + b"trailing"
            assert zstd_frame_size(lambda o, n: buf[o:o + n], 0, len(buf)) == len(f)
            with pytest.raises(TruncatedError):
                zstd_frame_size(lambda o, n: f[o:o + n], 0, len(f) - 1)


def test_zstd_frame_header_errors():
    with pytest.raises(CorruptFrameError):
        zstd_frame_header(b"\x00" * 18)
    with pytest.raises(TruncatedError):
        zstd_frame_header(struct.pack("<I", ZSTD_MAGIC))
    f = bytearray(zstandard.ZstdCompressor().compress(b"abc" * 100))
    f[4] |= 0x08  # reserved bit
    with pytest.raises(CorruptFrameError):
        zstd_frame_header(bytes(f))


# ---- index entries -----------------------------------------------------------------------------

names_st = st.lists(st.tuples(st.integers(1, 2**32 - 1), st.integers(0, 50), st.text(min_size=1, max_size=20)),
                    max_size=5)
chan_st = st.dictionaries(st.integers(0, 2**32 - 1),
                          st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**63), st.floats(), st.floats()),
                          max_size=6)
meta_st = st.lists(st.tuples(st.floats(), st.integers(0, 50), st.binary(max_size=40)), max_size=4)


@settings(max_examples=150, deadline=None)
@given(chan_st, names_st, meta_st, st.integers(0, 2**32 - 1), st.integers(0, 2**63))
def test_index_entry_round_trip(channels, names, meta, frame_no, off):
    e = FrameEntry(frame_no=frame_no, n_records=51, data_offset=off, compressed_size=5, decompressed_size=7,
                   stream_offset=off // 2, t_min=-1.5, t_max=2.5, group=3, channels=channels, names=names,
                   meta=meta)
    kind, got = parse_index_payload(entry_payload(e))
    assert kind == 1 and len(got) == 1
    g = got[0]
    assert g.channels.keys() == channels.keys() and g.names == names and g.frame_no == frame_no
    for k, v in channels.items():
        assert np.array_equal(np.array(g.channels[k][2:]), np.array(v[2:]), equal_nan=True)
    kind, got = parse_index_payload(consolidated_payload([e, e]))
    assert kind == 2 and len(got) == 2


def test_index_payload_detects_damage():
    e = FrameEntry(frame_no=1, n_records=3, channels={1: (2, 16, 0.0, 1.0)}, names=[(1, 0, "a")])
    p = entry_payload(e)
    assert p[:4] == b"FPAX" and p[4] == 1 and p[5] == 1
    for i in range(len(p)):
        bad = bytearray(p)
        bad[i] ^= 0x10
        try:
            kind, got = parse_index_payload(bytes(bad))
        except CorruptFrameError:
            continue
        # only the reserved field is not covered by the CRC
        assert 6 <= i < 8 and got[0] == e
    for cut in range(len(p)):
        with pytest.raises(CorruptFrameError):
            parse_index_payload(p[:cut])
    with pytest.raises(CorruptFrameError):
        parse_index_payload(p + b"x")


# ---- the file ------------------------------------------------------------------------------------

def test_file_layout(tmp_path):
    path = _write(tmp_path / "a.fastpack.zst", _records(5000), frame_size=16384)
    buf = path.read_bytes()
    # index frame, data frame, index frame, data frame ... consolidated index, seek table
    pos = 0
    frames = []
    while pos < len(buf):
        magic, ln = struct.unpack_from("<II", buf, pos)
        if magic == ZSTD_MAGIC:
            size = zstd_frame_size(lambda o, n: buf[o:o + n], pos, len(buf))
            frames.append(("zstd", pos, size))
        else:
            size = 8 + ln
            frames.append((hex(magic), pos, size))
        pos += size
    kinds = [k for k, _, _ in frames]
    assert kinds[-1] == hex(SEEK_TABLE_MAGIC) and kinds[-2] == hex(INDEX_MAGIC)
    assert kinds[:-2] == [hex(INDEX_MAGIC), "zstd"] * ((len(kinds) - 2) // 2)
    n, desc = parse_footer(buf[-9:])
    assert desc == 0 and n == len(frames) - 1
    seek = parse_seek_table(buf[-seek_table_size(n, desc):], n, desc)
    assert [c for c, _ in seek] == [s for _, _, s in frames[:-1]]
    ar = open_archive(path)
    assert ar.complete and len(ar.frames) == (len(frames) - 2) // 2 > 1
    for e, (_k, off, size) in zip(ar.frames, frames[1::2]):
        assert e.data_offset == off and e.compressed_size == size
        assert zstd_frame_header(buf[off:off + 18])[2]  # content checksum present
    ar.close()


def test_zstd_decompression_equals_encoder_stream(tmp_path):
    recs = _records(4000)
    path = _write(tmp_path / "a.fastpack.zst", recs, frame_size=8192)
    with open_archive(path) as ar:
        first_meta = ar.frames[0].meta[0]
    enc = Encoder(namespace=True)
    enc.add(first_meta[0], 0, first_meta[2])
    for r in recs:
        enc.add(*r)
    expected = enc.take()
    # python-zstandard reading across frames (skippable frames ignored)
    with open(path, "rb") as f:
        got = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    assert got == expected
    dec = Decoder(namespace=True)
    dec.feed(got)
    out = list(dec)
    assert out[0].id == 0 and out[0].meta()["fastodin"] == "file"
    assert [(r.time, r.name, bytes(r.payload)) for r in out[1:]] == recs


def test_zstd_cli_decompresses_to_the_encoder_stream(tmp_path):
    if shutil.which("zstd") is None:
        pytest.skip("zstd command line not installed")
    recs = _records(3000)
    path = _write(tmp_path / "a.fastpack.zst", recs, frame_size=4096)
    with open_archive(path) as ar:
        m = ar.frames[0].meta[0]
    enc = Encoder(namespace=True)
    enc.add(m[0], 0, m[2])
    for r in recs:
        enc.add(*r)
    out = subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    assert out == enc.take()
    subprocess.run(["zstd", "-d", "-q", str(path)], check=True)
    raw = tmp_path / "a.fastpack"
    assert raw.read_bytes() == out
    with open_archive(raw) as ar:   # the raw stream opens by content too
        assert ar.format == "fastpack"
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs


def test_multi_group_stream_decodes_with_one_namespace(tmp_path):
    """Camera frames in frames of their own: the concatenation is still one valid stream."""
    path = tmp_path / "cam.fastpack.zst"
    written = {"imu": [], "cam": []}
    with Writer(path, frame_size=4096) as w:
        cam = w.create_stream("cam")
        cam.data_layout.image("image", 32, 16, "grey8")
        cam.config(0.0)
        imu = w.create_stream("imu")
        imu.data_layout.vector3d("acc")
        imu.config(0.0)
        for i in range(400):
            t = i * 0.01
            v = (float(i), 0.0, 1.0)
            imu.data(t, v)
            written["imu"].append((t, np.array(v).tobytes()))
            if i % 10 == 0:
                img = np.full((16, 32), i % 256, np.uint8)
                cam.data(t, img)
                written["cam"].append((t, img.tobytes()))
    with open(path, "rb") as f:
        raw = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    dec = Decoder(namespace=True)
    dec.feed(raw)
    got = {"imu": [], "cam": []}
    ids_defined = {}
    for r in dec:
        if r.name in got:
            got[r.name].append((r.time, bytes(r.payload)))
            ids_defined.setdefault(r.name, r.id)
    assert got == written
    # every id is defined exactly once in the whole stream (the reference would turn a second
    # definition of a known id into a data message)
    plain = Decoder()
    plain.feed(raw)
    seen = set()
    for r in plain:
        if r.id and r.id not in seen:
            seen.add(r.id)
            assert bytes(r.payload).decode() in ("cam", "cam:config", "imu", "imu:config")
    with open_archive(path) as ar:
        cam_frames = {e.frame_no for e in ar.frames if ar.ids["cam"] in e.channels}
        imu_frames = {e.frame_no for e in ar.frames if ar.ids["imu"] in e.channels}
        assert cam_frames and imu_frames and not cam_frames & imu_frames


def test_pyzstd_seekable_reader(tmp_path):
    pyzstd = pytest.importorskip("pyzstd")
    recs = _records(3000)
    path = _write(tmp_path / "a.fastpack.zst", recs, frame_size=4096)
    with open(path, "rb") as f:
        expected = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    with pyzstd.SeekableZstdFile(str(path), "r") as f:
        assert f.read() == expected
        f.seek(len(expected) // 2)
        assert f.read(100) == expected[len(expected) // 2:len(expected) // 2 + 100]
    assert pyzstd.SeekableZstdFile.is_seekable_format_file(str(path))


def test_skippable_frame_helper():
    f = skippable_frame(b"abc")
    assert f == struct.pack("<II", INDEX_MAGIC, 3) + b"abc"
    # zstd ignores it
    z = zstandard.ZstdCompressor().compress(b"hello")
    r = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(f + z + f), read_across_frames=True)
    assert r.read() == b"hello"


def test_not_an_archive_is_a_data_error(tmp_path):
    p = tmp_path / "junk.bin"
    p.write_bytes(b"\xff" * 15 + b"\x7f" * 40)
    with pytest.raises(DataError):
        ar = open_archive(p)
        list(ar.records())


def _perl_env():
    import os

    env = dict(os.environ)
    lib = os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME", "~/.cache")), "fastpack-perl", "perl",
                       "lib", "perl5")
    env["PERL5LIB"] = os.pathsep.join(x for x in (env.get("PERL5LIB"), lib) if x)
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tools", "perl", "fp_decode.pl")
    if shutil.which("perl") is None or not os.path.exists(tool):
        return None, None
    ok = subprocess.run(["perl", "-MData::FastPack", "-e", "1"], env=env, capture_output=True).returncode == 0
    return (env, tool) if ok else (None, None)


def test_perl_reference_decodes_the_archive_stream(tmp_path):
    """By hand / where the reference is built (shared/tools/perl/README.md): the Perl decoder reads
    `zstd -d` of a multi-group archive exactly as our codec does."""
    env, tool = _perl_env()
    if env is None or shutil.which("zstd") is None:
        pytest.skip("Perl Data::FastPack or the zstd CLI not available")
    import json

    p = tmp_path / "perl.fastpack.zst"
    with Writer(p, frame_size=4096) as w:
        w.set_tag("site", "lab")
        cam = w.create_stream("cam")
        cam.data_layout.image("image", 32, 16, "grey8")
        cam.config(0.0)
        for i in range(200):
            w.write(i * 0.01, "imu", struct.pack("<d", i))
            if i % 10 == 0:
                cam.data(i * 0.01, np.full((16, 32), i % 256, np.uint8))
    raw = subprocess.run(["zstd", "-dc", str(p)], check=True, capture_output=True).stdout
    out = subprocess.run(["perl", tool, "ns"], input=raw, env=env, check=True, capture_output=True).stdout
    perl = []
    for line in out.decode().splitlines():
        v = json.loads(line)
        if isinstance(v, dict):
            assert v["leftover"] == 0
            continue
        th, key, ph, meta_ok = v
        name = bytes.fromhex(key[2:]).decode() if key.startswith("n:") else int(key[2:])
        perl.append((struct.unpack("<d", bytes.fromhex(th))[0], name, bytes.fromhex(ph)))
        assert meta_ok in (None, 1)
    dec = Decoder(namespace=True)
    dec.feed(raw)
    assert perl == [(r.time, r.name if r.name is not None else 0, bytes(r.payload)) for r in dec]


def test_plain_zstd_and_foreign_seekable_files_open(tmp_path):
    """A .fastpack compressed by zstd itself (no fastodin index) opens by rebuilding the index."""
    recs = _records(2000)
    enc = Encoder(namespace=True)
    for r in recs:
        enc.add(*r)
    raw = enc.take()
    p = tmp_path / "plain.fastpack.zst"
    p.write_bytes(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw))
    with open_archive(p) as ar:
        # a sound zstd stream without fastodin index: complete as a stream (issue 8 item 18)
        assert ar.format == "zstd" and ar.complete and len(ar.frames) == 1
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs
        assert ar.info()["channels"]["c1"]["count"] == 667
    pyzstd = pytest.importorskip("pyzstd")
    q = tmp_path / "seekable.fastpack.zst"
    with pyzstd.SeekableZstdFile(str(q), "w", max_frame_content_size=4096) as f:
        f.write(raw)
    # frames cut by pyzstd split records: the records that cross frames are read whole
    with open_archive(q) as ar:
        assert ar.format == "zstd" and ar.complete
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs
    out = tmp_path / "fixed.fastpack"
    with pyzstd.SeekableZstdFile(str(q), "r") as f:
        out.write_bytes(f.read())
    with open_archive(out) as ar:
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs
