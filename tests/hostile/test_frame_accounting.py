"""Issue 8 items 3 and 8: counts and sizes of index entries are never trusted beyond what can be
checked (counts add up and fit the decompressed size, which fits what zstd can expand the frame's
bytes to), and a data frame must consume exactly the bytes its entry gives it."""
import json
import struct
import subprocess
import sys

import pytest

from .zstd_craft import frames_of

import fastodin
from fastodin.archive import Writer, recover
from fastodin.archive.index import (KIND_CONSOLIDATED, consolidated_payload, entry_payload,
                                    parse_index_payload)
from fastodin.archive.seekable import INDEX_MAGIC, SEEK_TABLE_MAGIC, build_seek_table, skippable_frame
from fastodin.errors import CorruptFrameError

RSS_LIMIT = 512 << 20      # the ceiling (tests/hostile/conftest.py)
ZSTD = 0xFD2FB528


def _archive(path, n=100, frame_size=None):
    kw = {"frame_size": frame_size} if frame_size else {}
    recs = [(i * 0.01, "x", struct.pack("<Q", i)) for i in range(n)]
    with Writer(path, flush_interval=None, **kw) as w:
        for r in recs:
            w.write(*r)
    return recs


def _patch_index(data: bytes, mutate) -> bytes:
    """Apply ``mutate(entry)`` to every per-frame entry and every consolidated entry (CRCs redone);
    the serialized sizes must not change."""
    out = bytearray(data)
    for off, magic, size in frames_of(data):
        if magic != INDEX_MAGIC:
            continue
        kind, entries = parse_index_payload(data[off + 8:off + size])
        for e in entries:
            mutate(e)
        new = consolidated_payload(entries) if kind == KIND_CONSOLIDATED else entry_payload(entries[0])
        assert len(new) == size - 8
        out[off + 8:off + size] = new
    return bytes(out)


SHOW = """
import json, sys, fastodin
with fastodin.open(sys.argv[1]) as ar:
    cols = ar.columns()
    info = ar.info()
    print(json.dumps({"rows": {k: int(v[0].shape[0]) for k, v in cols.items()}, "records": info["records"],
                      "count": info["channels"]["x"]["count"], "complete": ar.complete, "notes": ar.notes}))
"""


@pytest.mark.parametrize("tail", [True, False], ids=["complete", "crashed"])
def test_channel_count_of_0xffffffff_is_not_trusted(bounded, tmp_path, tail):
    """A CRC-valid entry saying count=0xFFFFFFFF: columns() preallocated 32 GiB (raw numpy
    MemoryError) and info printed 4,294,967,xxx records.  Now the entry is rejected (its counts do not
    add up), the frame is indexed from its data, and every number is the real one."""
    src = tmp_path / "a.fastpack.zst"
    recs = _archive(src)
    data = _patch_index(src.read_bytes(), lambda e: e.channels.update({1: (0xFFFFFFFF,) + e.channels[1][1:]}))
    if not tail:      # a crashed file: per-frame index only
        data = data[:frames_of(data)[-2][0]]
    p = tmp_path / "b.fastpack.zst"
    p.write_bytes(data)
    r = bounded([sys.executable, "-c", SHOW, str(p)])
    assert r.returncode == 0, r.text
    got = json.loads(r.stdout)
    assert got["rows"] == {"x": len(recs)} and got["records"] == len(recs) and got["count"] == len(recs)
    assert not got["complete"] and any("channel counts" in n for n in got["notes"]), got["notes"]
    assert r.peak_rss <= RSS_LIMIT
    info = bounded.cli("info", str(p)).text.splitlines()
    assert any(ln.startswith(f"records:  {len(recs)} in 1 channel") for ln in info), info
    assert not [ln for ln in info if not ln.startswith("note:") and "4294967" in ln.replace(",", "")], info
    assert bounded.cli("verify", str(p)).returncode == 1


def test_consistent_counts_beyond_what_the_frame_can_expand_to(tmp_path):
    """Counts that add up (67M records of 16 bytes = 1 GiB) from a frame of a few hundred bytes:
    zstd cannot expand that much, so the entry is rejected, also through the seek table."""
    src = tmp_path / "a.fastpack.zst"
    recs = _archive(src, n=3)
    data = src.read_bytes()
    big = 1 << 26

    def lie(e):
        e.n_records = big + len(e.names) + len(e.meta)
        e.channels = {1: (big, 0, e.t_min, e.t_max)}
        e.decompressed_size = 16 * e.n_records + sum(len(m[2]) for m in e.meta) + sum(len(n[2]) for n in e.names)
        lie.dsize = e.decompressed_size

    data = _patch_index(data, lie)
    fr = frames_of(data)
    seek = [(size, 0) if magic != ZSTD else (size, lie.dsize) for _off, magic, size in fr[:-1]]
    data = data[:fr[-1][0]] + build_seek_table(seek)
    p = tmp_path / "b.fastpack.zst"
    p.write_bytes(data)
    with fastodin.open(p) as ar:
        assert ar.info()["records"] == 3 and not ar.complete
        assert any("expands at most" in n for n in ar.notes), ar.notes
        assert [bytes(r.payload) for r in ar.records()] == [r[2] for r in recs]


def _hiding_file(tmp_path):
    """A complete archive of two frames whose first index entry's compressed size also covers the
    second frame (index frame included); consolidated index and seek table agree with the lie."""
    src = tmp_path / "two.fastpack.zst"
    recs = []
    with Writer(src, flush_interval=None) as w:
        for i in range(200):
            recs.append((i * 0.01, "x", struct.pack("<Q", i)))
            w.write(*recs[-1])
            if i == 99:
                w.flush()
    data = src.read_bytes()
    fr = frames_of(data)
    (i0, _, s_i0), (d0, _, s_d0), (i1, _, s_i1), (d1, _, s_d1), (cons, _, _), (_st, m, _) = fr
    assert m == SEEK_TABLE_MAGIC
    hidden = s_d0 + s_i1 + s_d1
    kind, entries = parse_index_payload(data[cons + 8:fr[4][0] + fr[4][2]])
    e0 = entries[0]
    e0.compressed_size = hidden
    out = bytearray(data[:cons])
    out[i0 + 8:i0 + s_i0] = entry_payload(e0)
    out += skippable_frame(consolidated_payload([e0]), INDEX_MAGIC)
    out += build_seek_table([(s_i0, 0), (hidden, e0.decompressed_size), (len(out) - cons, 0)])
    p = tmp_path / "hide.fastpack.zst"
    p.write_bytes(bytes(out))
    return p, recs, e0


def test_entry_covering_the_next_frame_is_damage(tmp_path):
    """Today the file opens complete with one frame and the second frame's 100 records are silently
    gone (recover: 'lost 0').  Now reading frame 0 fails (bytes unaccounted for), verify fails, and
    recover, which trusts no index, saves every record."""
    p, recs, e0 = _hiding_file(tmp_path)
    with fastodin.open(p) as ar:
        with pytest.raises(CorruptFrameError, match="unaccounted") as info:
            list(ar.records())
        assert "frame 0" in str(info.value) and info.value.offset == e0.data_offset
    v = subprocess.run([sys.executable, "-m", "fastodin", "verify", str(p)], capture_output=True, text=True)
    assert v.returncode == 1 and "unaccounted" in v.stdout, v.stdout
    out = tmp_path / "saved.fastpack.zst"
    rep = recover(p, out)
    assert rep.records_saved == len(recs) and rep.records_lost == 0
    with fastodin.open(out) as ar:
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs


def test_entry_covering_the_next_frame_in_a_crashed_file(tmp_path):
    """The same lie in a crashed file (no tail): the scan sizes the frame by its block headers,
    ignores the entry (a note says so), rebuilds frame 0 from its data and finds frame 1."""
    p, recs, _ = _hiding_file(tmp_path)
    data = p.read_bytes()
    fr = frames_of(data)
    q = tmp_path / "crashed.fastpack.zst"
    q.write_bytes(data[:fr[-2][0]])
    with fastodin.open(q) as ar:
        assert [(r.time, r.name, bytes(r.payload)) for r in ar.records()] == recs
        assert any("entry ignored" in n for n in ar.notes), ar.notes
        assert len(ar.frames) == 2


def test_frame_followed_by_bytes_its_entry_claims(tmp_path):
    """An entry whose compressed size runs 40 bytes past its frame into garbage (a crashed file):
    the frame is sized by its block headers, the 40 bytes are damage, never part of the frame."""
    src = tmp_path / "a.fastpack.zst"
    recs = _archive(src, n=20)
    data = src.read_bytes()
    fr = frames_of(data)
    (i0, _, s_i0), (d0, _, s_d0) = fr[0], fr[1]
    kind, (e,) = parse_index_payload(data[i0 + 8:i0 + s_i0])
    e.compressed_size += 40
    junk = bytes(range(40))
    p = tmp_path / "junk.fastpack.zst"
    p.write_bytes(data[:i0 + 8] + entry_payload(e) + data[d0:d0 + s_d0] + junk)
    with pytest.raises(CorruptFrameError, match="unknown bytes") as info:
        fastodin.open(p)
    assert info.value.offset == d0 + s_d0
    rep = recover(p, tmp_path / "saved.fastpack.zst")
    assert rep.records_saved == len(recs) and [x["offset"] for x in rep.lost] == [d0 + s_d0]


def test_failed_open_never_closes_another_file_later(tmp_path):
    """An open that raises closed its descriptor but kept the number: when the half-built Archive
    was collected, __del__ closed that number again — by then another file's (seen as a Writer
    dying with 'Bad file descriptor' in the middle of recover)."""
    import gc
    import os

    bad = tmp_path / "bad.fastpack.zst"
    bad.write_bytes(struct.pack("<I", ZSTD) + b"\xff" * 60)
    with pytest.raises(CorruptFrameError) as info:      # keeps the traceback, hence the Archive
        fastodin.open(bad)
    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    fd = os.open(other, os.O_RDONLY)     # the lowest free number: the one the failed open had
    try:
        del info
        gc.collect()
        os.fstat(fd)
    finally:
        os.close(fd)
