"""Issue 8 item 7: random-access reading (``fastodin.open``/``Archive`` and every CLI command that
opens a file for random access) refuses what is not a regular file at once -- a FIFO (which
blocked forever), a device (``/dev/zero`` read as "complete, 0 B"), a ``/proc`` or ``/sys``
pseudo-file, a directory -- with NotSeekableError (an OSError) / exit 3 and one clear line.

Each case runs in a child with a time limit, so a regression fails instead of hanging the suite."""
import os
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")

PROC = "/proc/self/status"
SYS = "/sys/kernel/mm/transparent_hugepage/enabled"


@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "rec.fastpack.zst"
    os.mkfifo(p)
    return str(p)


def _specials(fifo):
    out = [("FIFO", fifo), ("character device", "/dev/zero")]
    if os.path.exists(PROC) and os.stat(PROC).st_size == 0:
        out.append(("pseudo-file (/proc?)", PROC))
    if os.path.exists(SYS) and os.stat(SYS).st_size == 4096:
        out.append(("pseudo-file (/sys?)", SYS))
    return out


def test_api_refuses_non_regular_files_at_once(bounded, fifo, tmp_path):
    code = ("import sys, time, fastodin\n"
            "for p in sys.argv[1:]:\n"
            "    t = time.perf_counter()\n"
            "    try:\n"
            "        fastodin.open(p)\n"
            "        print('OPENED', p)\n"
            "    except fastodin.NotSeekableError as e:\n"
            "        assert isinstance(e, OSError) and e.filename == p, e\n"
            "        print(round(time.perf_counter() - t, 3), e)\n")
    paths = [p for _, p in _specials(fifo)]
    r = bounded([sys.executable, "-c", code, *paths], timeout=20)
    assert not r.timed_out and r.returncode == 0, r.text
    lines = r.stdout.decode().splitlines()
    assert len(lines) == len(paths) and not any(x.startswith("OPENED") for x in lines), lines
    for (kind, _), line in zip(_specials(fifo), lines):
        took, msg = line.split(" ", 1)
        assert float(took) < 1.0 and kind in msg, line


def test_archive_refuses_a_directory(tmp_path):
    """fastodin.open reads a directory as a JPack tree; the Archive class itself needs a file."""
    import fastodin

    with pytest.raises(fastodin.NotSeekableError, match="is a directory") as e:
        fastodin.Archive(tmp_path)
    assert isinstance(e.value, OSError) and e.value.errno == __import__("errno").EISDIR


def test_recover_api_refuses_a_fifo(bounded, fifo, tmp_path):
    code = ("import sys, fastodin\n"
            "try:\n"
            "    fastodin.recover(sys.argv[1], sys.argv[2])\n"
            "except fastodin.NotSeekableError as e:\n"
            "    print('refused', e)\n")
    r = bounded([sys.executable, "-c", code, fifo, str(tmp_path / "out.fastpack.zst")], timeout=20)
    assert not r.timed_out and r.stdout.startswith(b"refused"), r.text


COMMANDS = [["info", "{f}"], ["info", "{f}", "--json"], ["cat", "{f}"], ["export", "{f}", "-o", "{d}/x", "--csv"],
            ["replay", "{f}", "--stdout", "--speed", "0"], ["convert", "{f}", "{d}/c.fastpack.zst"],
            ["convert", "{f}", "{d}/c.fastpack", "--to", "fastpack"], ["verify", "{f}"],
            ["recover", "{f}", "{d}/r.fastpack.zst"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(x for x in a if "{" not in x) for a in COMMANDS])
def test_cli_refuses_a_fifo_with_exit_3(bounded, fifo, tmp_path, argv):
    t = time.monotonic()
    r = bounded.cli(*[a.format(f=fifo, d=tmp_path) for a in argv], timeout=20)
    assert not r.timed_out, "blocked on the FIFO"
    assert time.monotonic() - t < 10
    assert r.returncode == 3, r.text
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "FIFO" in err[0] and "not a regular file" in err[0], err
    assert "internal error" not in r.text


@pytest.mark.parametrize("cmd", ["info", "cat", "verify"])
def test_cli_refuses_devices_and_pseudo_files(bounded, fifo, cmd):
    for kind, path in _specials(fifo)[1:]:
        r = bounded.cli(cmd, path, timeout=20)
        assert not r.timed_out and r.returncode == 3, (path, r.text)
        assert "complete" not in r.text and kind in r.text, (path, r.text)


def test_regular_files_still_open(tmp_path):
    import fastodin

    p = tmp_path / "empty.fastpack"
    p.write_bytes(b"")
    with fastodin.open(p) as ar:
        assert ar.size == 0 and ar.info()["records"] == 0
    with fastodin.Writer(tmp_path / "a.fastpack.zst") as w:
        w.write(1.0, "x", b"abc")
    with fastodin.open(tmp_path / "a.fastpack.zst") as ar:
        assert ar.complete and ar.info()["records"] == 1


def test_a_failed_open_never_closes_another_files_descriptor(tmp_path):
    """Archive.__init__ closed its descriptor on failure but kept the number, so __del__ closed it
    again later -- by then another file's (a Writer's close then failed with EBADF)."""
    import gc

    import fastodin

    for _ in range(3):
        try:
            fastodin.Archive(tmp_path)            # a directory: refused after the open
        except fastodin.NotSeekableError as e:
            del e
        r, w = os.pipe()                          # likely takes the number just closed
        gc.collect()                              # the failed Archive is collected here
        os.write(w, b"x")                         # EBADF if __del__ closed it
        assert os.read(r, 1) == b"x"
        os.close(r)
        os.close(w)
