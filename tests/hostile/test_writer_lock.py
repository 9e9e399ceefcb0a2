"""Issue 8 item 10: one writer per file (an exclusive lock for the writer's lifetime), and an existing
output is refused unless overwrite=True / --force, on the API and on every command that writes an archive."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from fastodin.archive.lock import writer_alive
from fastodin.archive.reader import open_archive
from fastodin.archive.writer import Writer
from fastodin.cli.verify import verify
from fastodin.errors import ArchiveLockedError, OutputExistsError

N = 60_000


def _fo(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fastodin", *map(str, args)], capture_output=True, text=True,
                          timeout=120, **kw)


def test_a_second_writer_on_the_same_path_fails_at_once(tmp_path):
    path = tmp_path / "a.fastpack.zst"
    w = Writer(path, frame_size=1 << 16)
    for i in range(N // 2):
        w.write(i * 1e-3, "a", b"%08d" % i)
    for overwrite in (False, True):
        with pytest.raises(ArchiveLockedError, match="another writer") as ei:
            Writer(path, overwrite=overwrite)
        assert isinstance(ei.value, BlockingIOError) and ei.value.path == os.fspath(path)
    assert writer_alive(path)
    for i in range(N // 2, N):
        w.write(i * 1e-3, "a", b"%08d" % i)
    w.close()
    assert not writer_alive(path)
    with open_archive(path) as ar:
        assert verify(ar)["sound"]
        t, v = ar.read("a")
    assert len(t) == N and bytes(v[-1]) == b"%08d" % (N - 1)


_HOLDER = textwrap.dedent("""
    import sys
    from fastodin.archive.writer import Writer
    w = Writer(sys.argv[1], overwrite=True)
    w.write(0.0, "a", b"x" * 8)
    w.flush()
    w.sync()
    print("ready", flush=True)
    if sys.stdin.readline().strip() == "close":
        w.close()
        print("closed", flush=True)
    sys.stdin.readline()
""")


def _holder(path):
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_the_lock_holds_across_processes_and_dies_with_the_writer(tmp_path):
    path = tmp_path / "live.fastpack.zst"
    p = _holder(path)
    try:
        assert writer_alive(path)
        with pytest.raises(ArchiveLockedError):
            Writer(path, overwrite=True)
        with pytest.raises(ArchiveLockedError):   # not "exists": it says why
            Writer(path)
        with open_archive(path) as ar:              # readers are never blocked by the writer
            assert not ar.complete and ar.names
        p.stdin.write("close\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "closed"
        assert not writer_alive(path)
    finally:
        p.kill()
        p.wait()
    # a writer killed outright releases its lock too (the kernel drops it)
    p = _holder(path)
    assert writer_alive(path)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not writer_alive(path)
    with Writer(path, overwrite=True) as w:
        w.write(0.0, "b", b"y" * 8)
    with open_archive(path) as ar:
        assert ar.complete and list(ar.names.values()) == ["b"]


def test_an_existing_path_is_refused_unless_overwrite(tmp_path):
    path = tmp_path / "keep.fastpack.zst"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="overwrite=True") as ei:
        Writer(path)
    assert isinstance(ei.value, FileExistsError)
    assert path.read_bytes() == b"precious"
    with Writer(path, overwrite=True) as w:
        w.write(0.0, "a", b"x" * 8)
    with open_archive(path) as ar:
        assert ar.complete and ar.info()["records"] == 1


def test_demo_refuses_an_existing_output(tmp_path):
    out = tmp_path / "d.fastpack.zst"
    out.write_bytes(b"precious")
    r = _fo("demo", "-o", out, "--seconds", "0.2")
    assert r.returncode == 3 and "exists" in r.stderr and "--force" in r.stderr
    assert out.read_bytes() == b"precious"
    r = _fo("demo", "-o", out, "--seconds", "0.2", "--force")
    assert r.returncode == 0, r.stderr
    with open_archive(out) as ar:
        assert ar.complete


def test_demo_without_output_replaces_only_its_own_earlier_file(tmp_path):
    assert _fo("demo", "--seconds", "0.2", cwd=tmp_path).returncode == 0
    assert _fo("demo", "--seconds", "0.2", cwd=tmp_path).returncode == 0   # its own earlier demo: replaced
    mine = tmp_path / "demo.fastpack.zst"
    mine.write_bytes(b"someone else's file")
    r = _fo("demo", "--seconds", "0.2", cwd=tmp_path)
    assert r.returncode == 3 and "exists" in r.stderr
    assert mine.read_bytes() == b"someone else's file"


def test_commands_never_write_into_a_live_recording(tmp_path):
    src = tmp_path / "src.fastpack.zst"
    assert _fo("demo", "-o", src, "--seconds", "0.2").returncode == 0
    live = tmp_path / "live.fastpack.zst"
    p = _holder(live)
    try:
        before = live.read_bytes()
        for args in (("demo", "-o", live, "--seconds", "0.2", "--force"),
                     ("record", "-o", live, "--stdin", "--force"),
                     ("convert", src, live, "--force"),
                     ("recover", src, live, "--force")):
            r = _fo(*args, input="")
            assert r.returncode == 3, (args, r.stdout, r.stderr)
            assert "another writer" in r.stderr, (args, r.stderr)
            assert live.exists() and live.read_bytes() == before, args
        assert writer_alive(live)
    finally:
        p.kill()
        p.wait()


def test_convert_and_recover_replace_an_archive_only_with_force(tmp_path):
    src = tmp_path / "src.fastpack.zst"
    assert _fo("demo", "-o", src, "--seconds", "0.2").returncode == 0
    for cmd in ("convert", "recover"):
        out = tmp_path / f"{cmd}.fastpack.zst"
        out.write_bytes(b"old")
        r = _fo(cmd, src, out)
        assert r.returncode == 3 and "exists" in r.stderr and out.read_bytes() == b"old"
        r = _fo(cmd, src, out, "--force")
        assert r.returncode == 0, r.stderr
        with open_archive(out) as ar:
            assert ar.complete and ar.info()["records"] > 0
