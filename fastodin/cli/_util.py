"""Shared pieces of the command line: exit codes, the one-line error, argument types, formatting
(the progress line and human-readable numbers live in :mod:`fastodin.progress` and ``fastodin._fmt``).

Exit codes (documented in ``fastodin --help`` and the README):

====  ===========================================================================
0     success (``verify``: the file is sound; ``recover``: nothing was lost)
1     a data problem: corrupt / truncated / not-our-format input, ``verify`` found
      problems, ``recover`` had to drop something, ``demo`` self-check failed
2     usage: bad arguments (argparse's own code)
3     I/O or system: missing file, permission, disk full, port in use, network
4     an optional dependency is missing (pyserial, pyarrow, ...)
130   interrupted by Ctrl-C outside ``record`` and ``view`` (where Ctrl-C is the normal stop)
====  ===========================================================================

>>> human_bytes(1536), human_rate(2_500_000)
('1.5 KiB', '2.50M')
"""
from __future__ import annotations

import argparse
import math
from itertools import chain
from typing import Any, Callable, Iterable, Iterator, Sequence, Tuple

from .._fmt import human_bytes, human_rate, plural
from ..errors import FastOdinError
from ..progress import Progress

__all__ = [
    "EXIT_OK", "EXIT_DATA", "EXIT_USAGE", "EXIT_IO", "EXIT_DEP", "EXIT_INTERRUPT",
    "CliError", "Progress", "human_bytes", "human_rate", "plural", "table", "table_lines", "parse_hostport", "one_line",
    "need_module", "is_terminal", "port_number", "positive_float", "preset_arg", "open_writer",
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


def is_terminal(f: Any) -> bool:
    """Is file object ``f`` a terminal? (False for None, closed or fake files.)

    >>> import io; is_terminal(io.StringIO()), is_terminal(None)
    (False, False)
    """
    try:
        return f is not None and bool(f.isatty())
    except (AttributeError, ValueError):
        return False


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


def open_writer(path: str, force: bool, **kw: Any) -> Any:
    """The archive :class:`~fastodin.archive.writer.Writer` of a command: an existing ``path`` is
    refused unless ``force`` (``--force``), and a path another writer holds is always refused;
    any failure to open is a :class:`CliError` with exit code 3.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "o.fastpack.zst")
    >>> open_writer(p, False).close()
    >>> try:
    ...     open_writer(p, False)
    ... except CliError as e:
    ...     e.code, str(e).endswith("o.fastpack.zst: exists (use --force to replace it)")
    (3, True)
    """
    from ..archive.writer import Writer
    from ..errors import OutputExistsError

    try:
        return Writer(path, overwrite=force, **kw)
    except OutputExistsError:
        raise CliError(f"cannot write {path}: exists (use --force to replace it)", EXIT_IO) from None
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_IO) from None


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], right: Iterable[int] = ()) -> str:
    """A plain aligned text table.

    >>> print(table([["a", 1], ["bb", 22]], ["name", "n"], right=[1]))
    name   n
    a      1
    bb    22
    """
    return "\n".join(table_lines(lambda: rows, header, right))


def table_lines(rows: Callable[[], Iterable[Sequence[Any]]], header: Sequence[str],
                right: Iterable[int] = ()) -> Iterator[str]:
    """The lines of :func:`table`, one at a time; ``rows()`` is called twice (widths, then lines),
    so a table of a million channels is never held as strings.

    >>> list(table_lines(lambda: [["a", 1]], ["x", "n"], right=[1]))
    ['x  n', 'a  1']
    """
    right = set(right)
    widths = [len(str(h)) for h in header]
    for r in rows():
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(str(c)))
    for r in chain([header], rows()):
        parts = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        yield "  ".join(parts).rstrip()


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


# -- argument types (argparse ``type=``: a bad value is a one-line usage error, exit 2) --------------

def port_number(text: str) -> int:
    """A UDP/TCP port, 0..65535.

    >>> port_number("9000")
    9000
    >>> port_number("70000")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 70000 is not a port number (0..65535)
    """
    try:
        p = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0..65535)") from None
    if not 0 <= p <= 65535:
        raise argparse.ArgumentTypeError(f"{p} is not a port number (0..65535)")
    return p


def positive_float(text: str) -> float:
    """A finite number > 0 (a rate, a tick frequency).

    >>> positive_float("1e6")
    1000000.0
    >>> positive_float("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a finite number > 0, not '0'
    """
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, not {text!r}")
    return v


def preset_arg(text: str) -> Any:
    """A compression preset name (``none`` ... ``max``, VRS spellings ``Zfast`` too) or a zstd level.

    >>> preset_arg("light"), preset_arg("3")
    ('light', 3)
    >>> preset_arg("bogus")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    argparse.ArgumentTypeError: unknown compression preset 'bogus'; known: none, fast, ...
    """
    from ..archive.writer import _level  # the writer's own rule: one home
    from ..errors import UsageError

    v: Any = int(text) if text.strip().lstrip("-").isdigit() else text
    try:
        _level(v, 0)
    except UsageError as e:
        raise argparse.ArgumentTypeError(one_line(e)) from None
    return v
