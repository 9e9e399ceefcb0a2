"""Opening inputs for the command line, with one-line errors.

* :func:`open_input` opens an archive or raw FastPack file (``fastodin.open`` semantics) and turns
  "missing", "not ours", "damaged" into :class:`~fastodin.cli._util.CliError` with the right exit code.
* :func:`sniff` tells what a file holds by content: ``archive`` (zstd / skippable magic),
  ``fastpack`` (parses as FastPack records), ``burst`` (BURST-framed ODIN), ``unknown``.
* :func:`read_odin_capture` loads an ODIN packet capture (BURST bytes, or a length-prefixed
  packet list) for ``convert``.

>>> sniff_bytes(b"\\x28\\xb5\\x2f\\xfd....")
'archive'
"""
from __future__ import annotations

import os
import struct
from typing import Any, List, Optional, Tuple

from ..wire import HEADER as _HDR
from ._util import EXIT_DATA, EXIT_IO, CliError, one_line

__all__ = ["open_input", "sniff", "sniff_bytes", "check_readable", "check_input", "is_odin_archive", "odin_cps"]

_U32 = struct.Struct("<I")
ZSTD_MAGIC = 0xFD2FB528


def check_readable(path: str) -> None:
    """Raise CliError (exit 3) unless ``path`` is an existing readable regular file."""
    if path == "-":
        return
    if not os.path.exists(path):
        raise CliError(f"no such file: {path}", EXIT_IO)
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory, not a file", EXIT_IO)
    if not os.access(path, os.R_OK):
        raise CliError(f"permission denied: {path}", EXIT_IO)


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


def _not_ours(path: str, detail: str, *, burst: bool = True) -> CliError:
    """The "not a fastodin archive" error, with a hint when the file is a capture to convert."""
    kind = capture_kind(path)
    if kind == "pcap":
        return CliError(f"{path}: not a fastodin archive or FastPack stream: it is a pcap capture; "
                        f"convert it first: fastodin convert {path} OUT.fastpack.zst", EXIT_DATA)
    if kind == "pcapng":
        return CliError(f"{path}: not a fastodin archive or FastPack stream: it is a pcapng capture; save it as "
                        f"classic pcap (editcap -F pcap {path} IN.pcap), then: fastodin convert IN.pcap "
                        f"OUT.fastpack.zst", EXIT_DATA)
    if kind == "burst" and burst:
        return CliError(f"{path}: not a fastodin archive or FastPack stream: it looks like a BURST-framed "
                        f"ODIN capture; convert it first: fastodin convert {path} OUT.fastpack.zst "
                        f"(fastodin replay sends it as it is)", EXIT_DATA)
    return CliError(f"{path}: not a {detail}", EXIT_DATA)


def open_input(path: str, *, allow_damage: bool = True) -> Any:
    """Open an archive or a raw FastPack file for reading; errors become one-line CliErrors.

    A file that parses as neither (random bytes, text, a truncated header) is "not a fastodin
    archive or FastPack stream" (exit 1); for a pcap or BURST capture the message says to
    ``fastodin convert`` it first.  A directory is read as a JPack tree.
    """
    check_input(path)
    try:
        from ..archive.reader import open_archive
    except ImportError as e:  # pragma: no cover - archive module missing
        raise CliError(f"archive support is not available in this build ({e})", EXIT_DATA) from None
    from ..errors import DataError, FastOdinError

    try:
        ar = open_archive(path)
    except (DataError, FastOdinError) as e:
        raise _not_ours(path, f"readable fastodin archive or FastPack stream: {one_line(e)}") from None
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}", EXIT_IO) from None
    if ar.format == "fastpack" and ar.damage:
        recs = sum(e.n_records for e in ar.frames)
        if recs == 0 or capture_kind(path) in ("pcap", "pcapng"):  # a pcap header parses as one FastPack record
            ar.close()
            raise _not_ours(path, f"fastodin archive or FastPack stream "
                                  f"({ar.damage[0].reason} at offset {ar.damage[0].offset})", burst=recs == 0)
    if ar.damage and not allow_damage:
        d = ar.damage[0]
        ar.close()
        raise CliError(f"{path} is damaged at offset {d.offset} ({d.reason}); "
                       f"fastodin recover IN OUT saves the readable part", EXIT_DATA)
    return ar


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
    """The last ``{"odin": "report"}`` metadata (written when a recording is closed)."""
    rep = None
    for _, m in file_meta(ar):
        if isinstance(m, dict) and m.get("odin") == "report":
            rep = m
    return rep


def odin_records(ar: Any, start: Optional[float] = None, end: Optional[float] = None,
                 channels: Any = "odin/*") -> Any:
    """The archive records of the ODIN channels, in file order, for :func:`fastodin.odin.decode`
    and :func:`fastodin.odin.replay.timed_packets`."""
    return ar.records(channels=channels, start=start, end=end)
