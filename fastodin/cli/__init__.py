"""The ``fastodin`` command line (also ``python -m fastodin``).

Every subcommand lives in its own module of this package and provides ``add_parser(sub)`` and
``run(args) -> int``.  :func:`main` turns every error into ONE line on stderr and an exit code
(see :mod:`fastodin.cli._util`); ``--debug`` shows the traceback instead.

>>> build_parser().prog
'fastodin'
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Optional, Sequence, Tuple

from ._util import (EXIT_CODES_HELP, EXIT_DATA, EXIT_DEP, EXIT_INTERRUPT, EXIT_IO, EXIT_OK, EXIT_USAGE,
                    CliError, one_line)

__all__ = ["main", "build_parser", "describe_error"]

PROG = "fastodin"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``fastodin CMD: error: ...``) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _sub(sub: "argparse._SubParsersAction", name: str, help: str, example: str, **kw) -> argparse.ArgumentParser:
    """Add a subcommand parser with an example epilog and ``--debug``."""
    p = sub.add_parser(name, help=help, description=help, epilog="example:\n  " + example.strip().replace("\n", "\n  "),
                       formatter_class=argparse.RawDescriptionHelpFormatter, **kw)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback on errors")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The whole argument parser (all subcommands).

    >>> build_parser().parse_args(["demo"]).command
    'demo'
    """
    from .. import __version__
    from . import commands

    p = _Parser(prog=PROG, description="FastPack / ODIN recordings: capture, inspect, convert, replay.",
                epilog=EXIT_CODES_HELP + "\n\nquick start:\n  fastodin demo",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"fastodin {__version__}")
    p.add_argument("--debug", action="store_true", default=False, help="show the full traceback on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in commands.MODULES:
        sp = _sub(sub, mod.NAME, mod.HELP, mod.EXAMPLE)
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def _io_message(e: OSError) -> str:
    what = e.strerror or str(e)
    if e.filename is not None:
        return f"{what}: {e.filename}"
    return what


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit code (``sys.exit(main())`` in the entry point)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("FASTODIN_DEBUG") == "1"
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    prog = f"{PROG} {args.command}"
    try:
        code = args._run(args)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        return EXIT_OK if code is None else int(code)
    except BrokenPipeError:
        # `fastodin cat big | head`: not an error; silence the flush-at-exit complaint too
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except Exception as e:  # noqa: BLE001 - every error becomes one line and an exit code
        if debug:
            traceback.print_exc()
        line, code = describe_error(e, args.command)
        print(line, file=sys.stderr)
        return code


def describe_error(e: BaseException, command: str) -> Tuple[str, int]:
    """The one stderr line and the exit code for an error of ``fastodin COMMAND`` (spec/cli-outputs.md §8).

    >>> describe_error(OSError(2, "No such file or directory", "x.zst"), "info")
    ('fastodin info: error: No such file or directory: x.zst', 3)
    """
    prog = f"{PROG} {command}"
    from ..errors import DataError, FastOdinError, MissingDependency, UsageError

    if isinstance(e, CliError):
        return f"{prog}: error: {one_line(e)}", e.code
    if isinstance(e, MissingDependency):     # an optional extra is not installed
        return f"{prog}: error: {one_line(e)}", EXIT_DEP
    if isinstance(e, UsageError):
        return f"{prog}: error: {one_line(e)}", EXIT_USAGE
    if isinstance(e, (DataError, FastOdinError, ValueError)):
        if isinstance(e, OSError):  # a writer's output exists or is locked by another writer
            return f"{prog}: error: {one_line(e)}", EXIT_IO
        if isinstance(e.__cause__, OSError):  # e.g. the archive writer thread hit a full disk
            return f"{prog}: error: {one_line(_io_message(e.__cause__))}", EXIT_IO
        from ..errors import ChecksumError, CorruptFrameError, TruncatedError

        hint = ""
        if isinstance(e, (ChecksumError, CorruptFrameError, TruncatedError)) and command not in ("recover", "verify"):
            hint = " (fastodin verify FILE tells what is damaged; fastodin recover IN OUT saves the rest)"
        return f"{prog}: error: {type(e).__name__}: {one_line(e)}{hint}", EXIT_DATA
    if isinstance(e, OSError):
        return f"{prog}: error: {one_line(_io_message(e))}", EXIT_IO
    if isinstance(e, MemoryError):
        return f"{prog}: error: out of memory", EXIT_IO
    # a bug of ours: still one line, but say so
    return (f"{prog}: internal error: {type(e).__name__}: {one_line(e)} (run with --debug for the traceback)",
            EXIT_DATA)


def entry() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
