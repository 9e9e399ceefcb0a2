"""Hostile JPack input: deflate bombs and endless headers cost bounded memory and time (child process
with a memory ceiling; its own peak RSS is measured)."""
import base64
import os
import zlib

from fastodin.jpack._format import FOOTER, header

MiB = 1 << 20
ZERO = "0" * 32


def bomb_tree(root, inflated: int, copies: int = 1) -> int:
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = z.compress(bytes(inflated)) + z.flush()
    d = os.path.join(root, "data", "jpack", ZERO)
    os.makedirs(d)
    body = header("deflate", 0, 0, "x") + base64.b64encode(raw) + FOOTER
    for k in range(copies):
        with open(os.path.join(d, f"{k:032x}.jpack"), "wb") as f:
            f.write(body)
    return len(body)


def test_deflate_bomb_is_refused_cheaply(tmp_path, bounded):
    """~400 KB of .jpack files that inflate to 4 x 100 MiB: each is refused after 64 MiB (the limit),
    memory stays small, and the message names the file and the limit."""
    size = bomb_tree(str(tmp_path / "t"), 100 * MiB, copies=4)
    assert size < 150_000
    r = bounded.cli("info", str(tmp_path / "t"), timeout=60)
    assert not r.timed_out and r.returncode == 1, r.text
    assert "inflates to more than 67108864 bytes" in r.text and ".jpack" in r.text
    assert r.peak_rss < 100 * MiB, r.peak_rss


def test_few_kb_bomb_costs_megabytes(tmp_path, bounded):
    """A 5 KB file inflating to its limit-free size (5 MiB of zero records) opens with bounded cost."""
    size = bomb_tree(str(tmp_path / "t"), 5 * MiB)
    assert size < 10_000
    r = bounded.cli("info", str(tmp_path / "t"), timeout=60)
    assert not r.timed_out and r.returncode == 0, r.text
    assert r.peak_rss < 200 * MiB, r.peak_rss


def test_endless_options_object(tmp_path, bounded):
    """A 50 MB file whose options object never ends: refused after 64 KiB, not read whole."""
    d = tmp_path / "t" / "data" / "jpack" / ZERO
    d.mkdir(parents=True)
    with open(d / f"{0:032x}.jpack", "wb") as f:
        f.write(b"chunkLoader.decodeData({" + b"a:1, " * (10 * MiB))
    r = bounded.cli("info", str(tmp_path / "t"), timeout=60)
    assert not r.timed_out and r.returncode == 1 and "does not end within the first 65536 bytes" in r.text, r.text
    assert r.peak_rss < 80 * MiB, r.peak_rss


def test_huge_base64_streams(tmp_path, bounded):
    """A 64 MB "none" chunk (one record of 48 MB) is decoded in pieces: memory far below its size."""
    import struct

    payload_len = 48 * MiB
    d = tmp_path / "t" / "data" / "jpack" / ZERO
    d.mkdir(parents=True)
    rec = struct.pack("<dII", 1.0, 0, payload_len) + b"{" + b" " * (payload_len - 2) + b"}"
    with open(d / f"{0:032x}.jpack", "wb") as f:
        f.write(header("none", 0, 0, "x") + base64.b64encode(rec) + FOOTER)
    del rec
    r = bounded.python(f"import fastodin; ar = fastodin.open({str(tmp_path / 't')!r}); "
                       "print(ar.info()['records'], ar.damage)", timeout=120)
    assert r.returncode == 0 and r.stdout.split()[0] == b"1", r.text
    assert r.peak_rss < 100 * MiB, r.peak_rss      # reading the file whole would take 64 + 48 MB more
