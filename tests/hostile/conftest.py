"""Shared helpers for hostile-input tests: run a case in a child process with a memory ceiling and a
time limit, and read the child's own peak RSS (os.wait4 gives that child's rusage, not the union of
all children; the child is forked by a small launcher, not by pytest, see _LAUNCH)."""
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import List, Optional, Sequence

import pytest

MiB = 1 << 20
#: Peak RSS any hostile case may reach (issue: 512 MiB unless the data itself is that big).
RSS_LIMIT = 512 * MiB
#: Address-space ceiling of the child so that a regression fails the test instead of eating the machine.
AS_CEILING = 6 << 30


@dataclass
class Bounded:
    returncode: int
    stdout: bytes
    stderr: bytes
    peak_rss: int
    timed_out: bool

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace") + self.stderr.decode("utf-8", "replace")


#: A small launcher between this process and the case: a forked child starts with the RSS of its
#: parent at the fork, and Linux keeps that figure across exec in the child's ru_maxrss, so forking
#: the case from pytest (tens or hundreds of MB by then) would measure pytest.  The launcher (a
#: fresh ``python -S``, a few MB) forks the case, sets its address-space ceiling, waits for it and
#: writes its exit status and peak RSS to a pipe.
_LAUNCH = (
    "import os, resource, sys\n"
    "fd, ceiling = int(sys.argv[1]), int(sys.argv[2])\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.close(fd)\n"
    "    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))\n"
    "    try:\n"
    "        os.execvp(sys.argv[3], sys.argv[3:])\n"
    "    finally:\n"
    "        os._exit(127)\n"
    "_, status, ru = os.wait4(pid, 0)\n"
    "os.write(fd, b'%d %d' % (status, ru.ru_maxrss))\n"
)


def run_bounded(argv: Sequence[str], *, stdin: Optional[bytes] = None, timeout: float = 60.0,
                cwd: Optional[str] = None, env: Optional[dict] = None) -> Bounded:
    """Run argv; return its exit code, output, peak RSS in bytes and whether it hit the time limit."""
    r, w = os.pipe()
    try:
        p = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCH, str(w), str(AS_CEILING), *argv],
                             stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env, pass_fds=(w,),
                             start_new_session=True)
    finally:
        os.close(w)
    out: List[bytes] = [b"", b""]

    def pump(i: int, f) -> None:
        out[i] = f.read()

    threads = [threading.Thread(target=pump, args=(0, p.stdout)), threading.Thread(target=pump, args=(1, p.stderr))]
    for th in threads:
        th.start()
    if stdin is not None:
        try:
            p.stdin.write(stdin)
            p.stdin.close()
        except BrokenPipeError:
            pass

    def kill() -> None:   # the launcher and the case (one process group)
        try:
            os.killpg(p.pid, 9)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        p.wait()
    finally:
        timed_out = not timer.is_alive()
        timer.cancel()
    with os.fdopen(r, "rb") as f:
        report = f.read().split()
    for th in threads:
        th.join()
    if len(report) == 2:
        returncode, peak = os.waitstatus_to_exitcode(int(report[0])), int(report[1]) * 1024
    else:                 # killed before it could report
        returncode, peak = p.returncode, 0
    return Bounded(returncode, out[0], out[1], peak, timed_out)


@pytest.fixture
def bounded():
    """`bounded(argv, stdin=..., timeout=...)` -> Bounded; `bounded.python(code)` runs `python -c code`;
    `bounded.cli(*args)` runs `python -m fastodin args`."""

    class _Runner:
        def __call__(self, argv, **kw):
            return run_bounded(argv, **kw)

        def python(self, code: str, **kw):
            return run_bounded([sys.executable, "-c", code], **kw)

        def cli(self, *args: str, **kw):
            return run_bounded([sys.executable, "-m", "fastodin", *args], **kw)

    return _Runner()
