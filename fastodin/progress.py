"""Progress of long jobs: the callback protocol library functions accept, and the terminal line.

A long library function (:func:`fastodin.archive.recover.recover`, ...) takes ``progress=``: any
callable ``progress(done, total)`` with ``done`` units finished so far (absolute, not a step) and
``total`` (None when unknown); it is called often (once per frame or per few thousand records),
so it must be cheap.  :class:`Progress` is such a callable that draws one status line — label,
bar, percent, rate and ETA — on stderr, **only when stderr is a terminal**: piped or redirected
runs write not a byte more.  It waits ``delay`` seconds (1 s; ``FASTODIN_PROGRESS_DELAY``
overrides) before the first line, so short jobs stay quiet, redraws at most ten times a second
and erases its line when closed, so what follows starts on a clean line.

>>> seen = []
>>> for _ in track(range(5), lambda done, total: seen.append((done, total)), total=5, every=2):
...     pass
>>> seen
[(2, 5), (4, 5), (5, 5)]
>>> with Progress("copy", 100, "B", stream=None) as p:   # not a terminal: draws nothing
...     p(50, 100)
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

from ._fmt import human_bytes, human_duration, human_rate

__all__ = ["ProgressCallback", "Progress", "track", "DEFAULT_DELAY"]

#: ``progress(done, total)``: units done so far (absolute) and the total, None when unknown.
ProgressCallback = Callable[[float, Optional[float]], None]

#: Seconds before the first line is drawn (short jobs stay quiet).
DEFAULT_DELAY = 1.0

T = TypeVar("T")


def _env_delay() -> float:
    try:
        return max(float(os.environ.get("FASTODIN_PROGRESS_DELAY", DEFAULT_DELAY)), 0.0)
    except ValueError:
        return DEFAULT_DELAY


def track(items: Iterable[T], progress: Optional[ProgressCallback], total: Optional[float] = None,
          every: int = 1024, start: float = 0) -> Iterator[T]:
    """Yield ``items``, calling ``progress(n, total)`` after every ``every`` items and once at the
    end (``n`` counts from ``start``).  ``progress=None`` yields the items untouched."""
    if progress is None:
        yield from items
        return
    n = start
    k = 0
    for x in items:
        yield x
        k += 1
        if k == every:
            n += k
            k = 0
            progress(n, total)
    if k:
        progress(n + k, total)


class Progress:
    """One progress line on stderr, drawn only when stderr is a terminal (see the module docstring).

    ``unit`` ``"B"`` shows sizes and bytes/s; any other unit (``"rec"``, ``"frames"``) counts.
    Call it as a :data:`ProgressCallback` (``p(done, total)``), or ``update(done)`` /
    ``advance(n)``; ``close()`` (or leaving a ``with`` block) erases the line.
    """

    def __init__(self, label: str, total: Optional[float] = None, unit: str = "", stream: Any = "auto",
                 delay: Optional[float] = None, clock: Callable[[], float] = time.monotonic) -> None:
        if stream == "auto":
            stream = sys.stderr
        try:
            self.enabled = stream is not None and bool(stream.isatty())
        except (AttributeError, ValueError):
            self.enabled = False
        self.stream = stream
        self.label = label
        self.total = total
        self.unit = unit.strip()
        self.clock = clock
        self.start = clock()
        self.delay = _env_delay() if delay is None else delay
        self.done: float = 0
        self._last = -1.0
        self._drawn = False

    def __call__(self, done: float, total: Optional[float] = None) -> None:
        if total is not None:
            self.total = total
        self.update(done)

    def advance(self, n: float = 1) -> None:
        """``n`` more units done."""
        self.update(self.done + n)

    def update(self, done: float, extra: str = "") -> None:
        """``done`` units finished so far; redraws at most ten times a second."""
        self.done = done
        if not self.enabled:
            return
        now = self.clock()
        if now - self.start < self.delay or (self._last >= 0 and now - self._last < 0.1):
            return
        self._last = now
        self.draw(done, extra, now)

    def _amount(self, x: float) -> str:
        return human_bytes(x) if self.unit == "B" else f"{int(x)}"

    def line(self, done: float, now: float, extra: str = "") -> str:
        """The text of the status line for ``done`` units at time ``now``.

        >>> p = Progress("convert", 1000, "rec", stream=None, clock=lambda: 0.0)
        >>> p.line(250, 2.0)
        'convert [######------------------]  25.0%  250/1000 rec  125 rec/s  ETA 0:06'
        >>> Progress("cat", None, "B", stream=None, clock=lambda: 0.0).line(3 << 20, 2.0)
        'cat 3.0 MiB  1.5 MiB/s'
        """
        el = max(now - self.start, 1e-9)
        rate = done / el
        unit = f" {self.unit}" if self.unit and self.unit != "B" else ""
        speed = f"{human_bytes(rate)}/s" if self.unit == "B" else f"{human_rate(rate)}{unit}/s"
        if self.total:
            frac = min(max(done / self.total, 0.0), 1.0)
            w = 24
            fill = int(frac * w)
            eta = (self.total - done) / rate if rate > 0 else float("inf")
            line = (f"{self.label} [{'#' * fill}{'-' * (w - fill)}] {frac * 100:5.1f}%  "
                    f"{self._amount(done)}/{self._amount(self.total)}{unit}  {speed}  ETA {human_duration(eta)}")
        else:
            line = f"{self.label} {self._amount(done)}{unit}  {speed}"
        return line + ("  " + extra if extra else "")

    def draw(self, done: float, extra: str = "", now: Optional[float] = None) -> None:
        """Redraw unconditionally (when enabled)."""
        if not self.enabled:
            return
        now = self.clock() if now is None else now
        line = self.line(done, now, extra)
        try:
            cols = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            cols = 0
        if cols <= 0:  # a terminal that does not say its size (a fresh pty): $COLUMNS, else 100
            try:
                cols = int(os.environ.get("COLUMNS", "")) or 100
            except ValueError:
                cols = 100
        try:
            self.stream.write("\r" + line[: max(cols - 1, 10)] + "\x1b[K")
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: stop drawing, never fail the job
            self.enabled = False
            return
        self._drawn = True

    def close(self) -> None:
        """Erase the line (if one was drawn)."""
        if self.enabled and self._drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._drawn = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
