"""Issue 8 item 13: recover writes OUT under a temporary name and renames it when complete (an
interrupted run leaves nothing that looks finished), counts losses exactly where an index entry
knows them and as "at least N" elsewhere, and saves the whole records at the start of a torn or
damaged frame."""
import os
import shutil
import struct
import subprocess
import sys
import textwrap

import pytest
import zstandard

from .zstd_craft import frames_of

import fastodin
from fastodin import Decoder
from fastodin.archive import Writer, recover
from fastodin.archive.seekable import INDEX_MAGIC, zstd_frame_header
from fastodin.errors import UsageError

ZSTD = 0xFD2FB528


def _crashed(path, n=8000, payload=64):
    """A crashed archive (flushed, never closed) whose last data frame holds several zstd blocks
    of incompressible payloads."""
    rnd = __import__("random").Random(7)
    recs = [(i * 0.001, f"c{i % 3}", bytes(rnd.randrange(256) for _ in range(payload))) for i in range(n)]
    w = Writer(path, frame_size=1 << 20, flush_interval=None)
    w.set_tag("site", "lab")
    for r in recs[:100]:
        w.write(*r)
    w.flush()
    for r in recs[100:]:
        w.write(*r)
    w.flush()
    w.sync()
    data = path.read_bytes()
    w.close()
    path.write_bytes(data)
    return recs


def _after_blocks(data, off, n):
    """File offset right after the first ``n`` blocks of the zstd frame at ``off``."""
    pos = off + zstd_frame_header(data[off:off + 18])[0]
    for _ in range(n):
        bh = int.from_bytes(data[pos:pos + 3], "little")
        pos += 3 + (1 if (bh >> 1) & 3 == 1 else bh >> 3)
    return pos


def test_interrupted_recover_leaves_no_finished_output(tmp_path, monkeypatch):
    """Ctrl-C in the middle of the copy: today OUT is closed by the Writer's context manager, and
    info calls it complete, verify SOUND.  Now OUT does not exist and no temporary file is left."""
    src = tmp_path / "in.fastpack.zst"
    _crashed(src, n=2000)
    out = tmp_path / "out.fastpack.zst"
    calls = {"n": 0}
    real = Writer.write

    def write(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 500:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(Writer, "write", write)
    with pytest.raises(KeyboardInterrupt):
        recover(src, out)
    assert not out.exists() and not os.path.exists(str(out) + ".part")


def test_killed_recover_leaves_no_output_under_the_final_name(tmp_path):
    """SIGKILL in the middle of the copy: OUT itself never appears (only OUT.part, unfinished)."""
    src = tmp_path / "in.fastpack.zst"
    _crashed(src, n=2000)
    out = tmp_path / "out.fastpack.zst"
    code = textwrap.dedent(f"""
        import os, signal
        from fastodin.archive import Writer, recover
        real, n = Writer.write, [0]
        def write(self, *a, **kw):
            n[0] += 1
            if n[0] == 1500:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, *a, **kw)
        Writer.write = write
        recover({str(src)!r}, {str(out)!r})
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert p.returncode == -9, p.stderr
    assert not out.exists()


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    src = tmp_path / "in.fastpack.zst"
    with Writer(src) as w:
        w.write(0.0, "x", b"12345678")
    out = tmp_path / "out.fastpack.zst"
    out.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="exists"):
        recover(src, out)
    assert out.read_bytes() == b"keep me"
    assert recover(src, out, overwrite=True).records_saved == 1
    with fastodin.open(out) as ar:
        assert ar.complete and [bytes(r.payload) for r in ar.records()] == [b"12345678"]


def test_torn_frame_with_index_entry_exact_loss_and_salvaged_prefix(tmp_path):
    """A crashed file cut inside its last data frame after two whole zstd blocks: the records in
    those blocks are saved, the loss is exact (the frame's index entry survived)."""
    src = tmp_path / "in.fastpack.zst"
    recs = _crashed(src)
    with fastodin.open(src) as ar:
        last = ar.frames[-1]
        first_frames = sum(e.data_records for e in ar.frames[:-1])
    data = src.read_bytes()
    off = [f for f in frames_of(data) if f[1] == ZSTD][-1][0]
    pos = _after_blocks(data, off, 2)          # the frame header and two whole blocks
    cut_path = tmp_path / "cut.fastpack.zst"
    cut_path.write_bytes(data[:pos + 10])
    # what zstd itself gets back from the cut frame: the whole records in it are what must be saved
    prefix = zstandard.ZstdDecompressor().stream_reader(data[off:pos + 10]).read()
    dec = Decoder()
    dec.feed(prefix)
    in_prefix = sum(1 for r in dec if r.id != 0)          # the frame's definitions came earlier
    assert in_prefix > 0
    out = tmp_path / "out.fastpack.zst"
    rep = recover(cut_path, out)
    assert rep.records_saved == first_frames + in_prefix
    assert rep.records_salvaged == in_prefix
    assert rep.records_lost == last.data_records - in_prefix and rep.lost[0]["records"] == rep.records_lost
    assert rep.records_saved + rep.records_lost == len(recs)
    with fastodin.open(out) as ar:
        got = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
        assert ar.tags == {"site": "lab"} and ar.complete
    assert got == recs[:rep.records_saved]


def test_torn_frame_without_index_entry_loss_is_at_least(tmp_path):
    """The same cut, with the last frame's index frame destroyed: what is lost is unknown, the
    report says "at least 1" (the record the cut went through), never a made-up number."""
    src = tmp_path / "in.fastpack.zst"
    recs = _crashed(src)
    data = bytearray(src.read_bytes())
    fr = frames_of(bytes(data))
    idx = [f for f in fr if f[1] == INDEX_MAGIC][-1]
    data[idx[0] + 8:idx[0] + 12] = b"XXXX"          # no FPAX tag: not an index entry any more
    cut = bytes(data[:len(data) - 5000])
    p = tmp_path / "cut.fastpack.zst"
    p.write_bytes(cut)
    out = tmp_path / "out.fastpack.zst"
    rep = recover(p, out)
    assert rep.records_lost is None and rep.records_lost_min >= 1
    assert rep.lost[-1]["records"] is None and rep.lost[-1]["at_least"] >= 1
    assert "at least" in str(rep)
    with fastodin.open(out) as ar:
        got = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
    assert got == recs[:len(got)] and len(got) == rep.records_saved and len(got) > 100
    cli = subprocess.run([sys.executable, "-m", "fastodin", "recover", str(p), str(tmp_path / "o2.fastpack.zst")],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and "lost:  at least" in cli.stdout, cli.stdout


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    out = d / "demo.fastpack.zst"
    p = subprocess.run([sys.executable, "-m", "fastodin", "demo", "-o", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


def _data_records(stream: bytes) -> int:
    """Whole data records in a (cut) FastPack stream: definitions and writer metadata excluded."""
    dec = Decoder(namespace=True)
    dec.feed(stream)
    return sum(1 for r in dec if r.id != 0 or not bytes(r.payload).startswith(b'{"fastodin":'))


def test_demo_archive_cut_at_3000_bytes(demo_archive, tmp_path):
    """The demo archive cut at 3,000 bytes: its first zstd block is ~78 KB, so no data record is
    decodable (zstd -dc gives 0 bytes too).  What is present whole is its index frame: the file's
    tags and stream definitions are saved, and the loss is exact (from that index entry)."""
    data = demo_archive.read_bytes()
    with fastodin.open(demo_archive) as ar:
        total = ar.info()["records"]
        tags, streams = ar.tags, set(ar.streams)
    p = tmp_path / "cut3000.fastpack.zst"
    p.write_bytes(data[:3000])
    prefix = zstandard.ZstdDecompressor().stream_reader(data[frames_of(data)[1][0]:3000]).read()
    out = tmp_path / "saved.fastpack.zst"
    rep = recover(p, out)
    assert rep.records_saved == _data_records(prefix) and rep.records_lost == total - rep.records_saved
    with fastodin.open(out) as ar:
        assert ar.complete and ar.tags == tags and set(ar.streams) == streams


def test_demo_archive_cut_after_its_first_block(demo_archive, tmp_path):
    """Cut at 100,000 bytes (the first block is whole): every whole record zstd decodes is saved,
    and saved + lost is the archive's record count."""
    data = demo_archive.read_bytes()
    with fastodin.open(demo_archive) as ar:
        total = ar.info()["records"]
        recs = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
    p = tmp_path / "cut100k.fastpack.zst"
    p.write_bytes(data[:100_000])
    start = frames_of(data)[1][0]
    prefix = zstandard.ZstdDecompressor().stream_reader(data[start:100_000]).read()
    if shutil.which("zstd"):
        cli = subprocess.run(["zstd", "-dc"], input=data[:100_000], capture_output=True).stdout
        assert cli == prefix
    out = tmp_path / "saved.fastpack.zst"
    rep = recover(p, out)
    assert rep.records_saved == _data_records(prefix) > 0
    assert rep.records_saved + rep.records_lost == total
    with fastodin.open(out) as ar:
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs[:rep.records_saved]


def test_damaged_frame_in_the_middle_saves_its_decodable_start(tmp_path):
    """A closed archive whose middle frame has a broken third block: the records of its first two
    blocks are saved, the loss is exact, every other frame is copied."""
    src = tmp_path / "in.fastpack.zst"
    rnd = __import__("random").Random(9)
    recs = [(i * 0.001, f"c{i % 3}", bytes(rnd.randrange(256) for _ in range(64))) for i in range(24000)]
    with Writer(src, frame_size=640 << 10, flush_interval=None) as w:
        for r in recs:
            w.write(*r)
    with fastodin.open(src) as ar:
        k = max(range(1, len(ar.frames) - 1), key=lambda j: ar.frames[j].decompressed_size)
        mid = ar.frames[k]
        before = sum(e.data_records for e in ar.frames[:k])
    assert mid.decompressed_size > 3 << 17
    data = bytearray(src.read_bytes())
    off = mid.data_offset
    third = _after_blocks(bytes(data), off, 2)
    data[third] |= 0x06                      # block type 3: reserved, undecodable
    prefix = zstandard.ZstdDecompressor().stream_reader(bytes(data[off:third])).read()
    dec = Decoder()
    dec.feed(prefix)
    in_prefix = sum(1 for _ in dec)          # the frame's definitions came earlier
    p = tmp_path / "bad.fastpack.zst"
    p.write_bytes(bytes(data))
    rep = recover(p, tmp_path / "out.fastpack.zst")
    assert rep.records_salvaged == in_prefix > 0
    assert rep.records_lost == mid.data_records - in_prefix
    assert rep.records_saved + rep.records_lost == len(recs)
    with fastodin.open(tmp_path / "out.fastpack.zst") as ar:
        got = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
    lost = set(range(before + in_prefix, before + mid.data_records))
    assert got == [r for j, r in enumerate(recs) if j not in lost]


def test_frame_with_a_bad_checksum_is_lost_whole(tmp_path):
    """A content-checksum mismatch says some byte of the frame is wrong, not which: nothing of it
    is saved (never a record with a wrong payload); the loss is exact, the other frames copied."""
    src = tmp_path / "in.fastpack.zst"
    recs = [(i * 0.01, f"c{i % 3}", struct.pack("<Q", i)) for i in range(3000)]
    with Writer(src, frame_size=8192, flush_interval=None) as w:
        for r in recs:
            w.write(*r)
    with fastodin.open(src) as ar:
        mid = ar.frames[len(ar.frames) // 2]
    data = bytearray(src.read_bytes())
    data[mid.data_offset + mid.compressed_size - 1] ^= 0x01       # the checksum's last byte
    p = tmp_path / "bad.fastpack.zst"
    p.write_bytes(bytes(data))
    rep = recover(p, tmp_path / "out.fastpack.zst")
    assert rep.records_salvaged == 0 and rep.records_lost == mid.data_records
    with fastodin.open(tmp_path / "out.fastpack.zst") as ar:
        got = [(r.time, r.name, bytes(r.payload)) for r in ar.records()]
    assert got == [r for r in recs if not mid.t_min <= r[0] <= mid.t_max]
