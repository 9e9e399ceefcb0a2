"""The MCAP parts of ``export`` (``--mcap OUT.mcap``) and ``convert`` (``IN.mcap OUT.fastpack.zst``).

Argument checks and printing only; the mapping is :mod:`fastodin.mcap` (spec/mcap.md).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict

from ._util import EXIT_DATA, EXIT_OK, EXIT_USAGE, CliError, human_bytes
from .sources import STDIO, check_output

__all__ = ["run_export", "run_import", "is_mcap_file"]


def is_mcap_file(path: str) -> bool:
    """Does ``path`` start with the MCAP magic?"""
    from ..mcap.reader import is_mcap

    try:
        with open(path, "rb") as f:
            return is_mcap(f.read(8))
    except OSError:
        return False


def _skipped_line(sk: Dict[str, int]) -> str:
    parts = [f"{v} {k.replace('_', ' ')}" for k, v in sk.items() if v]
    return ", ".join(parts)


def run_export(args: Any, out: str) -> int:
    """``fastodin export FILE --mcap OUT.mcap``."""
    from ..mcap.export import export_mcap
    from .sources import open_input

    if args.file == STDIO:
        raise CliError("--mcap reads a file (not - standard input): save it first", EXIT_USAGE)
    if args.time_offset is not None and not abs(args.time_offset) < 9e9:
        raise CliError("--time-offset must be a finite number of seconds (|S| < 9e9)", EXIT_USAGE)
    check_output(out, args.force, args.file)
    chans = [int(c) if c == "0" else c for c in args.channel] if args.channel else None
    with open_input(args.file, allow_damage=False) as ar:   # the one-line errors for bad input
        if chans is not None and not ar.channel_ids(chans):
            raise CliError(f"no channel matches {' '.join(args.channel)}", EXIT_USAGE)
    rep = export_mcap(args.file, out, channels=chans, start=args.start, end=args.end,
                      time_offset=args.time_offset or 0.0, force=args.force)
    n_ch = sum(1 for c in rep["channels"].values() if c["messages"])
    print(f"exported {rep['messages']} messages on {n_ch} channels -> {out} ({rep['chunks']} chunks, "
          f"{human_bytes(rep['bytes'])})")
    for name, c in rep["channels"].items():
        if c["messages"]:
            print(f"  {c['topic']}: {c['messages']} messages ({c['encoding']})")
    if rep["not_finite_values"]:
        print(f"fastodin export: note: {rep['not_finite_values']} NaN/Inf values left out of their JSON messages "
              f"(JSON has no NaN/Inf)", file=sys.stderr)
    lost = sum(rep["skipped"].values())
    if lost:
        print(f"fastodin export: error: {lost} records not exported: their times cannot be MCAP timestamps "
              f"({_skipped_line(rep['skipped'])}); --time-offset S shifts every time by S seconds", file=sys.stderr)
        return EXIT_DATA
    return EXIT_OK


def run_import(args: Any) -> int:
    """``fastodin convert IN.mcap OUT.fastpack.zst``."""
    from ..mcap.importer import import_mcap

    check_output(args.output, args.force, args.input)
    rep = import_mcap(args.input, args.output, preset=args.preset, force=args.force)
    print(f"converted {args.input} (mcap) -> {args.output} (archive): {rep['messages']} messages on "
          f"{len(rep['channels'])} channels, {rep['schemas']} schemas, {len(rep['metadata'])} metadata records, "
          f"{rep['attachments']} attachments, {human_bytes(os.path.getsize(args.output))}")
    problems = []
    if rep["skipped"]:
        problems.append("skipped records: " + ", ".join(f"{v} {k}" for k, v in rep["skipped"].items()))
    if rep["inexact_times"]:
        problems.append(f"{rep['inexact_times']} log times more than 104 days after the first are not exact")
    if rep["truncated"]:
        problems.append(f"the input is cut short: {rep['truncated']}")
    for p in problems:
        print(f"fastodin convert: error: not carried: {p}", file=sys.stderr)
    return EXIT_DATA if problems else EXIT_OK
