"""Opening inputs for the command line, with one-line errors.

* :func:`open_input` opens an archive or raw FastPack file (``fastodin.open`` semantics) and turns
  "missing", "not ours", "damaged" into :class:`~fastodin.cli._util.CliError` with the right exit code.
* :func:`sniff` tells what a file holds by content: ``archive`` (zstd / skippable magic),
  ``fastpack`` (parses as FastPack records), ``burst`` (BURST-framed ODIN), ``unknown``.
* ``-`` is standard input: :func:`open_input` and :func:`local_path` copy it to a temporary
  file first (the archive reader needs random access), :func:`stdin_stream` reads it as it comes.

>>> sniff_bytes(b"\\x28\\xb5\\x2f\\xfd....")
'archive'
"""
from __future__ import annotations

import contextlib
import os
import shutil
import struct
import sys
import tempfile
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple

from ..wire import HEADER as _HDR
from ._util import EXIT_DATA, EXIT_IO, EXIT_USAGE, CliError, is_terminal, one_line

__all__ = ["open_input", "add_namespace_argument", "sniff", "sniff_bytes", "check_readable", "check_input",
           "is_odin_archive", "odin_cps", "STDIO", "shown", "stdin_stream", "local_path", "record_total",
           "check_output", "each_input"]

#: The file argument that means standard input (or, for an output, standard output).
STDIO = "-"

_U32 = struct.Struct("<I")
ZSTD_MAGIC = 0xFD2FB528


def shown(path: str) -> str:
    """How a file argument is named in messages (``-`` is ``<stdin>``).

    >>> shown("-"), shown("a.zst")
    ('<stdin>', 'a.zst')
    """
    return "<stdin>" if path == STDIO else path


def stdin_stream() -> BinaryIO:
    """Standard input as bytes; a usage error (exit 2) when it is a terminal (nothing piped in)."""
    f = getattr(sys.stdin, "buffer", None)
    if f is None or is_terminal(f):
        raise CliError("'-' reads standard input, but nothing is piped in (it is a terminal)", EXIT_USAGE)
    return f  # type: ignore[return-value]


@contextlib.contextmanager
def local_path(path: str, head: bytes = b"") -> Iterator[str]:
    """``path`` itself, or for ``-`` a temporary file holding ``head`` plus the rest of standard
    input (removed on exit).  The copy goes to the temporary directory (``TMPDIR``), so memory stays
    bounded whatever the size of the stream."""
    if path != STDIO:
        yield path
        return
    src = stdin_stream()
    fd, tmp = tempfile.mkstemp(prefix="fastodin-stdin-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            shutil.copyfileobj(src, f, 1 << 20)
        yield tmp
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def check_output(out: str, force: bool, inp: Optional[str] = None) -> None:
    """Raise CliError unless file OUT may be written: not IN itself (exit 2), not an existing file
    unless ``force`` (exit 3), in a directory that exists (exit 3)."""
    if os.path.exists(out):
        if inp is not None and inp != STDIO and os.path.samefile(inp, out):
            raise CliError("IN and OUT are the same file", EXIT_USAGE)
        if not force:
            raise CliError(f"{out} exists (use --force to overwrite)", EXIT_IO)
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise CliError(f"cannot write {out}: directory {d} does not exist", EXIT_IO)


def each_input(paths: List[str], command: str, work: Any, *,
               namespace: bool = True) -> Iterator[Tuple[str, Any, Optional[str], int]]:
    """Open every path in turn and yield ``(path, work(archive), None, 0)``; a file that fails gives
    ``(path, None, error line, exit code)`` after printing that one line on stderr, and the next file
    is tried.  With a single path its error propagates (``main`` reports it as usual)."""
    for path in paths:
        try:
            with open_input(path, namespace=namespace) as ar:
                got = work(ar)
        except (BrokenPipeError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - one line per file that fails, then the next file
            if len(paths) == 1:
                raise
            from . import describe_error

            line, code = describe_error(e, command)
            sys.stdout.flush()
            print(line, file=sys.stderr)
            yield path, None, line, code
            continue
        yield path, got, None, 0


def check_readable(path: str, *, random_access: bool = True) -> None:
    """Raise CliError (exit 3) unless ``path`` is an existing readable file -- a regular file whose
    size can be trusted when ``random_access`` (no FIFO, device, socket or /proc pseudo-file:
    refused at once, never waited on)."""
    if path == "-":
        return
    if not os.path.exists(path):
        raise CliError(f"no such file: {path}", EXIT_IO)
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory, not a file", EXIT_IO)
    if not os.access(path, os.R_OK):
        raise CliError(f"permission denied: {path}", EXIT_IO)
    if random_access:
        from ..archive.reader import regular_file_size
        from ..errors import NotSeekableError

        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as e:
            raise CliError(f"{path}: {e.strerror or e}", EXIT_IO) from None
        try:
            regular_file_size(fd, path)
        except NotSeekableError as e:
            raise CliError(str(e), EXIT_IO) from None
        finally:
            os.close(fd)


def check_input(path: str) -> None:
    """:func:`check_readable` for a file; a directory must be a JPack tree (else CliError, exit 3)."""
    if not os.path.isdir(path):
        check_readable(path)
        return
    from ..errors import JPackError
    from ..jpack import tree_files

    try:
        tree_files(path)
    except JPackError as e:
        raise CliError(f"{path} is a directory, not a file ({e.reason})", EXIT_IO) from None
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}", EXIT_IO) from None


def sniff_bytes(head: bytes) -> str:
    """Classify the first bytes of a file.

    >>> sniff_bytes(b""), sniff_bytes(bytes(16))
    ('empty', 'fastpack')
    """
    if not head:
        return "empty"
    if len(head) >= 4:
        m = _U32.unpack_from(head, 0)[0]
        if m == ZSTD_MAGIC or 0x184D2A50 <= m <= 0x184D2A5F:
            return "archive"
    if len(head) >= 16:
        t, i, n = _HDR.unpack_from(head, 0)
        if n <= 1 << 28 and (16 + n + (-n & 7) <= len(head) or len(head) >= 1 << 16):
            # a plausible first record; check a few more when we can
            pos, k = 0, 0
            while pos + 16 <= len(head) and k < 64:
                t, i, n = _HDR.unpack_from(head, pos)
                if n > 1 << 28:
                    break
                pos += 16 + n + (-n & 7)
                k += 1
            else:
                return "fastpack"
            if pos >= len(head):
                return "fastpack"
    if b"\x00" in head:
        return "burst"
    return "unknown"


def sniff(path: str, n: int = 1 << 16) -> str:
    """Classify a file by its first bytes (see :func:`sniff_bytes`)."""
    check_readable(path)
    with open(path, "rb") as f:
        return sniff_bytes(f.read(n))


def capture_kind(path: str, n: int = 1 << 12) -> Optional[str]:
    """``pcap``, ``pcapng`` or ``burst`` when the file is an ODIN packet capture (which ``convert`` turns into
    an archive) rather than a recording, else None.  Looks at the first ``n`` bytes only.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
    ...     _ = f.write(b"\\xd4\\xc3\\xb2\\xa1" + bytes(20)); f.flush(); capture_kind(f.name)
    'pcap'
    """
    try:
        with open(path, "rb") as f:
            head = f.read(n)
    except OSError:
        return None
    from .pcap import is_pcap

    if is_pcap(head):
        return "pcapng" if head[:4] == b"\x0a\x0d\x0d\x0a" else "pcap"
    if b"\x00" in head:
        from ..odin.burst import BurstStats, burst_decode

        st = BurstStats()
        try:
            good = burst_decode(head[:head.rindex(b"\x00") + 1], st)
        except Exception:  # noqa: BLE001 - a sniff never fails
            return None
        bad = st.crc_errors + st.cobs_errors + st.short_frames
        if good and len(good) >= bad:
            return "burst"
    return None


def _not_ours(path: str, detail: str, *, burst: bool = True, arg: Optional[str] = None) -> CliError:
    """The "not a fastodin archive" error, with a hint when the file is a capture to convert
    (``arg``: the file as the user named it, when ``path`` is a copy of standard input)."""
    kind = capture_kind(path)
    path = path if arg is None else arg
    what = shown(path)
    if kind == "pcap":
        return CliError(f"{what}: not a fastodin archive or FastPack stream: it is a pcap capture; "
                        f"convert it first: fastodin convert {path} OUT.fastpack.zst", EXIT_DATA)
    if kind == "pcapng":
        return CliError(f"{what}: not a fastodin archive or FastPack stream: it is a pcapng capture; save it as "
                        f"classic pcap (editcap -F pcap {path} IN.pcap), then: fastodin convert IN.pcap "
                        f"OUT.fastpack.zst", EXIT_DATA)
    if kind == "burst" and burst:
        return CliError(f"{what}: not a fastodin archive or FastPack stream: it looks like a BURST-framed "
                        f"ODIN capture; convert it first: fastodin convert {path} OUT.fastpack.zst "
                        f"(fastodin replay sends it as it is)", EXIT_DATA)
    return CliError(f"{what}: not a {detail}", EXIT_DATA)


def add_namespace_argument(p: Any) -> None:
    """The ``--no-namespace`` option of the commands that read a recording."""
    p.add_argument("--no-namespace", dest="namespace", action="store_false",
                   help="the stream was written without a namespace (Perl encode_fastpack without $ns): "
                        "every record is data, ids carry no names")


def open_input(path: str, *, allow_damage: bool = True, head: bytes = b"", namespace: bool = True) -> Any:
    """Open an archive or a raw FastPack file for reading; errors become one-line CliErrors.

    A file that parses as neither (random bytes, text, a truncated header) is "not a fastodin
    archive or FastPack stream" (exit 1); for a pcap or BURST capture the message says to
    ``fastodin convert`` it first.  ``-`` reads standard input to its end (into a temporary file,
    removed at once: the open archive keeps its descriptor) and names it ``-``; ``head``: bytes
    of standard input already read by the caller.  A directory is read as a JPack tree.
    ``namespace=False``: see :func:`fastodin.open`.
    """
    check_input(path)
    with local_path(path, head) as local:
        ar = _open_input(local, path, allow_damage, namespace)
    ar.path = path
    return ar


def _open_input(path: str, arg: str, allow_damage: bool, namespace: bool = True) -> Any:
    try:
        from ..archive.reader import open_archive
    except ImportError as e:  # pragma: no cover - archive module missing
        raise CliError(f"archive support is not available in this build ({e})", EXIT_DATA) from None
    from ..errors import DataError, FastOdinError, NotSeekableError, UsageError

    what = shown(arg)
    try:
        ar = open_archive(path, namespace=namespace)
    except NotSeekableError as e:    # swapped for a FIFO since check_readable
        raise CliError(str(e), EXIT_IO) from None
    except UsageError as e:          # --no-namespace on a fastodin archive
        raise CliError(one_line(e), EXIT_USAGE) from None
    except (DataError, FastOdinError) as e:
        raise _not_ours(path, f"readable fastodin archive or FastPack stream: {one_line(e)}", arg=arg) from None
    except OSError as e:
        raise CliError(f"{what}: {e.strerror or e}", EXIT_IO) from None
    if ar.format == "fastpack" and ar.damage:
        recs = sum(e.n_records for e in ar.frames)
        if recs == 0 or capture_kind(path) in ("pcap", "pcapng"):  # a pcap header parses as one FastPack record
            ar.close()
            raise _not_ours(path, f"fastodin archive or FastPack stream "
                                  f"({ar.damage[0].reason} at offset {ar.damage[0].offset})", burst=recs == 0,
                            arg=arg)
    if ar.damage and not allow_damage:
        d = ar.damage[0]
        ar.close()
        raise CliError(f"{what} is damaged at offset {d.offset} ({d.reason}); "
                       f"fastodin recover IN OUT saves the readable part", EXIT_DATA)
    return ar


def record_total(ar: Any, ids: Optional[set], start: Optional[float] = None, end: Optional[float] = None) -> int:
    """How many records of reader ids ``ids`` (None: all) the index puts in ``[start, end)`` —
    an upper bound (a frame's channel counts whose time range overlaps), for progress totals."""
    n = 0
    for e in ar.frames:
        for cid, c in e.channels.items():
            if ids is not None and cid not in ids:
                continue
            if (start is None or not c[3] < start) and (end is None or not c[2] >= end):
                n += int(c[0])
    return n


def file_meta(ar: Any) -> List[Tuple[float, Any]]:
    """Every decodable id-0 metadata object of an open archive, in file order: ``[(time, obj)]``.

    Only frames that hold id-0 records are decompressed (the result is cached on ``ar``).
    """
    from ..metadata import decode_meta

    cached = getattr(ar, "_cli_file_meta", None)
    if cached is not None:
        return cached
    out: List[Tuple[float, Any]] = []
    if 0 in {cid for e in ar.frames for cid in e.channels}:
        for r in ar.records(channels=[0]):
            if r.id != 0 or not len(r.payload):
                continue
            try:
                out.append((r.time, decode_meta(r.payload)))
            except Exception:
                continue
    try:
        ar._cli_file_meta = out
    except AttributeError:  # pragma: no cover
        pass
    return out


def is_odin_archive(ar: Any) -> bool:
    """Does the archive hold an ODIN capture (channels ``odin/...``)?"""
    return any(isinstance(n, str) and n.startswith("odin/") for n in ar.ids)


def odin_cps(ar: Any) -> Optional[float]:
    """counts_per_second recorded by the ODIN mapping, if any."""
    for _, m in file_meta(ar):
        if isinstance(m, dict) and m.get("odin") == "stream" and m.get("counts_per_second"):
            return float(m["counts_per_second"])
    return None


def odin_report(ar: Any) -> Optional[dict]:
    """The last ``{"odin": "report"}`` metadata (written when a recording is closed); one whose
    JSON types are wrong is ignored with a note on ``ar`` (the counters are then decoded)."""
    rep = None
    for _, m in file_meta(ar):
        if isinstance(m, dict) and m.get("odin") == "report":
            rep = m
    bad = None if rep is None else report_problem(rep)
    if bad is not None:
        notes = getattr(ar, "notes", None)
        if isinstance(notes, list) and not any(n.startswith("ODIN report ignored") for n in notes):
            notes.append(f"ODIN report ignored: {bad}")
        return None
    return rep


def _number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def report_problem(rep: Dict[str, Any]) -> Optional[str]:
    """What is wrong with the JSON types of the report fields ``info``/``verify`` read, or None.

    >>> report_problem({"odin": "report", "stats": [1]})
    "'stats' is list, expected a map"
    """
    for key in ("stats", "sets", "burst"):
        if not isinstance(rep.get(key) or {}, dict):
            return f"{key!r} is {type(rep.get(key)).__name__}, expected a map"
    if not _number(rep.get("unresolved")):
        return "'unresolved' is not a number"
    if not _number((rep.get("stats") or {}).get("set_id_mismatches")) or \
            not _number((rep.get("burst") or {}).get("crc_errors")):
        return "a CRC error count is not a number"
    for sid, st in (rep.get("sets") or {}).items():
        q = st.get("sequence") if isinstance(st, dict) else None
        if not isinstance(st, dict) or not isinstance(q or {}, dict) or \
                not all(_number((q or {}).get(k)) for k in ("received", "gaps", "lost", "duplicates", "late")):
            return f"set {sid!r}: not a map of counters"
    return None


def odin_records(ar: Any, start: Optional[float] = None, end: Optional[float] = None,
                 channels: Any = "odin/*") -> Any:
    """The archive records of the ODIN channels, in file order, for :func:`fastodin.odin.decode`
    and :func:`fastodin.odin.replay.timed_packets`."""
    return ar.records(channels=channels, start=start, end=end)
