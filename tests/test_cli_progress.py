"""Progress of long commands (issue 8 item 14): a line with rate and ETA on stderr when it is a
terminal — driven here through a real pty —, and not one byte more when it is not."""
from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import threading

import numpy as np
import pytest

from fastodin.archive import Writer
from fastodin.odin.burst import burst_encode_many
from fastodin.odin.mapping import OdinToFastPack, WriterSink
from fastodin.odin.simulator import Simulator
from fastodin.progress import Progress, track

from test_cli import REPO, fo


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


# -- the line itself ---------------------------------------------------------------------------------

def test_progress_draws_rate_and_eta_on_a_terminal_only():
    clock, tty = _Clock(), _Tty()
    p = Progress("export", 1000, "rec", stream=tty, delay=1.0, clock=clock)
    p(100)                      # during the first second: nothing (short jobs stay quiet)
    assert tty.getvalue() == ""
    clock.t = 2.0
    p(500)
    line = tty.getvalue()
    assert line.startswith("\rexport [") and " 50.0%" in line and "500/1000 rec" in line
    assert "250 rec/s" in line and "ETA 0:02" in line and line.endswith("\x1b[K")
    clock.t = 2.05
    p(600)                      # at most ten redraws a second
    assert tty.getvalue() == line
    p.close()
    assert tty.getvalue() == line + "\r\x1b[K"     # erased: what follows starts on a clean line
    # bytes: sizes and bytes/s; unknown total: no bar, no ETA
    b = Progress("convert", None, "B", stream=_Tty(), delay=0, clock=lambda: 2.0)
    b.start = 0.0
    b(3 << 20)
    assert b.stream.getvalue() == "\rconvert 3.0 MiB  1.5 MiB/s\x1b[K"
    # not a terminal: never a byte
    quiet = io.StringIO()
    q = Progress("x", 10, stream=quiet, delay=0)
    q(5)
    q.close()
    assert not q.enabled and quiet.getvalue() == ""


def test_track_reports_every_n_and_at_the_end():
    seen = []
    assert list(track(range(10), lambda d, t: seen.append((d, t)), total=10, every=4)) == list(range(10))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert list(track(iter("ab"), None)) == ["a", "b"]


def test_recover_library_progress_callback(tmp_path):
    from fastodin.archive.recover import recover

    src = tmp_path / "a.fastpack.zst"
    with Writer(src, frame_size=4096) as w:
        w.write_many(np.arange(2000) * 1e-3, "x", np.zeros((2000, 2)))
    seen = []
    rep = recover(src, tmp_path / "b.fastpack.zst", progress=lambda d, t: seen.append((d, t)))
    size = src.stat().st_size
    assert rep.records_saved == 2000 and len(seen) > 3
    assert all(t == size for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert 0 <= seen[0][0] and seen[-1][0] < size


# -- the commands, for real, through a pty -------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("progress")
    plain = d / "plain.fastpack.zst"
    with Writer(plain, frame_size=1 << 16) as w:     # 20,000 records in many frames
        w.write_many(np.arange(20000) * 1e-3, "imu", np.arange(40000.0).reshape(20000, 2))
    odin = d / "odin.fastpack.zst"
    pk = Simulator(seed=3).packets(duration=12.0)
    with Writer(odin, frame_size=1 << 16) as w:
        c = OdinToFastPack(WriterSink(w))
        c.add_many(pk)
        c.close()
    burst = d / "cap.burst"
    burst.write_bytes(burst_encode_many(pk) * 8)     # several MiB: several 1 MiB chunks
    return {"dir": d, "plain": plain, "odin": odin, "burst": burst}


def _run_on_pty(args, cwd=None, stdout_too=False):
    """Run ``python -m fastodin ARGS`` with stderr on a pty (a terminal) and stdout a pipe, or the
    same pty with ``stdout_too``; returns (returncode, stdout bytes, what the terminal got)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               FASTODIN_PROGRESS_DELAY="0", COLUMNS="200")
    env.pop("FASTODIN_DEBUG", None)
    master, slave = pty.openpty()
    got = bytearray()

    def drain():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:   # EIO: the child closed the terminal
                return
            if not b:
                return
            got.extend(b)

    th = threading.Thread(target=drain, daemon=True)
    th.start()
    try:
        p = subprocess.run([sys.executable, "-m", "fastodin", *args], cwd=cwd,
                           stdout=slave if stdout_too else subprocess.PIPE, stderr=slave,
                           stdin=subprocess.DEVNULL, env=env, timeout=120)
    finally:
        os.close(slave)
    th.join(10)
    os.close(master)
    return p.returncode, p.stdout, bytes(got)


CASES = [
    # (name, args with {d} = the work dir, label on the line, total known)
    ("export", ["export", "{odin}", "-o", "{d}/x_csv", "--csv"], b"export: ", True),
    ("recover", ["recover", "{odin}", "{d}/x_rec.fastpack.zst"], b"recover [", True),
    ("cat", ["cat", "{plain}"], b"cat [", True),
    ("convert-archive", ["convert", "{plain}", "{d}/x_copy.fastpack.zst"], b"convert [", True),
    ("convert-fastpack", ["convert", "{plain}", "{d}/x.fastpack"], b"convert [", True),
    ("convert-burst-in", ["convert", "{burst}", "{d}/x_burst.fastpack.zst"], b"convert [", True),
    ("convert-odin-out", ["convert", "{odin}", "{d}/x.burst"], b"convert [", True),
    ("verify", ["verify", "{plain}"], b"verify [", True),
]


@pytest.mark.parametrize("name,args,label,total", CASES, ids=[c[0] for c in CASES])
def test_progress_on_a_terminal_and_byte_identical_output_without_one(inputs, name, args, label, total):
    d = inputs["dir"]

    def fill(suffix):
        return [a.format(d=d / suffix, plain=inputs["plain"], odin=inputs["odin"], burst=inputs["burst"])
                for a in args]

    (d / "tty").mkdir(exist_ok=True)
    (d / "pipe").mkdir(exist_ok=True)
    rc, out, term = _run_on_pty(fill("tty"), cwd=d)
    assert rc == 0, term
    assert label in term and b"/s" in term, term[:300]
    assert (b"ETA " in term) == total, term[:300]
    assert term.rstrip(b"\n").count(b"\r") >= 2 and b"\r\x1b[K" in term     # drawn, then erased
    assert b"Traceback" not in term
    # not a terminal: the same stdout, byte for byte (timings aside), and an empty stderr
    p = fo(*fill("pipe"), cwd=d, env={"FASTODIN_PROGRESS_DELAY": "0"})
    assert p.returncode == 0 and p.stderr == b"", p.err

    def strip(b):  # the summaries name the output path and the time taken
        return b.replace(str(d / "tty").encode(), b"D").replace(str(d / "pipe").encode(), b"D")

    import re
    norm = re.compile(rb"in \d+\.\d\d s")
    assert norm.sub(b"", strip(out)) == norm.sub(b"", strip(p.stdout))
    if name == "cat":
        assert out == p.stdout and len(out.splitlines()) == 20000


def test_cat_to_the_terminal_draws_no_line_among_the_records(inputs):
    """stdout and stderr the same terminal: the records are what the user watches."""
    rc, _, got = _run_on_pty(["cat", str(inputs["plain"]), "--format", "hex"], stdout_too=True)
    assert rc == 0
    assert b"cat [" not in got and b"\x1b[K" not in got and got.count(b"\n") == 20000
