"""Issue 8 item 9: the archive writer never loses data silently.

An over-limit payload is refused by the call that passes it (the writer goes on); after any failure
of the background thread every call raises WriterError and the file never verifies SOUND.
"""
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import fastodin.archive.writer as writer_mod
from fastodin.archive.reader import open_archive
from fastodin.archive.writer import MAX_RECORD_SIZE, Writer
from fastodin.cli.verify import verify
from fastodin.errors import LimitError, WriterError

MiB = 1 << 20


def _verify(path):
    with open_archive(path) as ar:
        return verify(ar)


def test_oversized_payload_is_refused_at_once_and_the_writer_goes_on(bounded, tmp_path):
    # the case: a 300 MiB payload; bytes(n) is calloc'ed, so a copy of it would show in the peak RSS
    path = tmp_path / "big.fastpack.zst"
    r = bounded.python(textwrap.dedent(f"""
        import numpy as np
        from fastodin.archive.writer import Writer
        from fastodin.errors import LimitError
        big = bytes(300 << 20)
        with Writer({str(path)!r}) as w:
            for i in range(1000):
                w.write(i * 0.001, "imu", b"%016d" % i)
            for call in (lambda: w.write(1.0, "camera", big),
                         lambda: w.write_many([1.0], "camera", np.zeros((1, 300 << 20), np.uint8))):
                try:
                    call()
                except LimitError as e:
                    print("refused", e.channel, e.length, e.limit, "camera" in str(e), str(e.limit) in str(e))
            for i in range(1000, 2000):
                w.write(i * 0.001, "imu", b"%016d" % i)
    """), timeout=120)
    assert r.returncode == 0, r.text
    lines = r.stdout.decode().splitlines()
    assert lines == [f"refused camera {300 << 20} {MAX_RECORD_SIZE} True True"] * 2, r.text
    assert r.peak_rss < 250 * MiB, f"refusing the payload copied it: peak RSS {r.peak_rss / MiB:.0f} MiB"
    res = _verify(path)
    assert res["sound"], res["problems"]
    with open_archive(path) as ar:
        assert "camera" not in ar.names.values()          # a refused first record defines nothing
        t, v = ar.read("imu")
        assert len(t) == 2000 and bytes(v[1999]) == b"%016d" % 1999


def test_over_limit_metadata_is_refused_and_the_writer_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_mod, "MAX_RECORD_SIZE", 4096)
    path = tmp_path / "tags.fastpack.zst"
    with Writer(path) as w:
        w.set_tag("site", "lab")
        w.write(0.0, "a", b"x" * 8)
        with pytest.raises(LimitError, match="file tag 'notes'") as ei:
            w.set_tag("notes", "n" * 5000)
        assert ei.value.limit == 4096
        s = w.create_stream("imu")
        with pytest.raises(LimitError, match="stream 'imu' tag"):
            s.set_tag("calib", list(range(2000)))
        with pytest.raises(LimitError, match="channel 0"):
            w.write(0.5, 0, b'{"user":"' + b"u" * 5000 + b'"}')
        w.write(1.0, "a", b"y" * 8)
    assert _verify(path)["sound"]
    with open_archive(path) as ar:
        assert ar.tags == {"site": "lab"}
        assert len(ar.read("a")[0]) == 2


def _failing_compress(w, fail_from):
    real = w._compress
    calls = [0]

    def compress(level, raw):
        calls[0] += 1
        if calls[0] >= fail_from:
            raise MemoryError("injected compression failure")
        return real(level, raw)

    w._compress = compress


@pytest.mark.parametrize("threads", [1, 2])
def test_after_a_background_failure_every_call_raises_and_the_file_is_not_sound(tmp_path, threads):
    path = tmp_path / "f.fastpack.zst"
    w = Writer(path, flush_interval=None, compress_threads=threads)
    _failing_compress(w, fail_from=2)
    n = 0
    with pytest.raises(WriterError, match="injected"):
        for i in range(100_000):
            w.write(i * 0.001, "a", b"%0999d" % i)
            n += 1
            if i % 1000 == 999:
                w.sync()
    for call in (lambda: w.write(1e6, "a", b"x"), lambda: w.write_many([1e6], "a", [b"x"]), w.flush, w.sync,
                 lambda: w.set_tag("k", 1), lambda: w.create_stream("s")):
        with pytest.raises(WriterError):
            call()
    with pytest.raises(WriterError, match="not written") as ei:
        w.close()
    lost = ei.value.records_lost
    assert ei.value.path == os.fspath(path)
    res = _verify(path)
    assert not res["sound"]
    assert any("the writer failed" in p and "injected" in p for p in res["problems"]), res["problems"]
    with open_archive(path) as ar:
        saved = sum(e.n_records for e in ar.frames)
        [dmg] = [d for d in ar.damage if "writer failed" in d.reason]
        assert dmg.records == lost
    assert saved + lost == n + 2   # every record accepted (plus file metadata and the name) is saved or counted lost


def test_a_failure_before_the_first_frame_does_not_leave_a_sound_empty_file(tmp_path):
    path = tmp_path / "e.fastpack.zst"
    w = Writer(path)
    _failing_compress(w, fail_from=1)
    for i in range(10):
        w.write(i * 0.1, "a", b"x" * 100)
    with pytest.raises(WriterError) as ei:
        w.close()
    assert ei.value.records_lost == 12
    assert os.path.getsize(path) > 0
    res = _verify(path)
    assert not res["sound"] and res["format"] == "archive"
    cli = subprocess.run([sys.executable, "-m", "fastodin", "verify", str(path)], capture_output=True, text=True)
    assert cli.returncode == 1 and "writer failed" in cli.stdout


def test_a_failure_while_closing_does_not_hang(tmp_path):
    w = Writer(tmp_path / "c.fastpack.zst", compress_threads=2)
    _failing_compress(w, fail_from=1)
    w.write(0.0, "a", b"x" * 100)     # its frame is cut (and fails) only by close
    out = []

    def close():
        try:
            w.close()
        except WriterError as e:
            out.append(e)

    th = threading.Thread(target=close, daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive(), "close() hangs when the last frame fails"
    assert out and out[0].records_lost == 3


_FSIZE_CHILD = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from fastodin.archive.writer import Writer
    from fastodin.errors import WriterError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG instead
    w = Writer(sys.argv[1], flush_interval=None)
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    rng = np.random.default_rng(1)
    raised = 0
    try:
        for i in range(3000):
            w.write(i * 0.001, "a", rng.bytes(1000))
        w.sync()
    except WriterError:
        raised += 1
    try:
        w.close()
    except WriterError as e:
        raised += 1
        print("lost", getattr(e, "records_lost", None), type(e.__cause__).__name__)
    print("raised", raised)
""")


@pytest.mark.parametrize("limit", [0, 20_000])
def test_a_real_write_failure_never_leaves_a_sound_file(tmp_path, limit):
    # RLIMIT_FSIZE makes the kernel refuse writes past `limit` bytes: a real I/O failure of the writer
    path = tmp_path / "fs.fastpack.zst"
    r = subprocess.run([sys.executable, "-c", _FSIZE_CHILD, str(path), str(limit)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "raised 2" in r.stdout and "OSError" in r.stdout, r.stdout
    v = subprocess.run([sys.executable, "-m", "fastodin", "verify", str(path)], capture_output=True, text=True)
    assert v.returncode != 0 and "SOUND:" not in v.stdout.replace("NOT SOUND", ""), v.stdout + v.stderr
    if os.path.exists(path):
        assert os.path.getsize(path) <= max(limit, 1)
