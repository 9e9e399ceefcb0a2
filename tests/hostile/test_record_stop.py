"""Issue 8 item 11: `record` from a byte stream stops on Ctrl-C, SIGTERM or --duration while data keeps
flowing, and closes the archive cleanly.  The design target is 1 s; the bound here is generous (shared CI)."""
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from fastodin.archive.reader import open_archive
from fastodin.cli.verify import verify

#: stop -> exit, seconds (the design target is 1 s; generous for a loaded machine)
BOUND = 5.0


_FEED = {
    # a separate process writing as fast as the pipe takes it (the recorder is the slower side)
    "burst": """
import sys
from fastodin.odin.burst import burst_encode_many
from fastodin.odin.simulator import Simulator
chunk = burst_encode_many(Simulator(seed=3).packets(duration=2.0))
out = sys.stdout.buffer
try:
    while True:
        out.write(chunk)
except (BrokenPipeError, OSError):
    pass
""",
    "fastpack": """
import sys
from fastodin.codec import Encoder
enc = Encoder(namespace=True)
out = sys.stdout.buffer
t = 0.0
try:
    while True:
        for _ in range(5000):
            enc.add(t, "imu", b"\\x01" * 24)
            t += 1e-4
        out.write(enc.take())
except (BrokenPipeError, OSError):
    pass
""",
}


def _record(tmp_path, fmt, args, stop_after, sig):
    out = tmp_path / "rec.fastpack.zst"
    feeder = subprocess.Popen([sys.executable, "-c", _FEED[fmt]], stdout=subprocess.PIPE)
    p = subprocess.Popen([sys.executable, "-m", "fastodin", "record", "-o", str(out), "--stdin", *args],
                         stdin=feeder.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder.stdout.close()
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 0) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)     # frames reach the file: data is flowing
        time.sleep(stop_after)
        t_stop = time.monotonic()
        if sig is not None:
            p.send_signal(sig)
        try:
            so, se = p.communicate(timeout=BOUND + (0 if sig is not None else 10))
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            pytest.fail(f"record did not stop within {BOUND} s of {sig or '--duration'} while data kept flowing")
        took = time.monotonic() - t_stop
    finally:
        feeder.kill()
        feeder.wait()
    return p.returncode, so.decode(), se.decode(), took, out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("fmt", ["burst", "fastpack"])
def test_a_signal_stops_record_while_data_flows(tmp_path, sig, fmt):
    rc, so, se, took, out = _record(tmp_path, fmt, ["--fastpack"] if fmt == "fastpack" else [], 1.0, sig)
    assert rc == 0, se
    assert took < BOUND, f"stop took {took:.1f} s"
    assert f"stopped by {sig.name}" in so, so
    with open_archive(out) as ar:
        res = verify(ar)
        assert res["sound"] and ar.complete, res["problems"]
        assert res["records"] > 1000


def test_duration_stops_record_while_data_flows(tmp_path):
    t0 = time.monotonic()
    rc, so, se, took, out = _record(tmp_path, "burst", ["--duration", "1"], 0.0, None)
    assert rc == 0, se
    assert time.monotonic() - t0 < 1 + BOUND + 5, "startup + 1 s + stop"   # 5 s: interpreter start on a busy machine
    assert "stopped by duration" in so, so
    with open_archive(out) as ar:
        assert verify(ar)["sound"] and ar.complete
    assert os.path.getsize(out) > 0


def test_a_signal_stops_record_from_a_serial_port_while_data_flows(tmp_path):
    pytest.importorskip("serial")
    import threading
    import tty

    from fastodin.odin.burst import burst_encode_many
    from fastodin.odin.simulator import Simulator

    chunk = burst_encode_many(Simulator(seed=3).packets(duration=2.0))
    master, slave = os.openpty()          # a pseudo-terminal: a real serial device to pyserial
    tty.setraw(slave)
    out = tmp_path / "ser.fastpack.zst"
    p = subprocess.Popen([sys.executable, "-m", "fastodin", "record", "-o", str(out), "--serial", os.ttyname(slave)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()
    os.set_blocking(master, False)

    def feed():
        view = memoryview(chunk)
        k = 0
        while not done.is_set():
            select.select([], [master], [], 0.1)
            try:
                k = (k + os.write(master, view[k:])) % len(chunk)
            except BlockingIOError:
                continue
            except OSError:
                return

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 0) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)
        t_stop = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            so, se = p.communicate(timeout=BOUND)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            pytest.fail(f"record --serial did not stop within {BOUND} s of SIGTERM while data kept flowing")
        assert time.monotonic() - t_stop < BOUND
    finally:
        done.set()
        feeder.join(5)
        os.close(master)
        os.close(slave)
    assert p.returncode == 0, se
    assert b"stopped by SIGTERM" in so
    with open_archive(out) as ar:
        assert verify(ar)["sound"] and ar.complete
