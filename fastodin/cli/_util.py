"""Shared pieces of the command line: exit codes, the one-line error, progress, formatting.

Exit codes (documented in ``fastodin --help`` and the README):

====  ===========================================================================
0     success (``verify``: the file is sound; ``recover``: nothing was lost)
1     a data problem: corrupt / truncated / not-our-format input, ``verify`` found
      problems, ``recover`` had to drop something, ``demo`` self-check failed
2     usage: bad arguments (argparse's own code)
3     I/O or system: missing file, permission, disk full, port in use, network
4     an optional dependency is missing (pyserial, pyarrow, ...)
130   interrupted by Ctrl-C outside ``record`` (where Ctrl-C is a normal stop)
====  ===========================================================================

>>> human_bytes(1536), human_rate(2_500_000)
('1.5 KiB', '2.50M')
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Iterable, Optional, Sequence, Tuple

from ..errors import FastOdinError

__all__ = [
    "EXIT_OK", "EXIT_DATA", "EXIT_USAGE", "EXIT_IO", "EXIT_DEP", "EXIT_INTERRUPT",
    "CliError", "Progress", "human_bytes", "human_rate", "table", "parse_hostport", "one_line",
    "need_module",
]

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_IO = 3
EXIT_DEP = 4
EXIT_INTERRUPT = 130

EXIT_CODES_HELP = """exit codes:
  0    success (verify: file is sound; recover: nothing lost)
  1    data problem (corrupt/truncated/foreign input, verify failed, recover lost data)
  2    usage error (bad arguments)
  3    I/O or system error (missing file, permission, port in use, network)
  4    optional dependency missing (pyserial, pyarrow)
  130  interrupted (Ctrl-C)"""


class CliError(FastOdinError):
    """An error the command line reports as one line on stderr with ``code`` as exit status.

    A :class:`~fastodin.errors.FastOdinError` (the one base of fastodin's errors); ``main()``
    catches it before the generic handlers, so ``code`` is always the exit status.

    >>> CliError("no such file: x", 3).code
    3
    """

    def __init__(self, message: str, code: int = EXIT_DATA) -> None:
        super().__init__(message)
        self.code = code


def one_line(msg: Any) -> str:
    """Collapse a message onto one line.

    >>> one_line("a\\n  b")
    'a b'
    """
    return " ".join(str(msg).split())


def need_module(name: str, extra: str, purpose: str) -> Any:
    """Import an optional module or raise a :class:`CliError` (exit 4) naming the extra to install.

    >>> need_module("json", "x", "y").__name__
    'json'
    """
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise CliError(
            f"{purpose} needs the optional package '{name}': pip install 'fastodin[{extra}]'", EXIT_DEP
        ) from None


def human_bytes(n: float) -> str:
    """Bytes as a short human string.

    >>> human_bytes(100), human_bytes(3 * 1024 ** 2)
    ('100 B', '3.0 MiB')
    """
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def human_rate(r: float) -> str:
    """A per-second rate with a k/M suffix.

    >>> human_rate(950), human_rate(12_345)
    ('950', '12.3k')
    """
    if not math.isfinite(r):
        return "-"
    if r >= 1e6:
        return f"{r / 1e6:.2f}M"
    if r >= 1e4:
        return f"{r / 1e3:.1f}k"
    return f"{r:.0f}"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], right: Iterable[int] = ()) -> str:
    """A plain aligned text table.

    >>> print(table([["a", 1], ["bb", 22]], ["name", "n"], right=[1]))
    name   n
    a      1
    bb    22
    """
    right = set(right)
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for r in cells:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append("  ".join(parts).rstrip())
    return "\n".join(out)


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> Tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, ``PORT``, ``[v6]:PORT``) -> (host, port); CliError (exit 2) if bad.

    >>> parse_hostport("127.0.0.1:9000"), parse_hostport(":7"), parse_hostport("[::1]:5")
    (('127.0.0.1', 9000), ('127.0.0.1', 7), ('::1', 5))
    """
    t = text.strip()
    host, port = default_host, t
    if t.startswith("["):
        end = t.find("]")
        if end < 0 or not t[end + 1 :].startswith(":"):
            raise CliError(f"bad address {text!r}: expected [IPV6]:PORT", EXIT_USAGE)
        host, port = t[1:end], t[end + 2 :]
    elif ":" in t:
        host, port = t.rsplit(":", 1)
        host = host or default_host
    try:
        p = int(port)
    except ValueError:
        raise CliError(f"bad address {text!r}: expected HOST:PORT with a numeric port", EXIT_USAGE) from None
    if not 0 <= p <= 65535:
        raise CliError(f"bad address {text!r}: port {p} is not in 0..65535", EXIT_USAGE)
    return host, p


class Progress:
    """A tiny progress bar / status line on stderr, drawn only when stderr is a terminal.

    ``update(done)`` redraws at most 10 times a second; nothing is drawn during the first second
    (short jobs stay quiet).  ``total=None`` shows a counter instead of a bar.

    >>> p = Progress("x", 10, stream=None); p.update(5); p.close()
    """

    def __init__(self, label: str, total: Optional[float] = None, unit: str = "", stream: Any = "auto",
                 delay: float = 1.0) -> None:
        if stream == "auto":
            stream = sys.stderr
        try:
            self.enabled = stream is not None and stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.stream = stream
        self.label = label
        self.total = total
        self.unit = unit
        self.start = time.monotonic()
        self.delay = delay
        self._last = 0.0
        self._drawn = False

    def update(self, done: float, extra: str = "") -> None:
        """Redraw with ``done`` units finished (rate-limited)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or now - self._last < 0.1:
            return
        self._last = now
        self.draw(done, extra, now)

    def draw(self, done: float, extra: str = "", now: Optional[float] = None) -> None:
        """Redraw unconditionally (when enabled)."""
        if not self.enabled:
            return
        now = time.monotonic() if now is None else now
        el = max(now - self.start, 1e-9)
        rate = done / el
        if self.total:
            frac = min(max(done / self.total, 0.0), 1.0)
            w = 24
            fill = int(frac * w)
            bar = "#" * fill + "-" * (w - fill)
            line = f"{self.label} [{bar}] {frac * 100:5.1f}%  {human_rate(rate)}{self.unit}/s"
        else:
            line = f"{self.label} {int(done)}{self.unit} {human_rate(rate)}{self.unit}/s"
        if extra:
            line += "  " + extra
        try:
            cols = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            cols = 100
        self.stream.write("\r" + line[: max(cols - 1, 10)] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the line (if one was drawn)."""
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
