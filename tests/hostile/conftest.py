"""Shared helpers for hostile-input tests: run a case in a child process with a memory ceiling and a
time limit, and read the child's own peak RSS (os.wait4 gives that child's rusage, not the union of
all children)."""
import os
import resource
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


def _limit() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (AS_CEILING, AS_CEILING))


def run_bounded(argv: Sequence[str], *, stdin: Optional[bytes] = None, timeout: float = 60.0,
                cwd: Optional[str] = None, env: Optional[dict] = None) -> Bounded:
    """Run argv; return its exit code, output, peak RSS in bytes and whether it hit the time limit."""
    p = subprocess.Popen(list(argv), stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env, preexec_fn=_limit)
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
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(p.pid, 0)
    finally:
        timed_out = not timer.is_alive()
        timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    for th in threads:
        th.join()
    return Bounded(p.returncode, out[0], out[1], usage.ru_maxrss * 1024, timed_out)


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
