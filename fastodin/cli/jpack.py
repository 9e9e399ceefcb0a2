"""``fastodin export FILE --jpack DIR``: the JPack tree of the Perl tools' ``fastpack-split``.

``DIR/data/jpack/<set>/<seq>.jpack``, what ``fastpack-split --html_container DIR/index.html FILE``
writes (layout: spec/jpack.md).  The options live here; :mod:`fastodin.cli.export` hands over.
"""
from __future__ import annotations

import os
from typing import Any

from ..jpack import DEFAULT_BYTE_LIMIT, DEFAULT_MESSAGE_LIMIT, PREFIX
from ._util import EXIT_IO, EXIT_OK, EXIT_USAGE, CliError, human_bytes
from .sources import open_input

EXAMPLE = ("fastodin export rec.fastpack.zst --jpack web              # web/data/jpack/<set>/<seq>.jpack\n"
           "fastodin export rec.fastpack --jpack web --message-limit 100000 --compress")


def add_arguments(p: Any, group: Any) -> None:
    """``--jpack DIR`` into the output-kind ``group``, and its own options."""
    group.add_argument("--jpack", metavar="DIR", help="JPack tree DIR/data/jpack/... (fastpack-split's, for the "
                       "Perl tools' browser chunk loader)")
    j = p.add_argument_group("JPack (--jpack)")
    j.add_argument("--message-limit", type=int, default=DEFAULT_MESSAGE_LIMIT, metavar="N",
                   help=f"a new file after N+1 messages, as fastpack-split (default {DEFAULT_MESSAGE_LIMIT}; 0: none)")
    j.add_argument("--byte-limit", type=int, default=DEFAULT_BYTE_LIMIT, metavar="B",
                   help=f"a new file before the FastPack bytes of one reach B (default {DEFAULT_BYTE_LIMIT}; 0: none)")
    j.add_argument("--compress", action="store_true", help="raw-deflate chunks (jpack_compression deflate)")
    j.add_argument("--append", action="store_true", help="add a set to an existing tree (as fastpack-split does)")


def run(args: Any) -> int:
    for opt in ("channel", "start", "end", "odin_db", "output"):
        if getattr(args, opt, None) is not None:
            flag = {"odin_db": "--odin-db", "output": "-o"}.get(opt, f"--{opt}")
            raise CliError(f"{flag} does not apply to --jpack: it writes the whole FastPack stream, as fastpack-split "
                           f"does", EXIT_USAGE)
    for opt in ("message_limit", "byte_limit"):
        if getattr(args, opt) < 0:
            raise CliError(f"--{opt.replace('_', '-')} must be >= 0 (0: no limit)", EXIT_USAGE)
    if args.force and args.append:
        raise CliError("--force and --append exclude each other", EXIT_USAGE)
    tree = os.path.join(args.jpack, PREFIX)
    if os.path.lexists(tree) and not (args.force or args.append):
        raise CliError(f"{tree} exists (use --force to replace it, --append to add a set)", EXIT_IO)
    if os.path.exists(args.jpack) and not os.path.isdir(args.jpack):
        raise CliError(f"{args.jpack} exists and is not a directory", EXIT_USAGE)
    from ..jpack import write_tree

    with open_input(args.file, allow_damage=False) as ar:
        try:
            rep = write_tree(ar, args.jpack, message_limit=args.message_limit, byte_limit=args.byte_limit,
                             compress=args.compress, force=args.force, append=args.append)
        except FileExistsError as e:
            raise CliError(str(e.strerror), EXIT_IO) from None
        except OSError as e:
            raise CliError(f"cannot write {args.jpack}: {e.strerror or e}", EXIT_IO) from None
    where = os.path.join(tree, f"{rep.set_index:032x}")
    print(f"exported {rep.records} messages ({human_bytes(rep.stream_bytes)} FastPack) -> {where}/ "
          f"({len(rep.files)} .jpack files, {human_bytes(rep.bytes_written)}, {rep.compression})")
    return EXIT_OK
