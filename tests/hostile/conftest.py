"""Shared helpers for hostile-input tests: run a case in a child process with a memory ceiling and a
time limit, and read the child's own peak RSS.

The case runs as a grandchild of a tiny wrapper process: Linux carries the peak RSS of the memory a
process had before ``exec`` into its ``ru_maxrss``, so a case forked straight from a big pytest
process would report pytest's size.  The wrapper is small when it forks the case, waits for it with
``os.wait4`` (that child's own rusage) and reports exit code and peak RSS on a pipe.
"""
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import List, Optional, Sequence

import pytest

MiB = 1 << 20
#: Peak RSS any hostile case may reach (issue: 512 MiB unless the data itself is that big).
RSS_LIMIT = 512 * MiB
#: Address-space ceiling of the case so that a regression fails the test instead of eating the machine.
AS_CEILING = 6 << 30

_WRAP = r"""
import os, resource, subprocess, sys
fd, ceiling, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
p = subprocess.Popen(argv, preexec_fn=limit)
_, status, usage = os.wait4(p.pid, 0)
os.write(fd, b"%d %d" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024))
"""


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


def run_bounded(argv: Sequence[str], *, stdin: Optional[bytes] = None, timeout: float = 60.0,
                cwd: Optional[str] = None, env: Optional[dict] = None) -> Bounded:
    """Run argv; return its exit code, output, peak RSS in bytes and whether it hit the time limit."""
    rfd, wfd = os.pipe()
    try:
        p = subprocess.Popen([sys.executable, "-c", _WRAP, str(wfd), str(AS_CEILING), *argv],
                             stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                             pass_fds=(wfd,), start_new_session=True)
    finally:
        os.close(wfd)
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
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        try:
            os.killpg(p.pid, signal.SIGKILL)   # the wrapper and the case (one session)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        p.wait()
    finally:
        timer.cancel()
    with os.fdopen(rfd, "rb") as f:
        report = f.read().split()
    for th in threads:
        th.join()
    if len(report) == 2:
        rc, peak = int(report[0]), int(report[1])
    else:  # the wrapper itself was killed (time limit)
        rc, peak = p.returncode, 0
    return Bounded(rc, out[0], out[1], peak, fired.is_set())


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
