"""Every claim of README "Reading archives with other tools" (issue 8 item 20): each tool and call
named there gives back exactly the archive's FastPack stream (the records written, names and
metadata included, in one namespace), and the one call named as not working does not."""
import shutil
import subprocess

import pytest
import zstandard

from fastodin import Decoder
from fastodin.archive import Writer, open_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A closed archive of several frames and two frame groups, with tags; and its stream."""
    path = tmp_path_factory.mktemp("tools") / "a.fastpack.zst"
    recs = []
    with Writer(path, frame_size=4096, flush_interval=None) as w:
        w.set_tag("site", "lab")
        for i in range(2000):
            r = (i * 0.01, f"c{i % 3}", bytes([i % 251]) * (8 + i % 13))
            w.write(*r)
            recs.append(r)
            if i % 50 == 0:
                big = (i * 0.01, "big", bytes(5000))   # >= large_payload: a group of its own
                w.write(*big)
                recs.append(big)
    with open_archive(path) as ar:
        assert len(ar.frames) > 4
    # the stream in file order, as zstd gives it back, decoded by our codec
    with open(path, "rb") as f:
        stream = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    dec = Decoder(namespace=True)
    dec.feed(stream)
    got = [(r.time, r.name, bytes(r.payload)) for r in dec if r.id or not bytes(r.payload).startswith(b'{"fastodin":')]
    assert sorted(got) == sorted(recs) and not dec.buffered
    return path, stream


def test_zstd_cli(archive, tmp_path):
    if shutil.which("zstd") is None:
        pytest.skip("zstd command line not installed")
    path, stream = archive
    assert subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout == stream
    out = tmp_path / "a.fastpack"
    subprocess.run(["zstd", "-d", "-q", str(path), "-o", str(out)], check=True)
    assert out.read_bytes() == stream


def test_python_zstandard_stream_reader(archive):
    path, stream = archive
    with open(path, "rb") as f:
        assert zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read() == stream


def test_python_zstandard_decompressobj(archive):
    path, stream = archive
    try:
        obj = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    except TypeError:
        pytest.skip("python-zstandard < 0.22: decompressobj has no read_across_frames")
    assert obj.decompress(path.read_bytes()) == stream


def test_python_zstandard_open(archive):
    path, stream = archive
    with zstandard.open(path, "rb") as f:
        assert f.read() == stream


def test_python_zstandard_one_shot_decompress_does_not(archive):
    """ZstdDecompressor().decompress() reads one frame, and the first frame is an index frame
    (skippable): it raises (README says so)."""
    path, _stream = archive
    with pytest.raises(zstandard.ZstdError):
        zstandard.ZstdDecompressor().decompress(path.read_bytes())
    # and a single-frame decompressobj stops after the first (empty) frame
    assert zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()) == b""


def test_pyzstd(archive):
    pyzstd = pytest.importorskip("pyzstd")
    path, stream = archive
    assert pyzstd.decompress(path.read_bytes()) == stream
    with pyzstd.ZstdFile(str(path)) as f:
        assert f.read() == stream
    with pyzstd.SeekableZstdFile(str(path)) as f:
        assert f.read() == stream
        f.seek(len(stream) // 3)
        assert f.read(1000) == stream[len(stream) // 3:len(stream) // 3 + 1000]
    assert pyzstd.SeekableZstdFile.is_seekable_format_file(str(path))



def test_readme_names_only_tested_calls():
    """Each call in the README table of other tools appears in this file (so each claim has its
    test), and the call named as not working is the one tested to fail."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    section = readme.split("### Reading archives with other tools", 1)[1].split("\n## ", 1)[0]
    here = pathlib.Path(__file__).read_text()
    calls = [c for row in section.splitlines() if row.startswith("| ") and not row.startswith("| tool")
             for c in re.findall(r"`([^`]+)`", row)]
    assert len(calls) >= 8
    for c in calls:
        if c.endswith(".py::test_perl_reference_decodes_the_archive_stream"):
            assert "def test_perl_reference_decodes_the_archive_stream" in (root / c.split("::")[0]).read_text()
            continue
        words = [w for w in re.findall(r"[A-Za-z_][A-Za-z_0-9.]*(?:=True)?", c) if w not in ("f", "data", "path", "NAME.fastpack.zst", "NAME.fastpack", "rb")]
        for w in words:
            assert w.split(".")[-1] in here, (c, w)
    assert "ZstdDecompressor().decompress(data)" in section and "def test_python_zstandard_one_shot_decompress_does_not" in here
