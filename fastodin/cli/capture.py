"""Capture loops for ``fastodin record``: UDP datagrams, TCP / serial / stdin byte streams.

The receiving thread does as little as possible: a tight non-blocking ``recv_into`` loop into a
large preallocated buffer, one length per packet; every ~50 ms (or when the buffer fills) it hands
the whole batch to a consumer thread through a bounded queue.  The consumer (a *sink*, see
:mod:`fastodin.cli.sinks`) deframes / maps / writes.  A large ``SO_RCVBUF`` absorbs the
consumer's hiccups, so UDP on loopback is captured without loss at well over 50,000 packets/s.

A :class:`Batch` is either datagrams (``data`` + ``lengths``: one packet each) or a chunk of a
byte stream (``lengths is None``).

>>> b = Batch(b"abcde", np.array([2, 3], np.int64), 0.0)
>>> [bytes(p) for p in b.packets()]
[b'ab', b'cde']
"""
from __future__ import annotations

import errno
import os
import queue
import select
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from ._util import EXIT_IO, CliError

__all__ = ["Batch", "Capture", "open_udp", "open_tcp", "StopFlag", "SO_RCVBUF_WANTED"]

SO_RCVBUF_WANTED = 64 << 20
BATCH_BYTES = 4 << 20
BATCH_SECONDS = 0.05
MAX_DATAGRAM = 65536
STREAM_CHUNK = 1 << 20
#: byte streams: batch size and queue depth.  The source is flow-controlled (a pipe or TCP blocks the
#: sender), so a shallow queue loses nothing and bounds what a stop still has to write (~5 MiB).
STREAM_BATCH_BYTES = 1 << 20
STREAM_QUEUE_BATCHES = 4
#: after a stop (signal, --duration) what already arrived is taken for at most this long, then the
#: loop ends even while data keeps flowing
DRAIN_SECONDS = 0.2


class Batch:
    """Received bytes handed from the receive loop to the sink.

    ``data``: the bytes; ``lengths``: int64 length of each datagram (``None`` for a byte-stream
    chunk); ``t_recv``: wall-clock time (``time.time()``) when the batch was cut.
    """

    __slots__ = ("data", "lengths", "t_recv")

    def __init__(self, data: Any, lengths: Optional[np.ndarray], t_recv: float) -> None:
        self.data = data
        self.lengths = lengths
        self.t_recv = t_recv

    @property
    def count(self) -> int:
        """Datagrams in the batch (0 for a stream chunk)."""
        return 0 if self.lengths is None else int(self.lengths.shape[0])

    def offsets(self) -> np.ndarray:
        """Start offset of every datagram."""
        assert self.lengths is not None
        o = np.zeros(self.lengths.shape[0], np.int64)
        if o.shape[0] > 1:
            np.cumsum(self.lengths[:-1], out=o[1:])
        return o

    def packets(self) -> List[memoryview]:
        """The datagrams as memoryviews into ``data``."""
        mv = memoryview(self.data)
        out = []
        p = 0
        for n in self.lengths.tolist():
            out.append(mv[p : p + n])
            p += n
        return out


class StopFlag:
    """Set by SIGINT / SIGTERM (installed by :meth:`install`), by a duration, or by end of input.

    >>> f = StopFlag(); f.set("eof"); bool(f), f.reason
    (True, 'eof')
    """

    def __init__(self) -> None:
        self._ev = threading.Event()
        self.reason = ""
        self._old: List[Tuple[int, Any]] = []

    def __bool__(self) -> bool:
        return self._ev.is_set()

    def set(self, reason: str) -> None:
        if not self._ev.is_set():
            self.reason = reason
            self._ev.set()

    def install(self) -> None:
        """Route SIGINT and SIGTERM to this flag (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old.append((sig, signal.signal(sig, self._handler)))
            except (ValueError, OSError):  # pragma: no cover
                pass

    def restore(self) -> None:
        for sig, old in self._old:
            try:
                signal.signal(sig, old)
            except (ValueError, OSError):  # pragma: no cover
                pass
        self._old.clear()

    def _handler(self, signum: int, frame: Any) -> None:
        self.set("SIGINT" if signum == signal.SIGINT else "SIGTERM")


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bind_error(e: OSError, what: str, host: str, port: int) -> CliError:
    if e.errno == errno.EADDRINUSE:
        return CliError(f"{what} {host}:{port}: address already in use (another program is listening there)", EXIT_IO)
    if e.errno in (errno.EADDRNOTAVAIL,):
        return CliError(f"{what} {host}:{port}: address not available on this machine", EXIT_IO)
    if e.errno in (errno.EACCES, errno.EPERM):
        return CliError(f"{what} {host}:{port}: permission denied (ports below 1024 need privileges)", EXIT_IO)
    return CliError(f"{what} {host}:{port}: {e.strerror or e}", EXIT_IO)


def _resolve(host: str, port: int, kind: int) -> Tuple[int, Any]:
    try:
        infos = socket.getaddrinfo(host, port, 0, kind)
    except socket.gaierror as e:
        raise CliError(f"cannot resolve host {host!r}: {e.strerror or e}", EXIT_IO) from None
    fam, _, _, _, addr = infos[0]
    return fam, addr


def open_udp(host: str, port: int, rcvbuf: int = SO_RCVBUF_WANTED) -> socket.socket:
    """A bound, non-blocking UDP socket with the largest receive buffer we can get.

    >>> s = open_udp("127.0.0.1", 0); s.getsockname()[0]
    '127.0.0.1'
    >>> s.close()
    """
    fam, addr = _resolve(host, port, socket.SOCK_DGRAM)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for opt in (getattr(socket, "SO_RCVBUFFORCE", 33) if sys.platform.startswith("linux") else None,
                socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, rcvbuf)
            break
        except OSError:
            continue
    try:
        s.bind(addr)
    except OSError as e:
        s.close()
        raise _bind_error(e, "cannot listen for UDP on", host, port) from None
    s.setblocking(False)
    return s


def open_tcp(host: str, port: int, listen: bool, stop: "StopFlag", timeout: float = 10.0,
             on_listen: Optional[Callable[[Tuple[Any, ...]], None]] = None) -> socket.socket:
    """A connected TCP socket: connect to ``host:port``, or (``listen``) accept one connection there."""
    fam, addr = _resolve(host, port, socket.SOCK_STREAM)
    if listen:
        srv = socket.socket(fam, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind(addr)
            srv.listen(1)
        except OSError as e:
            srv.close()
            raise _bind_error(e, "cannot listen for TCP on", host, port) from None
        if on_listen:
            on_listen(srv.getsockname())
        srv.settimeout(0.2)
        try:
            while not stop:
                try:
                    conn, _ = srv.accept()
                    break
                except socket.timeout:
                    continue
            else:
                raise CliError("stopped before a TCP connection came; nothing recorded", 130)
        finally:
            srv.close()
    else:
        conn = socket.socket(fam, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        try:
            conn.connect(addr)
        except OSError as e:
            conn.close()
            if isinstance(e, socket.timeout):
                raise CliError(f"cannot connect to TCP {host}:{port}: timed out after {timeout:g} s", EXIT_IO) from None
            raise CliError(f"cannot connect to TCP {host}:{port}: {e.strerror or e}", EXIT_IO) from None
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    except OSError:  # pragma: no cover
        pass
    conn.setblocking(False)
    return conn


class Capture:
    """Receive on one source in the calling thread; feed :class:`Batch` es to ``consume`` on a
    worker thread.  ``run()`` returns when ``stop`` is set (signal, duration, end of input) after
    draining what the kernel already holds.

    ``status`` (optional) is called about twice a second from the receiving thread with the
    number of datagrams / bytes received so far.

    A stop ends the receive loop within about ``DRAIN_SECONDS`` (plus one read timeout), even while
    data keeps coming; the batches already queued are then written, so the stop completes in about
    a second and the archive closes cleanly.
    """

    def __init__(self, consume: Callable[[Batch], None], stop: StopFlag, *, duration: Optional[float] = None,
                 status: Optional[Callable[[int, int, float], None]] = None, queue_batches: int = 64) -> None:
        self.consume = consume
        self.stop = stop
        self.duration = duration
        self.status = status
        self.packets = 0
        self.bytes = 0
        self.t_start = time.monotonic()
        self.t_first: Optional[float] = None
        self._q: "queue.Queue[Optional[Batch]]" = queue.Queue(maxsize=queue_batches)
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._work, name="fastodin-record-sink", daemon=True)

    # consumer ---------------------------------------------------------------------------------
    def _work(self) -> None:
        q = self._q
        while True:
            b = q.get()
            if b is None:
                return
            if self._error is not None:
                continue  # keep draining so the receiver never blocks forever
            try:
                self.consume(b)
            except BaseException as e:  # surfaced in the receiving thread
                self._error = e
                self.stop.set("error")

    def _put(self, b: Batch) -> None:
        while True:
            try:
                self._q.put(b, timeout=0.5)
                return
            except queue.Full:
                if self._error is not None:
                    return

    def _finish(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _tick(self, now: float) -> bool:
        """Per-wakeup housekeeping; True when the loop should stop."""
        if self.duration is not None and now - self.t_start >= self.duration:
            self.stop.set("duration")
        if self._error is not None:
            self.stop.set("error")
        return bool(self.stop)

    # datagrams ----------------------------------------------------------------------------------
    def run_datagrams(self, sock: socket.socket) -> None:
        """The UDP loop (``sock`` non-blocking, bound)."""
        self._thread.start()
        try:
            self._loop_datagrams(sock)
        finally:
            self._finish()

    def _loop_datagrams(self, sock: socket.socket) -> None:
        recv_into = sock.recv_into
        mono = time.monotonic
        sel = select.select
        mv = memoryview(bytearray(BATCH_BYTES))
        lens: List[int] = []
        append = lens.append
        off = 0
        limit = BATCH_BYTES - MAX_DATAGRAM
        t_cut = mono()
        t_status = t_cut
        draining = False
        t_stop: Optional[float] = None
        while True:
            try:
                n = recv_into(mv[off:], MAX_DATAGRAM)
            except BlockingIOError:
                now = mono()
                if lens and (now - t_cut >= BATCH_SECONDS or draining):
                    mv, lens = self._cut(mv, off, lens)
                    append = lens.append
                    off = 0
                    t_cut = now
                if draining:
                    return
                if self.status is not None and now - t_status >= 0.5:
                    t_status = now
                    self.status(self.packets, self.bytes, now - self.t_start)
                if self._tick(now):
                    draining = True  # one more pass: take what the kernel already holds
                    continue
                try:
                    sel([sock], [], [], 0.1)
                except InterruptedError:  # pragma: no cover - PEP 475 retries
                    pass
                continue
            except InterruptedError:  # pragma: no cover
                continue
            except OSError as e:
                if e.errno in (errno.ECONNREFUSED,):  # ICMP from an earlier send: ignore
                    continue
                raise
            append(n)
            off += n
            if off > limit or len(lens) >= 65536:
                now = mono()
                mv, lens = self._cut(mv, off, lens)
                append = lens.append
                off = 0
                t_cut = now
                if self.status is not None and now - t_status >= 0.5:
                    t_status = now
                    self.status(self.packets, self.bytes, now - self.t_start)
                if self._tick(now):
                    if t_stop is None:
                        t_stop = now
                    elif now - t_stop >= DRAIN_SECONDS:   # datagrams keep coming: stop anyway
                        return
                    draining = True

    def _cut(self, mv: memoryview, off: int, lens: List[int]) -> Tuple[memoryview, List[int]]:
        """Hand the filled part of the batch buffer to the writer; return a fresh buffer and list."""
        n = len(lens)
        if self.t_first is None:
            self.t_first = time.monotonic()
        self.packets += n
        self.bytes += off
        # the buffer is not reused: the batch owns it (a read-only view of the filled part)
        self._put(Batch(mv[:off].toreadonly(), np.array(lens, np.int64), time.time()))
        return memoryview(bytearray(BATCH_BYTES)), []

    # byte streams ---------------------------------------------------------------------------------
    def run_stream(self, read: Callable[[float], Optional[bytes]]) -> None:
        """A byte-stream loop: ``read(timeout)`` returns bytes, ``b""`` when nothing came in time,
        or ``None`` at end of input."""
        self._q = queue.Queue(maxsize=min(self._q.maxsize, STREAM_QUEUE_BATCHES))
        self._thread.start()
        try:
            self._loop_stream(read)
        finally:
            self._finish()

    def _loop_stream(self, read: Callable[[float], Optional[bytes]]) -> None:
        mono = time.monotonic
        pending: List[bytes] = []
        size = 0
        t_cut = mono()
        t_status = t_cut
        t_stop: Optional[float] = None
        while True:
            data = read(0.1)
            now = mono()
            if data is None:
                self.stop.set("end of input")
            elif data:
                if self.t_first is None:
                    self.t_first = now
                pending.append(data)
                size += len(data)
                self.bytes += len(data)
            if pending and (size >= STREAM_BATCH_BYTES or now - t_cut >= BATCH_SECONDS or self.stop):
                self._put(Batch(b"".join(pending), None, time.time()))
                pending = []
                size = 0
                t_cut = now
            if self.status is not None and now - t_status >= 0.5:
                t_status = now
                self.status(self.packets, self.bytes, now - self.t_start)
            if self._tick(now):
                if t_stop is None:
                    t_stop = now
                if data and now - t_stop < DRAIN_SECONDS:  # take what is already there, briefly
                    continue
                if pending:
                    self._put(Batch(b"".join(pending), None, time.time()))
                return


def socket_reader(sock: socket.socket) -> Callable[[float], Optional[bytes]]:
    """``read(timeout)`` over a non-blocking stream socket (``None`` at EOF)."""

    def read(timeout: float) -> Optional[bytes]:
        try:
            d = sock.recv(STREAM_CHUNK)
        except BlockingIOError:
            try:
                select.select([sock], [], [], timeout)
            except InterruptedError:  # pragma: no cover
                pass
            return b""
        except ConnectionResetError:
            return None
        return d if d else None

    return read


def fd_reader(fd: int) -> Callable[[float], Optional[bytes]]:
    """``read(timeout)`` over a file descriptor (stdin: pipe, file or terminal)."""

    def read(timeout: float) -> Optional[bytes]:
        try:
            r, _, _ = select.select([fd], [], [], timeout)
        except (InterruptedError, ValueError, OSError):
            r = [fd]
        if not r:
            return b""
        d = os.read(fd, STREAM_CHUNK)
        return d if d else None

    return read


def serial_reader(dev: str, baud: int) -> Tuple[Callable[[float], Optional[bytes]], Any]:
    """``read(timeout)`` over a serial port (needs pyserial); returns (read, port)."""
    from ._util import need_module

    serial = need_module("serial", "serial", "recording from a serial port")
    try:
        port = serial.Serial(dev, baudrate=baud, timeout=0.1)
    except (serial.SerialException, OSError, ValueError) as e:
        raise CliError(f"cannot open serial port {dev}: {e}", EXIT_IO) from None

    def read(timeout: float) -> Optional[bytes]:
        try:
            n = port.in_waiting
            return port.read(max(n, 1))
        except serial.SerialException as e:
            raise CliError(f"serial port {dev}: {e}", EXIT_IO) from None

    return read, port


def udp_drops(sock: socket.socket) -> Optional[int]:
    """Datagrams the kernel dropped for ``sock`` because its receive buffer was full (Linux:
    the ``drops`` column of /proc/net/udp[6]); None where that is not available.

    >>> s = open_udp("127.0.0.1", 0); d = udp_drops(s); s.close(); d in (0, None)
    True
    """
    try:
        ino = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) >= 13 and parts[9] == ino:
                        return int(parts[-1])
        except (OSError, ValueError):
            continue
    return None
