"""Issue 8 item 2: zstd bombs.  Every zstd frame is decompressed with an output cap of
min(declared size, index size, max_frame_size); a frame without index entry is decoded and
scanned in pieces, so the scan costs a small multiple of a piece, not of the frame.  Each case runs
in a child process whose peak RSS is read (tests/hostile/conftest.py)."""
import json
import struct
import sys

import pytest
import zstandard

from .zstd_craft import archive_of, rle_frame

import fastodin
from fastodin.archive.index import FrameEntry
from fastodin.errors import LimitError

GiB = 1 << 30
RSS_LIMIT = 512 << 20      # the ceiling (tests/hostile/conftest.py)

OPEN_ALL = """
import json, sys, fastodin
from fastodin.errors import DataError
try:
    with fastodin.open(sys.argv[1]) as ar:
        n = sum(1 for _ in ar.records())
        out = {"ok": True, "records": n, "info": ar.info()["records"], "format": ar.format}
except DataError as e:
    out = {"ok": False, "type": type(e).__name__, "msg": str(e), "limit": e.limit, "offset": e.offset}
print(json.dumps(out))
"""


def _run(bounded, path, timeout=120.0):
    r = bounded([sys.executable, "-c", OPEN_ALL, str(path)], timeout=timeout)
    assert r.returncode == 0 and not r.timed_out, r.text
    return json.loads(r.stdout), r


def test_frame_without_content_size_stops_at_max_frame_size(bounded, tmp_path):
    """100 KB of RLE blocks, no declared size, no index: 3 GiB of content.  Today it inflates
    entirely; it must stop at max_frame_size (LimitError naming it) without holding the output."""
    p = tmp_path / "nosize.fastpack.zst"
    p.write_bytes(rle_frame(25000))            # 25000 x 128 KiB = 3.05 GiB
    got, r = _run(bounded, p)
    assert got["ok"] is False and got["type"] == "LimitError" and got["limit"] == GiB, got
    assert "max_frame_size" in got["msg"] and "offset 0" in got["msg"]
    assert r.peak_rss <= RSS_LIMIT, r.peak_rss
    rec = bounded.cli("recover", str(p), str(tmp_path / "out.fastpack.zst"))
    assert rec.returncode == 1 and "Traceback" not in rec.text and rec.peak_rss <= RSS_LIMIT, rec.text


def _entry_saying_16_bytes():
    # one record of channel 1 with an empty payload: 16 bytes (the counts add up)
    return FrameEntry(n_records=1, decompressed_size=16, t_min=0.0, t_max=0.0, channels={1: (1, 0, 0.0, 0.0)})


def test_index_entry_size_caps_the_output(bounded, tmp_path):
    """An index entry saying 16 bytes before a frame without declared size that inflates to 2 GiB:
    the output is capped at 16 (+1) bytes, the error names the frame, nothing big is allocated."""
    bomb = rle_frame(16384)                   # 2 GiB
    for complete in (False, True):            # scanned (crashed file) and through the seek table
        p = tmp_path / f"capped-{complete}.fastpack.zst"
        p.write_bytes(archive_of([(_entry_saying_16_bytes(), bomb)], complete=complete))
        got, r = _run(bounded, p)
        assert got["ok"] is False and got["type"] == "CorruptFrameError", got
        assert "frame 0" in got["msg"] and "16" in got["msg"], got
        assert r.peak_rss <= RSS_LIMIT, (complete, r.peak_rss)


def test_frame_declaring_a_gib_scans_in_bounded_memory(bounded, tmp_path):
    """A 32 KB frame declaring (and holding) 1 GiB of zeros, no index: 67M reset records.  The scan
    decodes it in pieces: memory stays far below the frame size."""
    p = tmp_path / "gib.fastpack.zst"
    p.write_bytes(rle_frame(8192, content_size=GiB))
    got, r = _run(bounded, p)
    assert got == {"ok": True, "records": 0, "info": 0, "format": "zstd"}, got
    assert r.peak_rss <= RSS_LIMIT, r.peak_rss


def _gib_of_records(path):
    """A 1 GiB frame (declared size) of one channel of 24-byte records, no index (~100 KB file)."""
    head = struct.pack("<dII", 0.0, 1, 1) + b"x" + b"\0" * 7          # definition: id 1 = "x"
    rec = struct.pack("<dII", 1.0, 1, 8) + b"abcdefgh"
    n = (GiB - len(head)) // len(rec)
    co = zstandard.ZstdCompressor(level=1, write_content_size=True).compressobj(size=len(head) + n * len(rec))
    chunk = rec * (1 << 16)
    parts = [co.compress(head)]
    left = n
    while left:
        k = min(left, 1 << 16)
        parts.append(co.compress(chunk[:k * len(rec)]))
        left -= k
    parts.append(co.flush())
    path.write_bytes(b"".join(parts))
    return n


def test_gib_frame_of_records_info_and_verify_in_bounded_memory(bounded, tmp_path):
    """A real 1 GiB frame of 44.7M records: verify (the scan that indexes it, then every record
    checked) works through it piece by piece."""
    p = tmp_path / "gibdata.fastpack.zst"
    n = _gib_of_records(p)
    v = bounded.cli("verify", str(p), timeout=300)
    assert v.returncode == 0 and "SOUND" in v.text and f"{n} records" in v.text, v.text
    assert v.peak_rss <= RSS_LIMIT, v.peak_rss


def test_limit_is_exact_for_frames_without_content_size(tmp_path):
    """Content of exactly max_frame_size is read; one block more is a LimitError (not a frame
    silently cut at the limit)."""
    limit = 4 << 17
    ok = tmp_path / "ok.fastpack.zst"
    ok.write_bytes(rle_frame(4))
    with fastodin.open(ok, max_frame_size=limit) as ar:
        assert ar.format == "zstd" and ar.complete and sum(e.n_records for e in ar.frames) == limit // 16
    over = tmp_path / "over.fastpack.zst"
    over.write_bytes(rle_frame(5))
    with pytest.raises(LimitError) as info:
        fastodin.open(over, max_frame_size=limit)
    assert info.value.limit == limit
