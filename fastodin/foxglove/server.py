"""A Foxglove WebSocket server (``foxglove.websocket.v1``) on its own thread, fed from any thread.

:class:`FoxgloveServer` runs an asyncio loop with a ``websockets`` server in a background thread.
Producers call :meth:`~FoxgloveServer.add_channel` and :meth:`~FoxgloveServer.publish` from their
own threads; ``publish`` never blocks: each client has a bounded queue (``queue_size`` messages)
and a message for a client whose queue is full is dropped and counted (``stats()["dropped"]``),
so a slow viewer never stalls a recording.  Binds 127.0.0.1 unless told otherwise.

>>> s = FoxgloveServer(port=0).start()
>>> cid = s.add_channel("/a", "json", "A", '{"type": "object", "properties": {}}', "jsonschema")
>>> s.publish(cid, 1000, b"{}")
>>> s.stats()["clients"], s.close()
(0, None)
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from ..errors import DataError, MissingDependency
from . import protocol as P

__all__ = ["FoxgloveServer", "need_websockets"]


def need_websockets() -> Any:
    """The ``websockets`` package (>= 13), or MissingDependency naming the extra."""
    try:
        import websockets
        from websockets.asyncio.server import serve  # noqa: F401 - the API we use (websockets >= 13)
    except ImportError:
        raise MissingDependency("serving Foxglove needs the optional package 'websockets' (>= 13): "
                                "pip install 'fastodin[foxglove]'", package="websockets", extra="foxglove") from None
    return websockets


class _Client:
    __slots__ = ("ws", "queue", "subs", "by_channel", "event", "waking", "dropped", "sent", "name")

    def __init__(self, ws: Any, name: str) -> None:
        self.ws = ws
        self.name = name
        self.queue: "collections.deque[Any]" = collections.deque()
        self.subs: Dict[int, int] = {}            # subscription id -> channel id
        self.by_channel: Dict[int, int] = {}      # channel id -> subscription id
        self.event = asyncio.Event()
        self.waking = False
        self.dropped = 0
        self.sent = 0


class FoxgloveServer:
    """Serve channels to Foxglove (``ws://HOST:PORT``).  ``queue_size``: messages waiting per client
    before new ones are dropped for that client; ``name``/``metadata``: the serverInfo fields."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, *, name: str = "fastodin",
                 queue_size: int = 4096, metadata: Optional[Dict[str, str]] = None) -> None:
        need_websockets()
        self.host = host
        self.port = port
        self.name = name
        self.queue_size = int(queue_size)
        self.metadata = dict(metadata or {})
        self.session = str(time.time_ns())
        self._lock = threading.Lock()
        self._channels: Dict[int, Dict[str, Any]] = {}
        self._clients: List[_Client] = []
        self._subscribers: Dict[int, List[Tuple[_Client, int]]] = {}   # channel -> [(client, sub id)]
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._started = threading.Event()
        self._error: Optional[BaseException] = None
        self._stop: Optional[asyncio.Future] = None
        self.dropped = 0
        self.sent = 0
        self.connections = 0
        self.subscribed = threading.Event()   # set once any client has subscribed to a channel

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self) -> "FoxgloveServer":
        """Bind and serve (OSError if the port is taken); returns self.  ``port`` is the bound port."""
        self._thread = threading.Thread(target=self._run, name="fastodin-foxglove", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def close(self) -> None:
        """Close every connection (code 1001, going away) and stop serving."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            def done() -> None:
                if not stop.done():
                    stop.set_result(None)

            loop.call_soon_threadsafe(done)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> "FoxgloveServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            if not self._started.is_set():
                self._error = e
                self._started.set()

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handler, self.host, self.port, subprotocols=[P.SUBPROTOCOL],  # type: ignore[list-item]
                         compression=None, max_size=1 << 22, ping_interval=20, ping_timeout=60) as server:
            sock = next(iter(server.sockets))
            self.port = sock.getsockname()[1]
            self._started.set()
            await self._stop
            for c in list(self._clients):
                try:
                    await asyncio.wait_for(c.ws.close(1001, "server stopping"), 2)
                except Exception:  # noqa: BLE001 - closing anyway
                    pass

    # ---- channels and messages (any thread) ---------------------------------------------------------
    def add_channel(self, topic: str, encoding: str, schema_name: str, schema: str,
                    schema_encoding: Optional[str] = None) -> int:
        """Advertise a channel (to connected and future clients); returns its id."""
        with self._lock:
            cid = len(self._channels) + 1
            ch: Dict[str, Any] = {"id": cid, "topic": topic, "encoding": encoding, "schemaName": schema_name,
                                  "schema": schema}
            if schema_encoding:
                ch["schemaEncoding"] = schema_encoding
            self._channels[cid] = ch
            clients = list(self._clients)
        text = P.advertise([ch])
        for c in clients:
            self._control(c, text)
        return cid

    @property
    def channels(self) -> Dict[int, Dict[str, Any]]:
        return dict(self._channels)

    def subscribed_channels(self) -> set:
        """Channel ids some client is subscribed to now."""
        with self._lock:
            return {cid for cid, subs in self._subscribers.items() if subs}

    def publish(self, channel: int, log_time_ns: int, payload: bytes) -> None:
        """Queue one message for every client subscribed to ``channel`` (never blocks)."""
        subs = self._subscribers.get(channel)
        if not subs:
            return
        with self._lock:
            for c, sid in subs:
                if len(c.queue) >= self.queue_size:
                    c.dropped += 1
                    self.dropped += 1
                    continue
                c.queue.append(P.message_data(sid, log_time_ns, payload))
                self._wake(c)

    def broadcast_time(self, ns: int) -> None:
        """A Time message to every client (the ``time`` capability: the viewer's clock)."""
        msg = P.time_message(ns)
        with self._lock:
            for c in self._clients:
                if len(c.queue) < self.queue_size:
                    c.queue.append(msg)
                    self._wake(c)

    def backlog(self) -> int:
        """Messages waiting in the fullest client queue."""
        with self._lock:
            return max((len(c.queue) for c in self._clients), default=0)

    def stats(self) -> Dict[str, int]:
        with self._lock:
            return {"clients": len(self._clients), "connections": self.connections, "sent": self.sent,
                    "dropped": self.dropped, "channels": len(self._channels)}

    def _wake(self, c: _Client) -> None:       # caller holds the lock
        if not c.waking and self._loop is not None:
            c.waking = True
            self._loop.call_soon_threadsafe(c.event.set)

    def _control(self, c: _Client, text: str) -> None:
        """Protocol messages are never dropped (they do not count against the queue)."""
        with self._lock:
            c.queue.append(text)
            self._wake(c)

    # ---- one connection (event loop) --------------------------------------------------------------
    async def _handler(self, ws: Any) -> None:
        if ws.subprotocol != P.SUBPROTOCOL:
            await ws.close(1002, f"this server speaks the {P.SUBPROTOCOL} subprotocol only")
            return
        c = _Client(ws, str(ws.remote_address))
        with self._lock:
            chans = list(self._channels.values())
            self._clients.append(c)
            self.connections += 1
        c.queue.append(P.server_info(self.name, ["time"], self.metadata, self.session))
        c.queue.append(P.advertise(chans))
        c.event.set()
        sender = asyncio.ensure_future(self._sender(c))
        try:
            async for msg in ws:
                self._on_message(c, msg)
        except Exception:  # noqa: BLE001 - a dropped connection ends the session quietly
            pass
        finally:
            sender.cancel()
            with self._lock:
                if c in self._clients:
                    self._clients.remove(c)
                for cid in list(c.by_channel):
                    self._unsub_locked(c, cid)

    async def _sender(self, c: _Client) -> None:
        try:
            while True:
                await c.event.wait()
                with self._lock:
                    c.event.clear()
                    c.waking = False
                    batch = list(c.queue)
                    c.queue.clear()
                for m in batch:
                    await c.ws.send(m)     # waits while the socket is full: the queue absorbs, then drops
                    if isinstance(m, bytes) and m[:1] == b"\x01":
                        c.sent += 1
                        self.sent += 1
        except Exception:  # noqa: BLE001 - connection closed
            pass

    def _on_message(self, c: _Client, msg: Any) -> None:
        try:
            op, arg = P.parse_client(msg)
        except DataError as e:
            self._control(c, P.status(2, str(e)))
            return
        if op == "subscribe":
            for sid, cid in arg or []:
                with self._lock:
                    if sid in c.subs:
                        err = f"subscription id {sid} is already in use"
                    elif cid not in self._channels:
                        err = f"no channel {cid}"
                    elif cid in c.by_channel:
                        err = f"already subscribed to channel {cid}"
                    else:
                        err = ""
                        c.subs[sid] = cid
                        c.by_channel[cid] = sid
                        self._subscribers[cid] = self._subscribers.get(cid, []) + [(c, sid)]
                if err:
                    self._control(c, P.status(2, f"subscribe: {err}"))
                else:
                    self.subscribed.set()
        elif op == "unsubscribe":
            for sid in arg or []:
                with self._lock:
                    cid = c.subs.get(sid)
                    if cid is not None:
                        self._unsub_locked(c, cid)
        else:
            self._control(c, P.status(1, f"operation {op!r} is not supported by this server"))

    def _unsub_locked(self, c: _Client, cid: int) -> None:
        sid = c.by_channel.pop(cid, None)
        if sid is not None:
            c.subs.pop(sid, None)
        subs = [x for x in self._subscribers.get(cid, []) if x[0] is not c]
        self._subscribers[cid] = subs
