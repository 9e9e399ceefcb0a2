"""``fastodin record``: capture ODIN packets (or a raw FastPack stream) into an archive.

Inputs: ``--udp HOST:PORT`` (one ODIN packet per datagram; ``--burst``: BURST frames in
datagrams), ``--tcp HOST:PORT`` (connect; ``--listen``: accept one connection), ``--serial DEV``
(pyserial), ``--stdin``.  Byte streams carry BURST-framed ODIN packets (the default) or, with
``--fastpack``, a raw FastPack stream whose records are copied as they are.

The receiving thread only receives (see :mod:`fastodin.cli.capture`); a sink thread maps packets
onto FastPack records (:class:`fastodin.odin.mapping.OdinToFastPack`) and hands them to the archive
:class:`~fastodin.archive.writer.Writer`, which compresses on its own thread and writes a frame at
least every ``--flush-interval`` seconds (what a SIGKILL can lose).  SIGINT / SIGTERM /
``--duration`` stop the capture within about a second even while data keeps flowing (what already
arrived is taken for a moment more) and close the archive cleanly.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

from ._util import (EXIT_DATA, EXIT_IO, EXIT_OK, EXIT_USAGE, CliError, human_bytes, human_rate, open_writer,
                    parse_hostport)
from .capture import Batch, Capture, StopFlag, fd_reader, open_tcp, open_udp, serial_reader, socket_reader, udp_drops

NAME = "record"
HELP = "capture ODIN packets (UDP, TCP, serial, stdin) or a raw FastPack stream into an archive"
EXAMPLE = ("fastodin record -o cap.fastpack.zst --udp 0.0.0.0:9000 --duration 60\n"
           "fastodin record -o cap.fastpack.zst --tcp 192.168.1.10:5000            # BURST-framed stream\n"
           "fastodin record -o cap.fastpack.zst --serial /dev/ttyUSB0 --baud 921600 --rotate-size 1G\n"
           "fastodin replay old.fastpack.zst --stdout --format burst | fastodin record -o copy.fastpack.zst --stdin")


def _size(text: str) -> int:
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = 1
    for suf, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
        if t.endswith(suf):
            mult, t = m, t[:-1]
            break
    try:
        v = float(t) * mult
    except ValueError:
        raise ValueError(f"bad size {text!r} (e.g. 500M, 2G)") from None
    if v < 1 << 16:
        raise ValueError(f"size {text!r} is below 64 KiB")
    return int(v)


def _size_any(text: str) -> int:
    try:
        return _size(text)
    except ValueError as e:
        if "below" not in str(e):
            raise
    t = text.strip().upper().rstrip("B").rstrip("I").rstrip("K")
    mult = 1024 if text.strip().upper().rstrip("B").rstrip("I").endswith("K") else 1
    return int(float(t) * mult)


def _seconds(text: str) -> float:
    t = text.strip().lower()
    mult = 1.0
    for suf, m in (("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0)):
        if t.endswith(suf):
            mult, t = m, t[: -len(suf)]
            break
    try:
        v = float(t) * mult
    except ValueError:
        raise ValueError(f"bad duration {text!r} (e.g. 30, 10m, 1h)") from None
    if not v > 0:
        raise ValueError(f"duration {text!r} must be > 0")
    return v


def add_arguments(p: Any) -> None:
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="archive to write (NAME.fastpack.zst)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--udp", metavar="HOST:PORT", help="receive UDP datagrams on HOST:PORT (port 0 = any)")
    src.add_argument("--tcp", metavar="HOST:PORT", help="connect to a TCP byte stream (with --listen: accept one)")
    src.add_argument("--serial", metavar="DEV", help="read a serial port (needs pyserial)")
    src.add_argument("--stdin", action="store_true", help="read a byte stream from stdin")
    p.add_argument("--listen", action="store_true", help="with --tcp: listen on HOST:PORT and accept one connection")
    p.add_argument("--baud", type=int, default=115200, metavar="N", help="serial baud rate (default 115200)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--burst", action="store_true",
                     help="BURST-framed ODIN packets (default on byte streams; on UDP: frames inside datagrams)")
    fmt.add_argument("--fastpack", action="store_true", help="the input is a raw FastPack stream, copied record by record")
    p.add_argument("--odin-db", metavar="FILE", help="OdinDB .odin JSON to type sets announced by 0x01 packets only")
    p.add_argument("--counts-per-second", type=float, default=None, metavar="HZ",
                   help="device clock tick rate (default 1000000)")
    p.add_argument("--rotate-size", type=_size, metavar="SIZE", help="start a new file after SIZE bytes (e.g. 1G)")
    p.add_argument("--rotate-time", type=_seconds, metavar="T", help="start a new file every T (e.g. 600, 10m, 1h)")
    p.add_argument("--duration", type=_seconds, metavar="S", help="stop after S seconds")
    p.add_argument("--preset", default="fast", help="compression preset: none fast light medium heavy tight max (default fast)")
    p.add_argument("--flush-interval", type=float, default=1.0, metavar="S",
                   help="write a frame at least every S seconds: what a crash can lose (default 1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no status line, no summary")
    p.add_argument("--force", "-f", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--rcvbuf", type=_size_any, default=64 << 20, metavar="SIZE",
                   help="UDP socket receive buffer (default 64M): what absorbs bursts while the writer is busy")
    p.add_argument("--foxglove", type=int, metavar="PORT", help="also serve what is recorded, live, to Foxglove "
                   "(WebSocket on 127.0.0.1:PORT; a slow viewer drops messages, never the recording)")
    from .foxglovecli import add_options

    add_options(p)


# -- output files ------------------------------------------------------------------------------------

def rotated_name(path: str, k: int) -> str:
    """``cap.fastpack.zst`` -> ``cap-0003.fastpack.zst`` (k = 3).

    >>> rotated_name("/d/cap.fastpack.zst", 3), rotated_name("x", 0)
    ('/d/cap-0003.fastpack.zst', 'x-0000')
    """
    d, b = os.path.split(path)
    i = b.find(".", 1)
    stem, ext = (b, "") if i < 0 else (b[:i], b[i:])
    return os.path.join(d, f"{stem}-{k:04d}{ext}")


class ArchiveOutput:
    """The archive (or rotated series of archives) being written; ``open_next()`` on rotation.

    ``due()`` says when the next part is due: after ``rotate_time`` seconds, or when the part's
    estimated closed size (:meth:`Writer.estimated_size`: bytes written, pending records at the
    compression seen so far, index tail) reaches ``rotate_size``; callers check every
    ``check_bytes`` input bytes, so a part ends within a few percent of ``rotate_size``.
    """

    #: a part ends once its estimated size reaches this share of --rotate-size (what one more
    #: checking step adds is about 2 %)
    FILL = 0.98
    #: from this share of FILL on, pending records are written out and measured rather than estimated
    #: (small frames may compress much worse than the file so far)
    NEAR = 0.9

    def __init__(self, path: str, preset: str, flush_interval: float, rotate: bool, force: bool = False,
                 rotate_size: Optional[int] = None, rotate_time: Optional[float] = None,
                 on_open: Optional[Callable[[Any], Any]] = None) -> None:
        self.on_open = on_open     # wraps each new writer (record --foxglove: a live tee)
        self.force = force
        self.path = path
        self.preset = preset
        self.flush_interval = flush_interval
        self.rotate = rotate
        self.rotate_size = rotate_size
        self.rotate_time = rotate_time
        self.ratio: Optional[float] = None   # file bytes per uncompressed byte of the last part
        self.k = 0
        self.files: List[str] = []
        self.writer: Any = None
        self.opened_at = 0.0
        self.open_next()

    def _ratio(self) -> float:
        return self.writer.size_ratio or self.ratio or 1.0

    @property
    def check_bytes(self) -> int:
        """Input bytes between two :meth:`due` checks: about 2 % of ``rotate_size`` once compressed
        (0 without ``rotate_size``)."""
        if self.rotate_size is None:
            return 0
        return max(4096, int(self.rotate_size * 0.02 / max(self._ratio(), 1e-3)))

    def due(self) -> bool:
        """True when the current part is full or old enough (never for a part with nothing in it)."""
        w = self.writer
        if not w.frames and not w.pending_bytes:
            return False
        if self.rotate_time is not None and time.monotonic() - self.opened_at >= self.rotate_time:
            return True
        if self.rotate_size is None:
            return False
        limit = self.rotate_size * self.FILL
        if w.estimated_size(self.ratio) < limit * self.NEAR:
            return False
        if not w.frames or w.pending_bytes * self._ratio() > self.rotate_size * 0.02:
            w.flush()   # near full, and the estimate leans on a guessed compression: write out and measure
            w.sync()
        return bool(w.estimated_size(self.ratio) >= limit)

    def open_next(self) -> Any:
        if self.writer is not None:
            self.writer.close()
            self.ratio = self.writer.size_ratio or self.ratio
        name = rotated_name(self.path, self.k) if self.rotate else self.path
        self.k += 1
        self.writer = open_writer(name, self.force, preset=self.preset, flush_interval=self.flush_interval)
        if self.on_open is not None:
            self.writer = self.on_open(self.writer)
        self.writer.set_tag("recorded_by", "fastodin record")
        self.writer.set_tag("started_unix", time.time())
        if self.rotate:
            self.writer.set_tag("part", self.k - 1)
        self.files.append(name)
        self.opened_at = time.monotonic()
        return self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def total_size(self) -> int:
        n = 0
        for f in self.files:
            try:
                n += os.path.getsize(f)
            except OSError:
                pass
        return n


# -- sinks ---------------------------------------------------------------------------------------------

def _slices(items: List[bytes], step: int) -> Iterator[List[bytes]]:
    """``items`` in consecutive runs of about ``step`` bytes (one run when ``step`` is 0).

    >>> [len(s) for s in _slices([b"x" * 10] * 5, 40)]
    [2, 2, 1]
    """
    if not step:
        yield items
        return
    start = acc = 0
    for i, p in enumerate(items):
        acc += len(p) + 16
        if acc >= step:
            yield items[start:i + 1]
            start, acc = i + 1, 0
    if start < len(items):
        yield items[start:]


def report_counts(rep: Dict[str, Any]) -> Dict[str, int]:
    """The counters of one part's ``{"odin": "report"}``, computed as ``info`` and ``verify`` compute
    them: sequence gaps and lost packets, CRC errors (set-id mismatches + BURST CRC errors), bad
    packets (malformed + unknown).

    >>> report_counts({"stats": {"malformed": 1, "unknown": 2}, "sets": {"0x0001": {"sequence": {"gaps": 2, "lost": 3}}}})
    {'gaps': 2, 'lost': 3, 'crc_errors': 0, 'bad': 3}
    """
    from .info import crc_errors, gaps

    st = rep.get("stats") or {}
    g = gaps(rep)
    return {"gaps": g["gaps"], "lost": g["lost"], "crc_errors": crc_errors(rep),
            "bad": int(st.get("malformed", 0) or 0) + int(st.get("unknown", 0) or 0)}


class OdinSink:
    """Batches of ODIN packets (datagrams or BURST bytes) -> OdinToFastPack -> archive."""

    IDENT_TYPES = (0x01, 0x03, 0x04)

    def __init__(self, out: ArchiveOutput, *, burst: bool, odin_db: Any, cps: Optional[float]) -> None:
        from ..odin.burst import BurstDecoder

        self.out = out
        self.burst = burst
        self.odin_db = odin_db
        self.cps = cps
        self.decoder = BurstDecoder() if burst else None
        self.packets = 0
        self.reports: List[Dict[str, Any]] = []   # the report each finished part wrote at its close
        self._closed = False
        self._latest: Dict[Any, List[bytes]] = {}
        self.conv = self._new_conv()

    def _new_conv(self) -> Any:
        from ..odin.mapping import OdinToFastPack, WriterSink

        kw: Dict[str, Any] = {"odin_db": self.odin_db}
        if self.cps:
            kw["counts_per_second"] = self.cps
        conv = OdinToFastPack(WriterSink(self.out.writer), **kw)
        if self.decoder is not None:
            conv.burst_stats = self.decoder.stats
        # a rotated file starts with the identifier packets in force, so it decodes on its own
        for pk in self._latest.values():
            conv.add_many(pk)
        return conv

    def _remember(self, packets: List[bytes]) -> None:
        for p in packets:
            if p and p[0] in self.IDENT_TYPES:
                k = p[0]
                key = (k, p[1] | (p[2] << 8)) if k != 0x04 else (k, 0)
                if k == 0x03 and len(p) >= 12:
                    lst = self._latest.setdefault(key, [])
                    if (p[10] | (p[11] << 8)) == 0:
                        lst.clear()
                    lst.append(p)
                else:
                    self._latest[key] = [p]

    def __call__(self, b: Batch) -> None:
        if b.lengths is not None and not self.burst:
            data = bytes(b.data)
            pk: List[bytes] = []
            p = 0
            for n in b.lengths.tolist():
                pk.append(data[p : p + n])
                p += n
        else:
            assert self.decoder is not None
            self.decoder.feed(b.data)
            pk = self.decoder.take()
        if not pk:
            return
        for part in _slices(pk, self.out.check_bytes):
            self._maybe_rotate()  # before writing: a rotation never leaves an empty last file
            if self.out.rotate and any(p and p[0] in self.IDENT_TYPES for p in part):
                self._remember(part)
            self.conv.add_many(part)
            self.packets += len(part)

    def _maybe_rotate(self) -> None:
        if self.out.due():
            self.reports.append(self.conv.close())
            self.out.open_next()
            if self.decoder is not None:   # each part's report counts its own BURST frames
                from ..odin.burst import BurstStats

                self.decoder.stats = BurstStats()
            self.conv = self._new_conv()

    def stats(self) -> Dict[str, int]:
        """Totals over the parts: each finished part's report (what ``info``/``verify`` read from its
        file), plus the live counters of the part being written (none once closed)."""
        tot = {"gaps": 0, "lost": 0, "crc_errors": 0, "bad": 0}
        for r in self.reports:
            for k, v in report_counts(r).items():
                tot[k] += v
        if not self._closed:
            st = self.conv.stream.stats
            for tr in list(self.conv.stream.sequences.values()):
                tot["gaps"] += tr.gaps
                tot["lost"] += tr.lost
            tot["crc_errors"] += st.set_id_mismatches + (self.decoder.stats.crc_errors if self.decoder else 0)
            tot["bad"] += st.malformed + st.unknown
        return {"packets": self.packets, **tot}

    def close(self) -> Dict[str, Any]:
        if self.decoder is not None and self.decoder.buffered:
            self.decoder.stats.garbage_bytes += self.decoder.buffered
        self.reports.append(self.conv.close())
        self._closed = True
        return self.stats()


class FastPackSink:
    """Chunks of a raw FastPack stream -> records copied into the archive (names kept).

    The stream's own writer metadata (id-0 ``{"fastodin": ...}`` records, as in the ``.fastpack``
    that ``convert`` or ``zstd -d`` make of an archive) is applied, not copied: file tags, streams
    and channel layouts are re-created in each archive written.  A record the archive cannot hold
    (a NaN time) is counted in ``lost`` (exit 1), never a crash of the recorder.
    """

    def __init__(self, out: ArchiveOutput) -> None:
        from ..codec import Decoder

        self.out = out
        self.dec = Decoder(namespace=True)
        self.records = 0
        self.lost = 0
        self.first_loss = ""
        self._meta: Dict[Any, Dict[str, Any]] = {}  # latest writer metadata by (kind, id)
        self._streams: Dict[str, Any] = {}
        self._writer: Any = None

    def _apply(self, key: Any, m: Dict[str, Any]) -> None:
        from ..archive.layout import Layout

        w = self.out.writer
        kind = key[0]
        if kind == "file":
            for k, v in (m.get("tags") or {}).items():
                w.set_tag(k, v)
        elif kind == "stream":
            s = self._streams.get(key[1])
            if s is None:
                lays = m.get("layouts") or {}
                kw = {k: Layout.from_json(lays[k]) for k in ("data", "config", "state") if lays.get(k)}
                s = self._streams[key[1]] = w.create_stream(m["name"], m.get("flavor"), m.get("compression"), **kw)
            for k, v in (m.get("tags") or {}).items():
                s.set_tag(k, v)
        elif kind == "channel" and m.get("layout"):
            w.define_channel(m["name"], Layout.from_json(m["layout"]))

    def _writer_meta(self, payload: bytes) -> None:
        from ..archive.reader import meta_problem
        from ..errors import FastOdinError
        from ..metadata import decode_meta

        try:
            m = decode_meta(payload)
            bad = meta_problem(m) if isinstance(m, dict) else "not a map"
            if bad is not None:
                raise ValueError(bad)
            kind = m["fastodin"]
            key = (kind, m.get("id") if kind == "stream" else m.get("name") if kind == "channel" else None)
            self._meta[key] = m
            self._apply(key, m)
        except (FastOdinError, KeyError, TypeError, ValueError, AttributeError) as e:
            self._lose(f"writer metadata not applied: {' '.join(str(e).split())}")

    def _lose(self, why: str) -> None:
        self.lost += 1
        if not self.first_loss:
            self.first_loss = why

    def _part(self) -> Any:
        """The writer of the current part, starting the next part when due; a new part gets the
        tags, streams and layouts too."""
        if self.out.due():
            self.out.open_next()
        if self._writer is not self.out.writer:
            self._writer = self.out.writer
            self._streams = {}
            for key, m in list(self._meta.items()):
                self._apply(key, m)
        return self.out.writer.write

    def __call__(self, b: Batch) -> None:
        w = self._part()
        self.dec.feed(b.data)
        n = 0
        step = self.out.check_bytes
        since = 0
        from ..errors import UsageError

        for r in self.dec:
            if step:
                since += 16 + len(r.payload)
                if since >= step:
                    since = 0
                    w = self._part()
            try:
                if r.id == 0:
                    p = bytes(r.payload)
                    if len(p) == 0 or p == b"0":
                        continue  # a namespace reset: the archive keeps its own namespace
                    if p.startswith(b'{"fastodin":'):
                        self._writer_meta(p)
                        continue
                    w(r.time, 0, p)
                else:
                    w(r.time, r.name if r.name is not None else str(r.id), bytes(r.payload))
            except UsageError as e:  # e.g. a NaN time: valid FastPack, not storable in an archive
                self._lose(f"record at {r.time!r} on {r.name or r.id!r}: {' '.join(str(e).split())}")
                continue
            n += 1
        self.records += n

    def stats(self) -> Dict[str, int]:
        return {"packets": self.records, "gaps": 0, "lost": 0, "crc_errors": 0, "bad": self.lost}

    def close(self) -> Dict[str, Any]:
        s = self.stats()
        s["incomplete_tail_bytes"] = self.dec.buffered
        s["records_lost"] = self.lost
        s["first_loss"] = self.first_loss
        return s


# -- the command -------------------------------------------------------------------------------------------

def _status_printer(sink: Any, out: ArchiveOutput, enabled: bool,
                    drops: Optional[Callable[[], Optional[int]]] = None) -> Optional[Callable[[int, int, float], None]]:
    if not enabled:
        return None
    last = [0.0, 0]

    def status(n: int, nbytes: int, el: float) -> None:
        st = sink.stats()
        pk = st["packets"]
        now = el
        dt = now - last[0]
        rate = (pk - last[1]) / dt if dt > 0 else 0.0
        last[0], last[1] = now, pk
        kd = drops() if drops is not None else None
        kds = f"  kernel drops {kd}" if kd else ""
        line = (f"rec {pk} pkts  {human_rate(rate)}/s  gaps {st['gaps']} (lost {st['lost']})  CRC errors "
                f"{st['crc_errors']}  bad {st['bad']}{kds}  {human_bytes(nbytes)} in  {el:.0f} s  -> {out.files[-1]}")
        sys.stderr.write("\r" + line[:150] + "\x1b[K")
        sys.stderr.flush()

    return status


def run(args: Any) -> int:
    if args.listen and not args.tcp:
        raise CliError("--listen goes with --tcp", EXIT_USAGE)
    if args.fastpack and args.udp:
        raise CliError("--fastpack needs a byte stream (--tcp, --serial, --stdin), not --udp", EXIT_USAGE)
    if args.flush_interval is not None and not args.flush_interval > 0:
        raise CliError("--flush-interval must be > 0", EXIT_USAGE)
    if args.counts_per_second is not None and not args.counts_per_second > 0:
        raise CliError("--counts-per-second must be > 0", EXIT_USAGE)
    odin_db = None
    if args.odin_db:
        from .sources import check_readable

        check_readable(args.odin_db, random_access=False)
        try:
            from ..odin.odindb import load_odin_db

            odin_db = load_odin_db(args.odin_db)
        except (ValueError, KeyError, TypeError) as e:
            raise CliError(f"{args.odin_db}: not a usable OdinDB file: {e}", 1) from None
    rotate = args.rotate_size is not None or args.rotate_time is not None
    first = rotated_name(args.output, 0) if rotate else args.output
    if os.path.exists(first) and not args.force:  # before waiting for any input
        raise CliError(f"{first} exists: a recorder never overwrites a recording (use --force)", EXIT_IO)
    from ..archive.writer import PRESETS

    if args.preset.lower().lstrip("z") not in PRESETS and not args.preset.lstrip("-").isdigit():
        raise CliError(f"unknown --preset {args.preset!r}; known: {', '.join(PRESETS)}", EXIT_USAGE)
    if args.preset.lstrip("-").isdigit():
        args.preset = int(args.preset)
    burst = bool(args.burst) or (not args.udp and not args.fastpack)
    stop = StopFlag()
    stop.install()
    # open the input first (a port in use must not leave an empty archive behind)
    sock = None
    port_obj = None
    read = None
    what = ""
    try:
        if args.udp:
            host, port = parse_hostport(args.udp)
            sock = open_udp(host, port, rcvbuf=args.rcvbuf)
            h, p = sock.getsockname()[:2]
            what = f"UDP {h}:{p}"
        elif args.tcp:
            host, port = parse_hostport(args.tcp)
            if args.listen:
                def said(addr: Any) -> None:
                    if not args.quiet:
                        print(f"fastodin record: listening on TCP {addr[0]}:{addr[1]} (waiting for one connection)",
                              file=sys.stderr, flush=True)
                sock = open_tcp(host, port, True, stop, on_listen=said)
            else:
                sock = open_tcp(host, port, False, stop)
            what = f"TCP {host}:{port}"
            read = socket_reader(sock)
        elif args.serial:
            read, port_obj = serial_reader(args.serial, args.baud)
            what = f"serial {args.serial} at {args.baud} baud"
        else:
            read = fd_reader(sys.stdin.fileno())
            what = "stdin"
        live = None
        if args.foxglove is not None:
            from .foxglovecli import live_tee, start_server

            live = start_server(args.foxglove, args.host, "fastodin record", args.quiet)
        out = ArchiveOutput(args.output, args.preset, args.flush_interval, rotate, args.force,
                            rotate_size=args.rotate_size, rotate_time=args.rotate_time,
                            on_open=live_tee(live) if live is not None else None)
        try:
            if args.fastpack:
                sink: Any = FastPackSink(out)
            else:
                sink = OdinSink(out, burst=burst, odin_db=odin_db, cps=args.counts_per_second)
            tty = (not args.quiet) and sys.stderr.isatty()
            drops = (lambda: udp_drops(sock)) if args.udp else None
            drops0 = drops() if drops is not None else None
            cap = Capture(sink, stop, duration=args.duration, status=_status_printer(sink, out, tty, drops))
            if not args.quiet:
                kind = "raw FastPack" if args.fastpack else ("BURST-framed ODIN" if burst else "ODIN datagrams")
                print(f"fastodin record: {kind} from {what} -> {out.files[-1]} (Ctrl-C to stop)", file=sys.stderr,
                      flush=True)
            t0 = time.monotonic()
            if args.udp:
                cap.run_datagrams(sock)
            else:
                cap.run_stream(read)
            elapsed = time.monotonic() - t0
            kdrops = (drops() or 0) - (drops0 or 0) if drops is not None and drops0 is not None else None
            summary = sink.close()
        finally:
            out.close()
            if live is not None:
                live.close()
    finally:
        stop.restore()
        if sock is not None:
            sock.close()
        if port_obj is not None:
            port_obj.close()
    if not args.quiet:
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")
        rate = summary["packets"] / elapsed if elapsed > 0 else 0.0
        files = out.files[0] if len(out.files) == 1 else f"{len(out.files)} files {out.files[0]} .. {out.files[-1]}"
        unit = "records" if args.fastpack else "packets"
        print(f"recorded {summary['packets']} {unit} ({human_bytes(cap.bytes)} received) in {elapsed:.1f} s "
              f"({human_rate(rate)} {unit}/s) -> {files} ({human_bytes(out.total_size())}); "
              f"gaps {summary['gaps']} (lost {summary['lost']}), CRC errors {summary['crc_errors']}, "
              f"bad {summary['bad']}; " + (f"kernel dropped {kdrops} datagrams (receive buffer full); " if kdrops else "")
              + f"stopped by {stop.reason or 'end of input'}")
    if live is not None and not args.quiet:
        st = live.stats()
        print(f"foxglove: {st['sent']} messages sent to {st['connections']} clients"
              + (f", {st['dropped']} dropped for slow clients" if st["dropped"] else ""), file=sys.stderr)
    if kdrops:
        print(f"fastodin record: error: the kernel dropped {kdrops} datagrams (receive buffer full): the capture is "
              f"incomplete", file=sys.stderr)
        return EXIT_DATA
    if summary.get("records_lost"):
        print(f"fastodin record: error: {summary['records_lost']} records could not be stored (first: "
              f"{summary['first_loss']})", file=sys.stderr)
        return EXIT_DATA
    return EXIT_OK
