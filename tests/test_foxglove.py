"""Foxglove WebSocket serving, spoken to by a real ``websockets`` client over loopback (bounded in
time): serverInfo, advertise, subscribe to one channel, exactly that channel's messages, each
decodable with the advertised schema; slow clients never block the producer."""
import os
import re
import subprocess
import sys
import threading
import time

import orjson
import pytest

websockets = pytest.importorskip("websockets")
jsonschema = pytest.importorskip("jsonschema")
from websockets.sync.client import connect  # noqa: E402

from fastodin.archive import open_archive  # noqa: E402
from fastodin.foxglove import FoxgloveServer  # noqa: E402
from fastodin.foxglove.protocol import SUBPROTOCOL  # noqa: E402
from fastodin.timebase import seconds_to_ns  # noqa: E402

DEADLINE = 60.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("fox")
    path = d / "demo.fastpack.zst"
    p = subprocess.run([sys.executable, "-m", "fastodin", "demo", "-o", str(path), "--seconds", "2"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return path


def _server_url(proc):
    """Read the replay's stderr until it says where it serves."""
    end = time.monotonic() + DEADLINE
    lines = []
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        if m:
            return f"ws://127.0.0.1:{m.group(1)}", lines
    raise AssertionError("no server line: " + "".join(lines))


def _until(ws, pred, what):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        m = ws.recv(timeout=DEADLINE)
        got = pred(m)
        if got is not None:
            return got
    raise AssertionError(f"never got {what}")


def test_replay_protocol(demo):
    topic = "odin/set/0x9D05"
    proc = subprocess.Popen([sys.executable, "-m", "fastodin", "replay", str(demo), "--foxglove", "0", "--speed", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        url, _ = _server_url(proc)
        with connect(url, subprotocols=[SUBPROTOCOL], open_timeout=DEADLINE, max_size=1 << 24) as ws:
            assert ws.subprotocol == SUBPROTOCOL
            info = orjson.loads(ws.recv(timeout=DEADLINE))
            assert info["op"] == "serverInfo" and "time" in info["capabilities"] and info["sessionId"]
            chans = {}

            def adv(m):
                if isinstance(m, str):
                    d = orjson.loads(m)
                    if d["op"] == "advertise":
                        for c in d["channels"]:
                            chans[c["topic"]] = c
                    if topic in chans and "odin/set/0x98A8" in chans:
                        return True
                return None

            _until(ws, adv, "the advertise of " + topic)
            ch = chans[topic]
            assert ch["encoding"] == "json" and ch["schemaEncoding"] == "jsonschema"
            validator = jsonschema.Draft202012Validator(orjson.loads(ch["schema"]))
            ws.send(orjson.dumps({"op": "subscribe", "subscriptions": [{"id": 7, "channelId": ch["id"]}]}).decode())
            got = []
            statuses = []
            end = time.monotonic() + DEADLINE
            try:
                while time.monotonic() < end:
                    m = ws.recv(timeout=DEADLINE)
                    if isinstance(m, bytes):
                        if m[0] == 0x01:
                            sid, ts = int.from_bytes(m[1:5], "little"), int.from_bytes(m[5:13], "little")
                            got.append((sid, ts, orjson.loads(m[13:])))
                        else:
                            assert m[0] == 0x02 and len(m) == 9      # Time
                    else:
                        statuses.append(orjson.loads(m))
            except websockets.exceptions.ConnectionClosed:
                pass
        assert proc.wait(DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert not [s for s in statuses if s.get("op") == "status" and s.get("level") == 2], statuses
    with open_archive(demo) as ar:
        t, _ = ar.read(topic)
    assert len(got) == t.shape[0] > 0                            # exactly that channel's messages
    assert {sid for sid, _ts, _d in got} == {7}
    assert [ts for _s, ts, _d in got] == seconds_to_ns(t).tolist()
    for _s, _ts, d in got:
        validator.validate(d)
        assert set(d) >= {"timestamp", "sequence", "power"}


def test_unsubscribe_and_errors():
    srv = FoxgloveServer(port=0).start()
    try:
        cid = srv.add_channel("/a", "json", "A", '{"type": "object", "properties": {"x": {"type": "number"}}}',
                              "jsonschema")
        with connect(f"ws://127.0.0.1:{srv.port}", subprotocols=[SUBPROTOCOL], open_timeout=DEADLINE) as ws:
            assert orjson.loads(ws.recv(timeout=DEADLINE))["op"] == "serverInfo"
            assert orjson.loads(ws.recv(timeout=DEADLINE))["channels"][0]["id"] == cid
            ws.send('{"op": "subscribe", "subscriptions": [{"id": 1, "channelId": 99}]}')
            st = orjson.loads(ws.recv(timeout=DEADLINE))
            assert st["op"] == "status" and st["level"] == 2 and "no channel 99" in st["message"]
            ws.send("not json")
            assert orjson.loads(ws.recv(timeout=DEADLINE))["level"] == 2
            ws.send(orjson.dumps({"op": "subscribe", "subscriptions": [{"id": 1, "channelId": cid}]}).decode())
            assert srv.subscribed.wait(DEADLINE)
            srv.publish(cid, 5, b'{"x":1}')
            m = ws.recv(timeout=DEADLINE)
            assert m == b"\x01" + (1).to_bytes(4, "little") + (5).to_bytes(8, "little") + b'{"x":1}'
            ws.send('{"op": "unsubscribe", "subscriptionIds": [1]}')
            end = time.monotonic() + DEADLINE
            while srv.subscribed_channels() and time.monotonic() < end:
                time.sleep(0.01)
            assert not srv.subscribed_channels()
            srv.publish(cid, 6, b'{"x":2}')
            cid2 = srv.add_channel("/b", "json", "B", '{"type": "object", "properties": {}}', "jsonschema")
            d = orjson.loads(ws.recv(timeout=DEADLINE))           # the new channel, not the message of /a
            assert d["op"] == "advertise" and d["channels"][0]["id"] == cid2
        with pytest.raises(Exception):
            with connect(f"ws://127.0.0.1:{srv.port}", open_timeout=DEADLINE) as ws:   # no subprotocol
                ws.recv(timeout=DEADLINE)
    finally:
        srv.close()


def test_slow_client_never_blocks_the_producer():
    srv = FoxgloveServer(port=0, queue_size=16).start()
    try:
        cid = srv.add_channel("/big", "json", "B", '{"type": "object", "properties": {}}', "jsonschema")
        with connect(f"ws://127.0.0.1:{srv.port}", subprotocols=[SUBPROTOCOL], open_timeout=DEADLINE,
                     max_size=None) as ws:
            ws.recv(timeout=DEADLINE)
            ws.recv(timeout=DEADLINE)
            ws.send(orjson.dumps({"op": "subscribe", "subscriptions": [{"id": 0, "channelId": cid}]}).decode())
            assert srv.subscribed.wait(DEADLINE)
            payload = b'{"pad":"' + b"x" * (256 << 10) + b'"}'
            t0 = time.monotonic()
            for k in range(400):                     # 100 MiB to a client that reads nothing
                srv.publish(cid, k, payload)
            took = time.monotonic() - t0
            assert took < 5.0
            st = srv.stats()
            assert st["dropped"] > 0 and srv.backlog() <= 16
    finally:
        srv.close()


def test_port_in_use_is_exit_3(demo):
    srv = FoxgloveServer(port=0).start()
    try:
        p = subprocess.run([sys.executable, "-m", "fastodin", "replay", str(demo), "--foxglove", str(srv.port)],
                           capture_output=True, text=True, timeout=DEADLINE)
        assert p.returncode == 3 and "cannot serve Foxglove" in p.stderr
    finally:
        srv.close()


def test_missing_websockets_is_exit_4(demo, tmp_path):
    """Without the extra, the command says which one to install (exit 4)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "websockets.py").write_text("raise ImportError('hidden for this test')\n")
    env = dict(os.environ, PYTHONPATH=str(shim) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "fastodin", "replay", str(demo), "--foxglove", "0"],
                       capture_output=True, text=True, env=env, timeout=DEADLINE)
    assert p.returncode == 4 and "fastodin[foxglove]" in p.stderr


def test_core_imports_without_the_extras(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    for mod in ("websockets", "mcap", "lz4", "jsonschema"):
        (shim / f"{mod}.py").write_text("raise ImportError('hidden')\n")
    env = dict(os.environ, PYTHONPATH=str(shim))
    code = "import fastodin, fastodin.mcap, fastodin.foxglove.protocol, fastodin.cli; print('ok')"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=DEADLINE)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_record_serves_live(tmp_path):
    """record --foxglove: a client subscribed to an ODIN set gets its typed messages while the capture
    runs; the archive holds everything."""
    import signal
    import socket

    from fastodin.odin import Simulator

    out = tmp_path / "live.fastpack.zst"
    proc = subprocess.Popen([sys.executable, "-m", "fastodin", "record", "-o", str(out), "--udp", "127.0.0.1:0",
                             "--foxglove", "0", "--duration", "50"], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    stop = threading.Event()
    try:
        url, lines = _server_url(proc)
        end = time.monotonic() + DEADLINE
        udp = None
        while udp is None and time.monotonic() < end:
            line = proc.stderr.readline()
            m = re.search(r"UDP 127\.0\.0\.1:(\d+)", line)
            if m:
                udp = int(m.group(1))
        assert udp, "record did not say its UDP port"
        packets = Simulator(seed=3).packets(duration=1.0)

        def send():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            while not stop.is_set():
                for p in packets:
                    s.sendto(p, ("127.0.0.1", udp))
                time.sleep(0.05)
            s.close()

        th = threading.Thread(target=send, daemon=True)
        th.start()
        with connect(url, subprotocols=[SUBPROTOCOL], open_timeout=DEADLINE) as ws:
            chans = {}

            def adv(m):
                if isinstance(m, str):
                    d = orjson.loads(m)
                    for c in d.get("channels", []) if d["op"] == "advertise" else []:
                        chans[c["topic"]] = c
                return True if any(t.startswith("odin/set/0x") and not t.endswith("identifier")
                                   and chans[t]["encoding"] == "json" for t in chans) else None

            _until(ws, adv, "an ODIN set channel")
            topic = next(t for t in chans if t.startswith("odin/set/0x") and not t.endswith("identifier"))
            ch = chans[topic]
            validator = jsonschema.Draft202012Validator(orjson.loads(ch["schema"]))
            ws.send(orjson.dumps({"op": "subscribe", "subscriptions": [{"id": 3, "channelId": ch["id"]}]}).decode())

            def data(m):
                if isinstance(m, bytes) and m[0] == 1:
                    assert int.from_bytes(m[1:5], "little") == 3
                    return orjson.loads(m[13:])
                return None

            got = [_until(ws, data, "live data") for _ in range(20)]
        for d in got:
            validator.validate(d)
            assert "timestamp" in d and "sequence" in d
    finally:
        stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(DEADLINE)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == 0, err
    assert "foxglove:" in err
    with open_archive(out) as ar:
        assert ar.info()["channels"][topic]["count"] > 0


def test_replay_of_an_imported_mcap_keeps_encodings(tmp_path):
    """Channels that came from MCAP are served in their own encoding (binary schemas base64, as
    Foxglove wants); a schemaless channel in an encoding Foxglove cannot take is wrapped as JSON bytes."""
    import base64

    from test_mcap_import import _descriptor_set, make_mcap

    from fastodin.foxglove.live import replay_archive
    from fastodin.mcap.importer import import_mcap

    src = make_mcap(tmp_path / "in.mcap")
    import_mcap(src, tmp_path / "a.fastpack.zst")
    srv = FoxgloveServer(port=0).start()
    try:
        got = {}
        th = threading.Thread(target=lambda: got.update(replay_archive(str(tmp_path / "a.fastpack.zst"), srv,
                                                                       speed=0, wait=DEADLINE)))
        th.start()
        # max_queue=None: the client reads everything in, so its close handshake is not stuck behind
        # unread messages (websockets' client stops reading when its queue is full)
        with connect(f"ws://127.0.0.1:{srv.port}", subprotocols=[SUBPROTOCOL], open_timeout=DEADLINE,
                     max_queue=None) as ws:
            chans = {}

            def adv(m):
                if isinstance(m, str):
                    d = orjson.loads(m)
                    for c in d.get("channels", []) if d["op"] == "advertise" else []:
                        chans[c["topic"]] = c
                return True if {"/proto", "/free", "/point"} <= set(chans) else None

            _until(ws, adv, "the imported channels")
            assert "/proto#mcap" not in chans and "mcap/attachments" not in chans
            pb = chans["/proto"]
            assert pb["encoding"] == "protobuf" and pb["schemaEncoding"] == "protobuf"
            assert base64.b64decode(pb["schema"]) == _descriptor_set() and pb["schemaName"] == "demo.P"
            free = chans["/free"]
            assert free["encoding"] == "json" and "contentEncoding" in free["schema"]
            ws.send(orjson.dumps({"op": "subscribe", "subscriptions": [{"id": 1, "channelId": free["id"]}]}).decode())
            first = _until(ws, lambda m: orjson.loads(m[13:]) if isinstance(m, bytes) and m[0] == 1 else None,
                           "a /free message")
            assert set(first) == {"size", "data"} and len(base64.b64decode(first["data"])) == first["size"]
        th.join(DEADLINE)
        assert got["messages"] > 0
    finally:
        srv.close()
