"""``fastodin replay FILE (--udp HOST:PORT | --tcp HOST:PORT | --stdout) [--speed X] [--format ...]``.

Sends a recording back out: ODIN packets one per datagram (``--format odin``, the UDP default),
BURST-framed (``burst``, the default on byte streams), or the records re-encoded as a raw FastPack
stream (``fastpack``, any recording).  ``--speed 1`` (default) keeps the recorded pace,
``--speed 0`` sends as fast as possible.
"""
from __future__ import annotations

import errno
import math
import socket
import sys
import time
from typing import Any, Iterator, List, Optional, Tuple

from ._util import (EXIT_DATA, EXIT_IO, EXIT_OK, EXIT_USAGE, CliError, Progress, human_bytes, human_rate,
                    parse_hostport, plural)
from .sources import add_namespace_argument, check_readable, is_odin_archive, odin_records, open_input, sniff

NAME = "replay"
HELP = "send a recording out again (UDP, TCP, stdout), paced at recorded speed x X"
EXAMPLE = ("fastodin replay cap.fastpack.zst --udp 127.0.0.1:9000            # real time, one packet per datagram\n"
           "fastodin replay cap.fastpack.zst --tcp 10.0.0.5:5000 --speed 0   # BURST frames, as fast as possible\n"
           "fastodin replay cap.fastpack.zst --stdout --format fastpack --channel 'imu*' > imu.fastpack\n"
           "fastodin replay cap.fastpack.zst --foxglove 8765                # Foxglove: ws://127.0.0.1:8765")

CHUNK = 1 << 16


def add_arguments(p: Any) -> None:
    p.add_argument("file", metavar="FILE", help="archive, raw FastPack file, or BURST capture")
    dst = p.add_mutually_exclusive_group(required=True)
    dst.add_argument("--udp", metavar="HOST:PORT", help="send datagrams to HOST:PORT")
    dst.add_argument("--tcp", metavar="HOST:PORT", help="connect to HOST:PORT and stream (with --listen: serve one client)")
    dst.add_argument("--stdout", action="store_true", help="write the byte stream to stdout")
    dst.add_argument("--foxglove", type=int, metavar="PORT", help="serve the Foxglove WebSocket protocol on "
                     "127.0.0.1:PORT (--host to change): typed channels as JSON, paced by --speed")
    p.add_argument("--no-wait", action="store_true", help="--foxglove: start at once, not when a client subscribes")
    from .foxglovecli import add_options

    add_options(p)
    p.add_argument("--listen", action="store_true", help="with --tcp: listen on HOST:PORT and send to the first client")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="pace: recorded speed x X (default 1; 0 = as fast as possible)")
    p.add_argument("--format", choices=["odin", "burst", "fastpack"], default=None,
                   help="odin: one packet per datagram (UDP default); burst: BURST frames (stream default); "
                        "fastpack: records as a raw FastPack stream")
    p.add_argument("--channel", "-c", action="append", metavar="GLOB", help="only these channels (repeatable)")
    p.add_argument("--start", type=float, metavar="S", help="from recorded time S")
    p.add_argument("--end", type=float, metavar="S", help="until recorded time S")
    p.add_argument("--identifier-interval", type=float, metavar="S", default=None,
                   help="re-send identifier packets every S seconds of recorded time, as a device does")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    add_namespace_argument(p)


# -- destinations -------------------------------------------------------------------------------------

class _Out:
    """Where bytes go: ``packet(b)`` for one unit (datagram / frame), ``flush()``, ``close()``."""

    datagrams = False
    sent = 0
    bytes = 0
    refused = 0

    def packet(self, b: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def push(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Udp(_Out):
    datagrams = True

    def __init__(self, host: str, port: int) -> None:
        try:
            infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise CliError(f"cannot resolve host {host!r}: {e.strerror or e}", EXIT_IO) from None
        fam, _, _, _, addr = infos[0]
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        except OSError:  # pragma: no cover
            pass
        try:
            self.sock.connect(addr)
        except OSError as e:
            self.sock.close()
            raise CliError(f"cannot send UDP to {host}:{port}: {e.strerror or e}", EXIT_IO) from None
        self.where = f"UDP {host}:{port}"
        self._send = self.sock.send

    def packet(self, b: bytes) -> None:
        while True:
            try:
                self._send(b)
                break
            except ConnectionRefusedError:
                self.refused += 1  # ICMP port unreachable for an earlier datagram: nobody listening (yet)
                continue
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    time.sleep(0.0005)
                    continue
                if e.errno == errno.EMSGSIZE:
                    raise CliError(f"a {len(b)}-byte packet is too large for one UDP datagram", EXIT_DATA) from None
                raise
        self.sent += 1
        self.bytes += len(b)

    def close(self) -> None:
        self.sock.close()


class _Stream(_Out):
    def __init__(self, write: Any, where: str, closer: Any = None, push: Any = None) -> None:
        self._write = write
        self._push = push
        self._buf: List[bytes] = []
        self._n = 0
        self.where = where
        self._closer = closer

    def packet(self, b: bytes) -> None:
        self._buf.append(b)
        self._n += len(b)
        self.sent += 1
        self.bytes += len(b)
        if self._n >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            data = b"".join(self._buf)
            self._buf = []
            self._n = 0
            self._write(data)

    def push(self) -> None:
        """Send what is buffered now, through any buffer underneath (paced replay)."""
        self.flush()
        if self._push is not None:
            self._push()

    def close(self) -> None:
        self.flush()
        if self._closer is not None:
            self._closer()


def _tcp_out(host: str, port: int, listen: bool, quiet: bool) -> _Stream:
    from .capture import StopFlag, open_tcp  # the same connect/listen (and its errors) as `record`

    def announce(addr: Tuple[Any, ...]) -> None:
        if not quiet:
            print(f"fastodin replay: listening on TCP {addr[0]}:{addr[1]} (waiting for one client)",
                  file=sys.stderr, flush=True)

    conn = open_tcp(host, port, listen, StopFlag(), on_listen=announce)
    conn.setblocking(True)

    def write(b: bytes) -> None:
        try:
            conn.sendall(b)
        except (BrokenPipeError, ConnectionResetError):
            raise CliError(f"TCP {host}:{port}: the receiver closed the connection", EXIT_IO) from None

    def close() -> None:
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()

    return _Stream(write, f"TCP {host}:{port}", close)


def _stdout_out() -> _Stream:
    out = sys.stdout.buffer
    return _Stream(out.write, "stdout", out.flush, out.flush)


# -- sources --------------------------------------------------------------------------------------------

def _paced(items: Iterator[Tuple[float, bytes]], speed: float,
           before_wait: Any = None, starts: Any = None) -> Iterator[Tuple[float, bytes]]:
    """``items`` at recorded pace x ``speed``; ``before_wait()`` runs before every sleep, so
    buffered output leaves when it is due, not when a buffer fills.  ``starts(b)``: whether an
    item can start the clock (ODIN: the first DATA/EVENT; identifier packets before it carry no
    time of their own and go at once); None: the first item does."""
    if speed <= 0:
        yield from items
        return
    t0r: Optional[float] = None
    t0w = 0.0
    for t, b in items:
        if t0r is None:
            if starts is None or starts(b):
                t0r, t0w = t, time.monotonic()
        else:
            due = t0w + (t - t0r) / speed
            d = due - time.monotonic()
            if d > 0:
                if before_wait is not None:
                    before_wait()
                    d = due - time.monotonic()
                if d > 0:
                    time.sleep(d)
        yield t, b


def _push_between(items: Iterator[Tuple[float, bytes]], out: "_Out") -> Iterator[Tuple[float, bytes]]:
    """Send what is buffered before asking ``items`` (which may sleep to pace) for the next one."""
    for x in items:
        yield x
        out.push()


def _fastpack_items(ar: Any, chans: Any, start: Optional[float], end: Optional[float]) -> Iterator[Tuple[float, bytes]]:
    from ..codec import Encoder

    if not ar.namespace:     # a plain stream replays as it is: ids, no definitions
        enc = Encoder()
        for r in ar.records(channels=chans, start=start, end=end):
            enc.add(r.time, r.id, r.payload)
            yield r.time, enc.take()
        return
    enc = Encoder(namespace=True)
    for r in ar.records(channels=chans, start=start, end=end):
        if r.id == 0:
            enc.add(r.time, 0, r.payload)
        else:
            enc.add(r.time, r.name if r.name is not None else str(r.id), r.payload)
        yield r.time, enc.take()


def run(args: Any) -> int:
    if args.speed is None or not args.speed >= 0:
        raise CliError("--speed must be >= 0 (0 = as fast as possible)", EXIT_USAGE)
    if args.listen and not args.tcp:
        raise CliError("--listen goes with --tcp", EXIT_USAGE)
    if args.foxglove is not None:
        from .foxglovecli import run_replay

        return run_replay(args)
    fmt = args.format or ("odin" if args.udp else "burst")
    if fmt == "odin" and not args.udp:
        raise CliError("ODIN packets carry no length: on a byte stream use --format burst (or fastpack)", EXIT_USAGE)
    check_readable(args.file)
    kind = sniff(args.file)
    chans = None
    if args.channel:
        chans = [int(c) if c == "0" else c for c in args.channel]
    ar = None
    try:
        if kind == "burst":
            if fmt == "fastpack":
                raise CliError(f"{args.file} is a BURST capture: convert it to an archive first", EXIT_USAGE)
            if args.channel:
                raise CliError(f"{args.file} is a BURST capture: it has no channels (convert it to an archive "
                               f"first to select some)", EXIT_USAGE)
            from ..odin.replay import timed_packets

            with open(args.file, "rb") as f:
                data = f.read()
            items: Iterator[Tuple[float, bytes]] = timed_packets(data, format="burst")
            if args.start is not None or args.end is not None:  # packet times: ticks / 1e6, as convert gives
                lo = -math.inf if args.start is None else args.start
                hi = math.inf if args.end is None else args.end
                items = ((t, p) for t, p in items if lo <= t < hi)
        else:
            ar = open_input(args.file, allow_damage=False, namespace=args.namespace)
            if chans is not None and not ar.channel_ids(chans):
                raise CliError(f"no channel matches {' '.join(args.channel)}", EXIT_USAGE)
            if fmt == "fastpack":
                items = _fastpack_items(ar, chans, args.start, args.end)
            else:
                if not is_odin_archive(ar):
                    raise CliError(f"{args.file} holds no ODIN packets (no odin/ channels): use --format fastpack",
                                   EXIT_USAGE)
                from ..odin.replay import timed_packets

                items = timed_packets(odin_records(ar, args.start, args.end, chans or "odin/*"))
        speed = args.speed
        lib_paced = False  # the library paces (identifier re-emission): push after every packet
        if args.identifier_interval is not None and fmt != "fastpack":
            if not args.identifier_interval > 0:
                raise CliError("--identifier-interval must be > 0 seconds", EXIT_USAGE)
            from ..odin.replay import replay as odin_replay

            # the library re-emits identifier packets (and paces); feed it what we selected
            src = list(items)
            items = ((0.0, p) for p in odin_replay([(t, "odin/", p) for t, p in src], speed=speed,
                                                    identifier_interval=args.identifier_interval))
            speed = 0.0
            lib_paced = args.speed > 0
        if args.udp:
            host, port = parse_hostport(args.udp)
            out: _Out = _Udp(host, port)
        elif args.tcp:
            host, port = parse_hostport(args.tcp)
            out = _tcp_out(host, port, args.listen, args.quiet)
        else:
            out = _stdout_out()
        if lib_paced:
            items = _push_between(items, out)
        from ..odin.replay import timestamped

        t0 = time.monotonic()
        prog = Progress("replay", None, " pkts") if not args.quiet else Progress("", None, stream=None)
        try:
            if fmt == "burst":
                from ..odin.burst import burst_encode

                if args.speed <= 0 and not out.datagrams:
                    from ..odin.burst import burst_encode_many

                    batch: List[bytes] = []
                    for _, p in items:
                        batch.append(p)
                        if len(batch) >= 4096:
                            out.packet(burst_encode_many(batch))
                            out.sent += len(batch) - 1
                            batch = []
                            prog.update(out.sent)
                    if batch:
                        out.packet(burst_encode_many(batch))
                        out.sent += len(batch) - 1
                else:
                    for _, p in _paced(items, speed, out.push, timestamped):
                        out.packet(burst_encode(p))
                        prog.update(out.sent)
            else:
                for _, p in _paced(items, speed, out.push, timestamped if fmt == "odin" else None):
                    out.packet(p)
                    if out.sent & 1023 == 0:
                        prog.update(out.sent)
            out.flush()
        finally:
            prog.close()
            out.close()
        el = time.monotonic() - t0
    finally:
        if ar is not None:
            ar.close()
    if not args.quiet:
        unit = "records" if fmt == "fastpack" else "packets"
        extra = f"; {out.refused} refused (nobody listening)" if out.refused else ""
        print(f"replayed {plural(out.sent, unit[:-1])} ({human_bytes(out.bytes)}, {fmt}) to {out.where} in {el:.2f} s "
              f"({human_rate(out.sent / el if el > 0 else 0)} {unit}/s){extra}", file=sys.stderr)
    return EXIT_OK
