"""``fastodin convert IN OUT``: between archives, raw FastPack streams and ODIN packet captures.

Input kind by content: archive (``.fastpack.zst``), raw FastPack (``.fastpack``), BURST-framed ODIN
bytes, classic pcap of UDP datagrams (one ODIN packet each), JPack tree (a directory or ``.jpack``
file, as ``fastpack-split`` writes: its FastPack stream).  Output kind by ``--to`` or OUT's
extension: ``.zst`` archive, ``.fastpack`` raw FastPack (what ``zstd -d`` of the archive gives: the
Perl tools read it), ``.burst``/``.bin`` BURST-framed ODIN packets, ``.pcap`` UDP datagrams.
"""
from __future__ import annotations

import os
import time
from typing import Any, List, Optional, Tuple

from ._util import EXIT_DATA, EXIT_IO, EXIT_OK, EXIT_USAGE, CliError, Progress, human_bytes
from .pcap import PcapError, is_pcap, read_pcap, write_pcap
from .sources import check_input, check_readable, is_odin_archive, odin_records, open_input, sniff_bytes

NAME = "convert"
HELP = "convert between archive, raw .fastpack, BURST capture and pcap (ODIN packets)"
EXAMPLE = ("fastodin convert rec.fastpack.zst rec.fastpack          # archive -> raw stream (Perl tools)\n"
           "fastodin convert rec.fastpack rec.fastpack.zst          # raw stream -> archive\n"
           "fastodin convert serial-dump.bin cap.fastpack.zst       # BURST capture -> archive\n"
           "fastodin convert wireshark.pcap cap.fastpack.zst --port 9000\n"
           "fastodin convert cap.fastpack.zst packets.burst          # archive -> BURST-framed packets\n"
           "fastodin convert web rec.fastpack.zst                    # JPack tree (fastpack-split's) -> archive")

KINDS = ("archive", "fastpack", "burst", "pcap")


def add_arguments(p: Any) -> None:
    p.add_argument("input", metavar="IN", help="archive, raw FastPack, BURST capture or pcap")
    p.add_argument("output", metavar="OUT", help="file to write")
    p.add_argument("--to", choices=KINDS, help="output kind (default: from OUT's extension)")
    p.add_argument("--from", dest="from_", choices=KINDS, help="input kind (default: from IN's content)")
    p.add_argument("--preset", default="light", help="archive compression preset (default light)")
    p.add_argument("--odin-db", metavar="FILE", help="OdinDB .odin JSON to type sets announced by 0x01 only")
    p.add_argument("--counts-per-second", type=float, metavar="HZ", help="device clock tick rate (default 1000000)")
    p.add_argument("--port", type=int, metavar="N", help="pcap: only UDP datagrams to port N (in); port to write (out)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")


def out_kind(path: str) -> Optional[str]:
    """Output kind from the file name.

    >>> out_kind("a.fastpack.zst"), out_kind("a.fastpack"), out_kind("x.pcap"), out_kind("x.burst")
    ('archive', 'fastpack', 'pcap', 'burst')
    """
    p = path.lower()
    if p.endswith(".zst"):
        return "archive"
    if p.endswith(".fastpack") or p.endswith(".fp"):
        return "fastpack"
    if p.endswith(".pcap"):
        return "pcap"
    if p.endswith(".burst") or p.endswith(".bin"):
        return "burst"
    return None


def in_kind(path: str) -> str:
    from ..jpack import is_jpack

    if is_jpack(path):
        return "jpack"
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if is_pcap(head):
        return "pcap"
    k = sniff_bytes(head)
    if k == "empty":
        raise CliError(f"{path} is empty", EXIT_DATA)
    if k == "unknown":
        raise CliError(f"{path}: not an archive, FastPack stream, BURST capture or pcap", EXIT_DATA)
    return k


def _writer(path: str, preset: str) -> Any:
    from ..archive.writer import Writer

    try:
        return Writer(path, preset=preset)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_IO) from None


def _write_file(path: str, data: bytes) -> None:
    tmp = path + ".part"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_IO) from None


def _odin_conv_kw(args: Any) -> dict:
    kw: dict = {}
    if args.odin_db:
        check_readable(args.odin_db)
        from ..odin.odindb import load_odin_db

        kw["odin_db"] = load_odin_db(args.odin_db)
    if args.counts_per_second:
        kw["counts_per_second"] = args.counts_per_second
    return kw


def _packets_in(path: str, kind: str, args: Any) -> Tuple[List[Tuple[float, bytes]], str]:
    """ODIN packets of a BURST or pcap capture, with a note on what was skipped."""
    with open(path, "rb") as f:
        data = f.read()
    if kind == "pcap":
        try:
            items, st = read_pcap(data, args.port)
        except PcapError as e:
            raise CliError(f"{path}: {e}", EXIT_DATA) from None
        skipped = {k: v for k, v in st.items() if k not in ("frames", "udp") and v}
        return items, (f"{st['frames']} pcap frames, {st['udp']} UDP datagrams"
                       + (f", skipped {skipped}" if skipped else ""))
    from ..odin.burst import BurstStats, burst_decode

    bs = BurstStats()
    pk = burst_decode(data, bs)
    d = bs.as_dict()
    note = f"{len(pk)} BURST frames"
    bad = {k: v for k, v in d.items() if k not in ("packets", "frames") and v}
    if bad:
        note += f" ({', '.join(f'{k} {v}' for k, v in bad.items())})"
    return [(0.0, p) for p in pk], note


def run(args: Any) -> int:
    check_input(args.input)
    kin = args.from_ or in_kind(args.input)
    kout = args.to or out_kind(args.output)
    if kout is None:
        raise CliError(f"cannot tell the output kind from {args.output!r}: name it .fastpack.zst, .fastpack, "
                       f".burst or .pcap, or pass --to", EXIT_USAGE)
    if os.path.exists(args.output):
        if os.path.samefile(args.input, args.output):
            raise CliError("IN and OUT are the same file", EXIT_USAGE)
        if not args.force:
            raise CliError(f"{args.output} exists (use --force to overwrite)", EXIT_IO)
    if kin == kout and kin != "archive":
        raise CliError(f"IN is already {kin}; nothing to convert", EXIT_USAGE)
    d = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(d):
        raise CliError(f"cannot write {args.output}: directory {d} does not exist", EXIT_IO)
    t0 = time.monotonic()
    before = _stat(args.output)
    try:
        n, unit, note = _convert(args, kin, kout)
    except BaseException:
        now = _stat(args.output)
        if kout == "archive" and now is not None and now != before:  # the archive writer writes OUT in place
            os.unlink(args.output)
        raise
    el = time.monotonic() - t0
    size = os.path.getsize(args.output) if os.path.exists(args.output) else 0
    print(f"converted {args.input} ({kin}) -> {args.output} ({kout}): {n} {unit}, {human_bytes(size)} "
          f"in {el:.2f} s" + (f"; {note}" if note else ""))
    return EXIT_OK


def _stat(path: str) -> Optional[Tuple[int, int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _convert(args: Any, kin: str, kout: str) -> Tuple[int, str, str]:
    if kin in ("burst", "pcap"):
        items, note = _packets_in(args.input, kin, args)
        pk = [p for _, p in items]
        if kout == "archive":
            from ..odin.mapping import OdinToFastPack, WriterSink

            with _writer(args.output, args.preset) as w:
                w.set_tag("converted_from", os.path.basename(args.input))
                conv = OdinToFastPack(WriterSink(w), **_odin_conv_kw(args))
                conv.add_many(pk)
                rep = conv.close()
            return len(pk), "packets", note + _odin_note(rep)
        if kout == "fastpack":
            from ..odin.mapping import convert_packets

            data, rep = convert_packets(pk, **_odin_conv_kw(args))
            _write_file(args.output, data)
            return len(pk), "packets", note + _odin_note(rep)
        if kout == "burst":
            from ..odin.burst import burst_encode_many

            _write_file(args.output, burst_encode_many(pk))
            return len(pk), "packets", note
        if kout == "pcap":
            from ..odin.replay import timed_packets

            items = timed_packets(pk, counts_per_second=args.counts_per_second)
            _write_file(args.output, write_pcap(items, port=args.port or 9000))
            return len(pk), "packets", note
    with open_input(args.input, allow_damage=False) as ar:
        if kout == "archive":
            return _to_archive(ar, args), "records", ""
        if kout == "fastpack":
            return _to_fastpack(ar, args.output), "records", ""
        if not is_odin_archive(ar):
            raise CliError(f"{args.input} holds no ODIN packets (no odin/ channels); it converts to .fastpack or "
                           f".fastpack.zst only", EXIT_USAGE)
        from ..odin.replay import timed_packets

        items = list(timed_packets(odin_records(ar)))
    if kout == "burst":
        from ..odin.burst import burst_encode_many

        _write_file(args.output, burst_encode_many([p for _, p in items]))
    else:
        _write_file(args.output, write_pcap(items, port=args.port or 9000))
    return len(items), "packets", ""


def _odin_note(rep: dict) -> str:
    st = rep.get("stats") or {}
    parts = []
    for k in ("unknown", "malformed", "set_id_mismatches", "undefined_data"):
        if st.get(k):
            parts.append(f"{k} {st[k]}")
    if rep.get("unresolved"):
        parts.append(f"unresolved {rep['unresolved']}")
    return ("; " + ", ".join(parts)) if parts else ""


def _copy_streams(ar: Any, w: Any) -> None:
    """Re-create the input's streams (name, flavor, compression, tags, layouts) in writer ``w``
    so that their records keep their layouts; the records themselves are copied as they are."""
    from ..archive.layout import Layout

    for sid, m in (getattr(ar, "streams", {}) or {}).items():
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            continue
        lays = m.get("layouts") or {}
        kw = {k: Layout.from_json(lays[k]) for k in ("data", "config", "state") if lays.get(k)}
        s = w.create_stream(m["name"], m.get("flavor"), m.get("compression"), **kw)
        for k, v in (m.get("tags") or {}).items():
            s.set_tag(k, v)


def _to_archive(ar: Any, args: Any) -> int:
    n = 0
    prog = Progress("convert", max(len(ar.frames), 1), " frames")
    with _writer(args.output, args.preset) as w:
        for k, v in (ar.tags or {}).items():
            w.set_tag(k, v)
        _copy_streams(ar, w)
        for name, lay in (getattr(ar, "layouts", {}) or {}).items():
            if name not in getattr(ar, "channel_stream", {}):
                try:
                    w.define_channel(name, lay)
                except Exception:
                    pass
        write = w.write
        total = max(sum(e.n_records for e in ar.frames), 1)
        prog.total = total
        prog.unit = " rec"
        from ..errors import UsageError

        for r in ar.records():
            try:
                if r.id == 0:
                    write(r.time, 0, bytes(r.payload))
                else:
                    write(r.time, r.name if r.name is not None else str(r.id), bytes(r.payload))
            except UsageError as e:  # valid FastPack an archive cannot hold (a NaN time): a data problem
                raise CliError(f"{args.input}: record {n} cannot go into an archive: {e}", EXIT_DATA) from None
            n += 1
            if n & 8191 == 0:
                prog.update(n)
    prog.close()
    return n


def _to_fastpack(ar: Any, out: str) -> int:
    """The archive's FastPack stream, frame after frame (exactly what ``zstd -d`` yields)."""
    if ar.format != "archive" and ar.container is None:
        raise CliError("IN is already a raw FastPack stream", EXIT_USAGE)
    n = 0
    tmp = out + ".part"
    prog = Progress("convert", max(len(ar.frames), 1), " frames")
    try:
        with open(tmp, "wb") as f:
            for k, e in enumerate(sorted(ar.frames, key=lambda e: e.data_offset)):
                f.write(ar.frame_data(e))
                n += e.n_records
                prog.update(k + 1)
        os.replace(tmp, out)
    except OSError as e:
        raise CliError(f"cannot write {out}: {e.strerror or e}", EXIT_IO) from None
    finally:
        prog.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return n
