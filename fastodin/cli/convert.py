"""``fastodin convert IN OUT``: between archives, raw FastPack streams and ODIN packet captures.

Input kind by content: archive (``.fastpack.zst``), raw FastPack (``.fastpack``), BURST-framed ODIN
bytes, classic pcap of UDP datagrams (one ODIN packet each), JPack tree (a directory or ``.jpack``
file, as ``fastpack-split`` writes: its FastPack stream).  Output kind by ``--to`` or OUT's
extension: ``.zst`` archive, ``.fastpack`` raw FastPack (what ``zstd -d`` of the archive gives: the
Perl tools read it), ``.burst``/``.bin`` BURST-framed ODIN packets, ``.pcap`` UDP datagrams.

``-`` as IN reads standard input (a BURST stream is converted as it comes; an archive or raw
FastPack is copied to a temporary file first: the reader needs random access); ``-`` as OUT writes
a raw FastPack, BURST or pcap stream to standard output (``--to`` says which; an archive needs a
seekable file).  A damaged capture — a pcap cut inside a frame, BURST frames that fail their check
after the first delimiter, a BURST capture that ends inside a frame — is still converted (every
good packet) and then exit 1 with the counts; a BURST input without one good frame is exit 1 and
no OUT.  A progress line shows on stderr when it is a terminal.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, BinaryIO, Callable, Iterator, List, Optional, Tuple

from ..progress import Progress, track
from ._util import (EXIT_DATA, EXIT_IO, EXIT_OK, EXIT_USAGE, CliError, human_bytes, is_terminal, open_writer,
                    plural, port_number, positive_float, preset_arg)
from .pcap import PcapError, PcapWriter, is_pcap, read_pcap
from .sources import (STDIO, add_namespace_argument, check_input, check_output, check_readable, is_odin_archive,
                      odin_records, open_input, record_total, shown, sniff_bytes, stdin_stream)

NAME = "convert"
HELP = "convert between archive, raw .fastpack, BURST capture and pcap (ODIN packets)"
EXAMPLE = ("fastodin convert rec.fastpack.zst rec.fastpack          # archive -> raw stream (Perl tools)\n"
           "fastodin convert rec.fastpack rec.fastpack.zst          # raw stream -> archive\n"
           "fastodin convert serial-dump.bin cap.fastpack.zst       # BURST capture -> archive\n"
           "fastodin convert wireshark.pcap cap.fastpack.zst --port 9000\n"
           "fastodin convert cap.fastpack.zst packets.burst          # archive -> BURST-framed packets\n"
           "fastodin convert cap.fastpack.zst - --to fastpack | perl-tool   # stdout; IN - reads stdin\n"
           "fastodin convert web rec.fastpack.zst                    # JPack tree (fastpack-split's) -> archive\n"
           "fastodin convert robot.mcap robot.fastpack.zst          # MCAP -> archive (and back: OUT.mcap)")

KINDS = ("archive", "fastpack", "burst", "pcap", "mcap")
CHUNK = 1 << 20     # bytes read at a time from a BURST input
BATCH = 8192        # packets / records written at a time


def add_arguments(p: Any) -> None:
    p.add_argument("input", metavar="IN", help="archive, raw FastPack, BURST capture or pcap (- = standard input)")
    p.add_argument("output", metavar="OUT", help="file to write (- = standard output, with --to fastpack|burst|pcap)")
    p.add_argument("--to", choices=KINDS, help="output kind (default: from OUT's extension)")
    p.add_argument("--from", dest="from_", choices=KINDS, help="input kind (default: from IN's content)")
    p.add_argument("--preset", type=preset_arg, default="light",
                   help="archive compression preset: none fast light medium heavy tight max, or a zstd level "
                        "(default light)")
    p.add_argument("--odin-db", metavar="FILE", help="OdinDB .odin JSON to type sets announced by 0x01 only")
    p.add_argument("--counts-per-second", type=positive_float, metavar="HZ",
                   help="device clock tick rate, > 0 (default 1000000)")
    p.add_argument("--port", type=port_number, metavar="N",
                   help="pcap: only UDP datagrams to port N (in); port to write (out, default 9000)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite OUT if it exists")
    add_namespace_argument(p)


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
    if p.endswith(".mcap"):
        return "mcap"
    return None


def head_kind(head: bytes, name: str) -> str:
    """Input kind from the first bytes of IN (``name`` for the messages).

    >>> head_kind(b"\\xd4\\xc3\\xb2\\xa1" + bytes(20), "x"), head_kind(b"\\x28\\xb5\\x2f\\xfd....", "x")
    ('pcap', 'archive')
    """
    if is_pcap(head):
        return "pcap"
    k = sniff_bytes(head)
    if k == "empty":
        raise CliError(f"{name} is empty", EXIT_DATA)
    if k == "unknown":
        raise CliError(f"{name}: not an archive, FastPack stream, BURST capture or pcap", EXIT_DATA)
    return k


def in_kind(path: str) -> str:
    """Input kind of the file (or JPack tree) ``path``."""
    from ..jpack import is_jpack

    if is_jpack(path):
        return "jpack"
    with open(path, "rb") as f:
        return head_kind(f.read(1 << 16), path)


def in_kind_is_jpack(path: str) -> bool:
    from ..jpack import is_jpack

    return is_jpack(path)


class _Input:
    """IN as bytes, a file or standard input: ``head`` (its first 64 KiB) to tell the kind, then
    ``chunks()`` or ``read_all()`` from the start; ``size`` is None for standard input."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.name = shown(path)
        self.jpack = False
        if path == STDIO:
            self.f: BinaryIO = stdin_stream()
            self.size: Optional[int] = None
            self._own = False
        elif in_kind_is_jpack(path):  # a JPack tree (a directory) or .jpack file: read by open_input
            self.jpack = True
            self.f = open(os.devnull, "rb")
            self.size = None
            self._own = True
        else:
            self.f = open(path, "rb")
            self.size = os.fstat(self.f.fileno()).st_size
            self._own = True
        self.head = self.f.read(1 << 16)
        self._used = False

    def chunks(self, n: int = CHUNK) -> Iterator[bytes]:
        self._use()
        if self.head:
            yield self.head
        while True:
            b = self.f.read(n)
            if not b:
                return
            yield b

    def read_all(self) -> bytes:
        self._use()
        return self.head + self.f.read()

    def _use(self) -> None:
        if self._used:  # pragma: no cover - a bug of ours
            raise RuntimeError("IN read twice")
        self._used = True

    def close(self) -> None:
        if self._own:
            self.f.close()


class _ByteOut:
    """A byte-stream OUT: written to ``OUT.part`` and renamed by ``commit()``, or standard output."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.n = 0
        self.tmp: Optional[str] = None
        if path == STDIO:
            self.f: BinaryIO = sys.stdout.buffer
        else:
            self.tmp = path + ".part"
            try:
                self.f = open(self.tmp, "wb")
            except OSError as e:
                raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_IO) from None

    def write(self, b: bytes) -> None:
        try:
            self.f.write(b)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise CliError(f"cannot write {shown(self.path)}: {e.strerror or e}", EXIT_IO) from None
        self.n += len(b)

    def commit(self) -> None:
        try:
            if self.tmp is None:
                self.f.flush()
                return
            self.f.close()
            os.replace(self.tmp, self.path)
            self.tmp = None
        except BrokenPipeError:
            raise
        except OSError as e:
            raise CliError(f"cannot write {shown(self.path)}: {e.strerror or e}", EXIT_IO) from None

    def abort(self) -> None:
        if self.tmp is not None:
            self.f.close()
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None


def _writer(path: str, preset: Any, force: bool, time_base: Any = None) -> Any:
    return open_writer(path, force, preset=preset, time_base=time_base)


def _odin_conv_kw(args: Any) -> dict:
    kw: dict = {}
    if args.odin_db:
        check_readable(args.odin_db, random_access=False)
        from ..odin.odindb import load_odin_db

        kw["odin_db"] = load_odin_db(args.odin_db)
    if args.counts_per_second:
        kw["counts_per_second"] = args.counts_per_second
    return kw


def run(args: Any) -> int:
    check_input(args.input)
    from .mcapcli import is_mcap_file, run_export, run_import

    if args.from_ == "mcap" or (args.from_ is None and args.input != STDIO and is_mcap_file(args.input)):
        if (args.to or out_kind(args.output)) != "archive":    # MCAP in: spec/mcap.md §5
            raise CliError("an MCAP file converts to an archive: name OUT .fastpack.zst (or --to archive)", EXIT_USAGE)
        return run_import(args)
    to_stdout = args.output == STDIO
    kout = args.to or (None if to_stdout else out_kind(args.output))
    if kout is None and to_stdout:
        raise CliError("OUT - (standard output) needs --to fastpack, --to burst or --to pcap", EXIT_USAGE)
    if kout == "mcap":      # the same as: fastodin export IN --mcap OUT
        if to_stdout or args.input == STDIO:
            raise CliError("MCAP output needs files: fastodin export IN --mcap OUT.mcap", EXIT_USAGE)
        args.file, args.channel, args.start, args.end, args.time_offset = args.input, None, None, None, None
        return run_export(args, args.output)
    if kout is None:
        raise CliError(f"cannot tell the output kind from {args.output!r}: name it .fastpack.zst, .fastpack, "
                       f".burst or .pcap, or pass --to", EXIT_USAGE)
    if to_stdout and kout == "archive":
        raise CliError("an archive cannot go to standard output (it needs a seekable file); --to fastpack writes "
                       "its raw FastPack stream (what zstd -d gives)", EXIT_USAGE)
    if to_stdout and is_terminal(sys.stdout):
        raise CliError("OUT - is a terminal: redirect standard output to a file or a pipe", EXIT_USAGE)
    if not to_stdout:
        check_output(args.output, args.force, args.input)
    t0 = time.monotonic()
    inp = _Input(args.input)
    try:
        kin = args.from_ or ("jpack" if inp.jpack else head_kind(inp.head, inp.name))
        if kin == kout and kin != "archive":
            raise CliError(f"IN is already {kin}; nothing to convert", EXIT_USAGE)
        before = None if to_stdout else _stat(args.output)
        out = None if kout == "archive" else _ByteOut(args.output)
        try:
            n, unit, note, damage = _convert(args, inp, kin, kout, out)
            if out is not None:
                out.commit()
        except BaseException:
            if out is not None:
                out.abort()
            now = None if to_stdout else _stat(args.output)
            if kout == "archive" and now is not None and now != before:  # the archive writer writes OUT in place
                os.unlink(args.output)
            raise
    finally:
        inp.close()
    el = time.monotonic() - t0
    size = out.n if out is not None else (os.path.getsize(args.output) if os.path.exists(args.output) else 0)
    print(f"converted {inp.name} ({kin}) -> {'<stdout>' if to_stdout else args.output} ({kout}): "
          f"{plural(n, unit)}, {human_bytes(size)} in {el:.2f} s" + (f"; {note}" if note else ""),
          file=sys.stderr if to_stdout else sys.stdout)
    if damage:
        sys.stdout.flush()
        raise CliError(f"{inp.name}: {damage}; OUT holds every good packet", EXIT_DATA)
    return EXIT_OK


def _stat(path: str) -> Optional[Tuple[int, int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _convert(args: Any, inp: _Input, kin: str, kout: str, out: Optional[_ByteOut]) -> Tuple[int, str, str, str]:
    """Convert; returns ``(count, unit, note, damage)`` (``damage``: what IN lost, "" when nothing)."""
    if kin in ("burst", "pcap"):
        return _from_capture(args, inp, kin, kout, out)
    with open_input(inp.path, allow_damage=False, head=inp.head, namespace=args.namespace) as ar:
        total = record_total(ar, None)
        with Progress("convert", total, "rec") as bar:
            if kout == "archive":
                return _to_archive(ar, args, bar), "record", "", ""
            assert out is not None
            if kout == "fastpack":
                return _to_fastpack(ar, out, bar), "record", "", ""
            if not is_odin_archive(ar):
                raise CliError(f"{inp.name} holds no ODIN packets (no odin/ channels); it converts to .fastpack or "
                               f".fastpack.zst only", EXIT_USAGE)
            from ..odin.replay import timed_packets

            items = timed_packets(track(odin_records(ar), bar, record_total(ar, ar.channel_ids("odin/*"))))
            return _write_packets(items, kout, out, args), "packet", "", ""


def _write_packets(items: Iterator[Tuple[float, bytes]], kout: str, out: _ByteOut, args: Any) -> int:
    """``(time, packet)`` items to OUT as BURST frames or pcap datagrams; returns the count."""
    n = 0
    batch: List[Tuple[float, bytes]] = []
    put: Callable[[List[Tuple[float, bytes]]], None]
    if kout == "burst":
        from ..odin.burst import burst_encode_many

        def put(b: List[Tuple[float, bytes]]) -> None:
            out.write(burst_encode_many([p for _, p in b]))
    else:
        put = PcapWriter(out.write, port=9000 if args.port is None else args.port).add
    for it in items:  # a packet too big for a datagram: PcapError (exit 1)
        batch.append(it)
        if len(batch) >= BATCH:
            put(batch)
            n += len(batch)
            batch = []
    if batch:
        put(batch)
        n += len(batch)
    return n


class _BurstIn:
    """The packets of a BURST input, batch by batch as its bytes come, with what failed.

    Bytes before the first 0x00 are the lead-in (a capture that starts inside a frame): a frame
    there that fails its check is skipped, not damage; every failed frame after it, and a last
    frame without its delimiter, is damage."""

    def __init__(self, inp: _Input, bar: Progress) -> None:
        from ..odin.burst import BurstDecoder

        self.inp = inp
        self.bar = bar
        self.dec = BurstDecoder()
        self.lead: Optional[dict] = None     # counters after the lead-in
        self.tail = 0                        # bytes of a last frame without its delimiter

    def batches(self) -> Iterator[List[bytes]]:
        dec = self.dec
        done = 0
        for chunk in self.inp.chunks():
            done += len(chunk)
            if self.lead is None:
                i = chunk.find(b"\0")
                if i < 0:
                    dec.feed(chunk)
                    continue
                dec.feed(chunk[:i + 1])
                self.lead = dec.stats.as_dict()
                chunk = chunk[i + 1:]
            dec.feed(chunk)
            got = dec.take()
            if got:
                yield got
            self.bar(done, self.inp.size)
        if self.lead is None:
            self.lead = dec.stats.as_dict()
        if dec.buffered:
            self.tail = dec.buffered
            dec.stats.garbage_bytes += dec.buffered
            dec.stats.cobs_errors += 1

    def note_and_damage(self) -> Tuple[str, str]:
        d = self.dec.stats.as_dict()
        lead = self.lead or {}
        failed = ("crc_errors", "cobs_errors", "short_frames", "oversize")
        bad = {k: v for k, v in d.items() if k not in ("packets", "frames", "empty_frames") and v}
        note = plural(d["packets"], "BURST frame")
        if bad:
            note += f" ({', '.join(f'{k} {v}' for k, v in bad.items())})"
        lead_bad = sum(lead.get(k, 0) for k in failed)
        if lead_bad and not lead.get("packets"):
            note += f"; {plural(lead.get('garbage_bytes', 0), 'byte')} of lead-in before the first frame skipped"
        lost = {k: d[k] - lead.get(k, 0) for k in failed}
        if self.tail:
            lost["cobs_errors"] -= 1
        parts = [f"{k} {v}" for k, v in lost.items() if v]
        damage = ""
        if parts:
            n = sum(lost.values())
            damage = f"{plural(n, 'BURST frame')} failed {'its' if n == 1 else 'their'} check ({', '.join(parts)})"
        if self.tail:
            damage += ("; " if damage else "") + f"the capture ends inside a frame ({plural(self.tail, 'byte')})"
        return note, damage


def _from_capture(args: Any, inp: _Input, kin: str, kout: str, out: Optional[_ByteOut]) -> Tuple[int, str, str, str]:
    """BURST or pcap IN: the ODIN packets to an archive, a raw FastPack stream, BURST or pcap."""
    with Progress("convert", inp.size if kin == "burst" else None, "B" if kin == "burst" else "packets") as bar:
        burst = None
        if kin == "pcap":
            try:
                items, st = read_pcap(inp.read_all(), args.port)
            except PcapError as e:
                raise CliError(f"{inp.name}: {e}", EXIT_DATA) from None
            skipped = {k: v for k, v in st.items() if k not in ("frames", "udp") and v}
            note = (f"{plural(st['frames'], 'pcap frame')}, {plural(st['udp'], 'UDP datagram')}"
                    + (f", skipped {', '.join(f'{k} {v}' for k, v in skipped.items())}" if skipped else ""))
            damage = ""
            if st["truncated_tail"]:
                damage = (f"the pcap capture is cut inside a frame (after {plural(st['frames'], 'whole frame')}, "
                          f"{plural(st['udp'], 'UDP datagram')})")
            pk = [p for _, p in items]
            bar.total = len(pk)
            batches: Any = (pk[i:i + BATCH] for i in range(0, len(pk), BATCH))
        else:
            burst = _BurstIn(inp, bar)
            batches = burst.batches()
            note = damage = ""
        n = 0
        if kout in ("archive", "fastpack"):
            from ..odin.mapping import FastPackSink, OdinToFastPack, WriterSink

            w = _writer(args.output, args.preset, args.force) if kout == "archive" else None
            try:
                if w is not None:
                    w.set_tag("converted_from", os.path.basename(inp.path) if inp.path != STDIO else "-")
                sink: Any = WriterSink(w) if w is not None else FastPackSink()
                conv = OdinToFastPack(sink, **_odin_conv_kw(args))
                if burst is not None:
                    conv.burst_stats = burst.dec.stats   # the BURST counters go into the stored report
                for b in batches:
                    conv.add_many(b)
                    n += len(b)
                    if out is not None:
                        out.write(sink.take())
                    if burst is None:
                        bar(n)
                if burst is not None:
                    note, damage = burst.note_and_damage()
                    _no_packets(inp, n, note)
                rep = conv.close()
                if out is not None:
                    out.write(sink.take())
            finally:
                if w is not None:
                    w.close()
            return n, "packet", note + _odin_note(rep), damage
        if kout == "burst":  # pcap -> burst
            from ..odin.burst import burst_encode_many

            assert out is not None
            for b in batches:
                out.write(burst_encode_many(b))
                n += len(b)
                bar(n)
            return n, "packet", note, damage
        # -> pcap: packet times come from the packets' own unwrapped ticks over the whole capture
        from ..odin.replay import timed_packets

        assert out is not None
        pk = [p for b in batches for p in b]
        if burst is not None:
            note, damage = burst.note_and_damage()
            _no_packets(inp, len(pk), note)
        n = _write_packets(timed_packets(pk, counts_per_second=args.counts_per_second), "pcap", out, args)
        return n, "packet", note, damage


def _no_packets(inp: _Input, n: int, note: str) -> None:
    if n == 0:
        raise CliError(f"{inp.name}: not a BURST capture: no frame passed its check ({note})", EXIT_DATA)


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
    for sid, m in (getattr(ar, "streams", {}) or {}).items():
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            continue
        chans = m.get("channels") or {}     # the reader's checked layouts (a bad one was ignored)
        kw = {k: ar.layouts[chans[k]] for k in ("data", "config", "state") if chans.get(k) in ar.layouts}
        s = w.create_stream(m["name"], m.get("flavor"), m.get("compression"), **kw)
        for k, v in (m.get("tags") or {}).items():
            s.set_tag(k, v)


def _to_archive(ar: Any, args: Any, bar: Progress) -> int:
    if getattr(ar, "time_base", None) is not None and not getattr(ar, "raw_time", True):
        from ..archive.reader import open_archive

        with open_archive(ar.path, raw_time=True) as raw:   # exact times (spec/fastpack.md §6.1), base copied
            return _to_archive(raw, args, bar)
    n = 0
    with _writer(args.output, args.preset, args.force, getattr(ar, "time_base", None)) as w:
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
        from ..errors import UsageError

        for r in ar.records():
            try:
                if r.id == 0:
                    write(r.time, 0, bytes(r.payload))
                else:
                    write(r.time, r.name if r.name is not None else str(r.id), bytes(r.payload))
            except UsageError as e:  # valid FastPack an archive cannot hold (a NaN time): a data problem
                raise CliError(f"{shown(args.input)}: record {n} cannot go into an archive: {e}", EXIT_DATA) from None
            n += 1
            if n & 8191 == 0:
                bar(n)
    return n


def _to_fastpack(ar: Any, out: _ByteOut, bar: Progress) -> int:
    """The archive's FastPack stream, frame after frame (exactly what ``zstd -d`` yields)."""
    if ar.format == "fastpack" and ar.container is None:
        raise CliError("IN is already a raw FastPack stream", EXIT_USAGE)
    n = 0
    for e in sorted(ar.frames, key=lambda e: (e.data_offset, e.stream_offset)):   # segments share a frame
        out.write(ar.frame_data(e))
        n += sum(int(c[0]) for c in e.channels.values())   # records as info counts them (no definitions)
        bar(n)
    return n
