"""Every subcommand through a real subprocess: results checked against the library, bad input
checked for ONE clear line on stderr and the documented exit code (0 ok, 1 data, 2 usage, 3 I/O,
4 missing optional dependency)."""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from fastodin.archive.reader import open_archive
from fastodin.cli.sources import odin_records
from fastodin.odin.burst import burst_decode, burst_encode_many
from fastodin.odin.replay import iter_packets
from fastodin.odin.simulator import Simulator

from test_cli import REPO, fo, one_line_error

PY = sys.executable


def popen(*args: str, **kw):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(kw.pop("env", {}) or {})
    return subprocess.Popen([PY, "-m", "fastodin", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=e, **kw)


def packets_of(path) -> list:
    with open_archive(path) as ar:
        return list(iter_packets(odin_records(ar)))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def demo(work):
    """A demo archive (simulated ODIN device, 2 s) and its packets."""
    out = work / "demo.fastpack.zst"
    p = fo("demo", "-o", str(out), "--seconds", "2")
    assert p.returncode == 0, p.err
    return out, packets_of(out)


@pytest.fixture(scope="module")
def rawfp(work):
    """A raw FastPack file (not ODIN): id-0 metadata + 5 named channels of two f64, 200 records each."""
    from fastodin import Encoder

    enc = Encoder(namespace=True)
    enc.add_meta(0.0, {"fastodin_demo": 1})
    names = ["imu.accel_x", "imu.accel_y", "imu.gyro_z", "motor.current", "motor.speed"]
    for j in range(200):
        for k, nm in enumerate(names):
            enc.add(j / 1000 + k / 5000, nm, np.array([j, -k], np.float64).tobytes())
    out = work / "codec.fastpack"
    out.write_bytes(enc.take())
    return out


@pytest.fixture(scope="module")
def junk(work):
    p = work / "notes.txt"
    p.write_text("this is a text file, not a recording\n" * 20)
    return p


@pytest.fixture(scope="module")
def truncated(work, demo):
    data = demo[0].read_bytes()
    p = work / "cut.fastpack.zst"
    p.write_bytes(data[: len(data) * 2 // 3])
    return p


@pytest.fixture(scope="module")
def flipped(work, demo):
    b = bytearray(demo[0].read_bytes())
    b[len(b) // 2] ^= 0x10
    p = work / "flip.fastpack.zst"
    p.write_bytes(bytes(b))
    return p


# -- info ------------------------------------------------------------------------------------------

def test_info_text_and_json(demo):
    path, pk = demo
    p = fo("info", str(path))
    assert p.returncode == 0, p.err
    assert "odin/set/0x" in p.out and "sequence gaps" in p.out and "CRC errors 0" in p.out
    j = fo("info", str(path), "--json")
    assert j.returncode == 0
    d = json.loads(j.out)
    assert d["format"] == "archive" and d["complete"] is True
    odin = sum(c["count"] for n, c in d["channels"].items() if n.startswith("odin/"))
    assert odin == len(pk)
    assert d["odin"]["stats"]["packets"] == len(pk)
    assert d["compression_ratio"] > 1


def test_info_raw_fastpack(rawfp):
    d = json.loads(fo("info", str(rawfp), "--json").out)
    assert d["format"] == "fastpack"
    assert d["channels"]["imu.accel_x"]["count"] == 200


def test_info_reports_gaps_and_crc_errors(work):
    # a capture with loss and corrupted frames: info must count them
    sim = Simulator(seed=5, loss=0.05)
    data = sim.burst(duration=1.0, corrupt=0.05)
    cap = work / "lossy.burst"
    cap.write_bytes(data)
    out = work / "lossy.fastpack.zst"
    p = fo("record", "-o", str(out), "--stdin", input=data)
    assert p.returncode == 0, p.err
    d = json.loads(fo("info", str(out), "--json").out)
    assert d["odin"]["sequence_totals"]["gaps"] > 0
    assert d["odin"]["crc_errors"] > 0
    txt = fo("info", str(out)).out
    assert re.search(r"sequence gaps [1-9]", txt) and re.search(r"CRC errors [1-9]", txt)


# -- cat -------------------------------------------------------------------------------------------

def test_cat_jsonl_typed_values(demo):
    path, pk = demo
    p = fo("cat", str(path), "--channel", "odin/set/*", "--limit", "50")
    assert p.returncode == 0, p.err
    rows = [json.loads(l) for l in p.out.splitlines()]
    assert len(rows) == 50
    assert all(r["channel"].startswith("odin/set/0x") for r in rows)
    typed = [r for r in rows if "values" in r]
    assert typed and "sequence" in typed[0]["values"] and "timestamp" in typed[0]["values"]
    # the values equal the library's typed decode
    from fastodin.odin.decode import decode

    res = decode(pk)
    r0 = typed[0]
    sid = int(r0["channel"].rsplit("0x", 1)[1], 16)
    tab = res[sid]
    i = int(np.flatnonzero(tab["sequence"] == r0["values"]["sequence"])[0])
    ref = tab.rows()[i]
    for k, v in r0["values"].items():
        if isinstance(v, float):
            assert v == pytest.approx(ref[k])
        elif not isinstance(ref.get(k), (bytes, float)):
            assert v == ref[k], k


def test_cat_time_window_and_formats(demo):
    path, _ = demo
    with open_archive(path) as ar:
        want = [r for r in ar.records(start=0.5, end=0.6)]
    p = fo("cat", str(path), "--start", "0.5", "--end", "0.6", "--format", "hex")
    assert p.returncode == 0, p.err
    lines = p.out.splitlines()
    assert len(lines) == len(want)
    t, ch, n, hx = lines[0].split("\t")
    assert bytes.fromhex(hx) == bytes(want[0].payload) and int(n) == len(want[0].payload)
    c = fo("cat", str(path), "--channel", "odin/set/0x*", "--format", "csv", "--limit", "10")
    rows = list(csv.reader(c.out.splitlines()))
    assert rows[0][:2] == ["time", "channel"] and len(rows) == 11


def test_cat_raw_fastpack_metadata(rawfp):
    p = fo("cat", str(rawfp), "--channel", "0")
    rows = [json.loads(l) for l in p.out.splitlines()]
    assert rows and rows[0]["meta"]["fastodin_demo"] == 1


def test_cat_no_such_channel(demo):
    line = one_line_error(fo("cat", str(demo[0]), "--channel", "nope*"), 2)
    assert "nope" in line


def test_cat_broken_pipe_is_quiet(demo):
    e = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run(f"'{PY}' -m fastodin cat '{demo[0]}' | head -n 2", shell=True, capture_output=True,
                       text=True, env=e, timeout=60)
    assert len(p.stdout.splitlines()) == 2
    assert "Traceback" not in p.stderr and "Error" not in p.stderr


# -- export ----------------------------------------------------------------------------------------

def test_export_csv_npz(demo, work):
    path, pk = demo
    from fastodin.odin.decode import decode

    res = decode(pk)
    d = work / "csv"
    p = fo("export", str(path), "-o", str(d), "--csv")
    assert p.returncode == 0, p.err
    for sid, tab in res.items():
        f = d / f"set_0x{sid:04X}.csv"
        rows = list(csv.reader(f.read_text().splitlines()))
        assert len(rows) - 1 == len(tab)
        assert "sequence" in rows[0]
    npz = work / "x.npz"
    p = fo("export", str(path), "-o", str(npz), "--npz")
    assert p.returncode == 0, p.err
    z = np.load(npz)
    for sid, tab in res.items():
        assert np.array_equal(z[f"set_0x{sid:04X}/sequence"], tab["sequence"])
        assert np.array_equal(z[f"set_0x{sid:04X}/time"], tab["time"])


def test_export_parquet(demo, work):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    d = work / "pq"
    p = fo("export", str(demo[0]), "-o", str(d), "--parquet")
    assert p.returncode == 0, p.err
    files = sorted(d.glob("set_*.parquet"))
    assert files and pq.read_table(files[0]).num_rows > 0


def test_export_parquet_without_pyarrow(demo, work):
    fake = work / "nopyarrow"
    (fake / "pyarrow").mkdir(parents=True, exist_ok=True)
    (fake / "pyarrow" / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    p = fo("export", str(demo[0]), "-o", str(work / "pq2"), "--parquet",
           env={"PYTHONPATH": f"{fake}{os.pathsep}{REPO}"})
    line = one_line_error(p, 4)
    assert "pyarrow" in line and "fastodin[parquet]" in line


def test_export_raw_channels(rawfp, work):
    d = work / "rawcsv"
    p = fo("export", str(rawfp), "-o", str(d), "--csv")
    assert p.returncode == 0, p.err
    rows = list(csv.reader((d / "imu.accel_x.csv").read_text().splitlines()))
    assert len(rows) == 201


# -- convert ---------------------------------------------------------------------------------------

def test_convert_archive_raw_roundtrip(demo, work):
    import zstandard

    path, pk = demo
    raw = work / "conv.fastpack"
    p = fo("convert", str(path), str(raw))
    assert p.returncode == 0, p.err
    with open(path, "rb") as f:
        z = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    assert raw.read_bytes() == z  # exactly what `zstd -d` gives: Perl tools read it
    back = work / "conv2.fastpack.zst"
    p = fo("convert", str(raw), str(back))
    assert p.returncode == 0, p.err
    assert packets_of(back) == pk
    assert fo("verify", str(back)).returncode == 0


def test_convert_burst_and_pcap(demo, work):
    path, pk = demo
    b = work / "c.burst"
    assert fo("convert", str(path), str(b)).returncode == 0
    assert burst_decode(b.read_bytes()) == pk
    a = work / "from_burst.fastpack.zst"
    assert fo("convert", str(b), str(a)).returncode == 0
    assert packets_of(a) == pk
    pc = work / "c.pcap"
    assert fo("convert", str(path), str(pc), "--port", "7000").returncode == 0
    a2 = work / "from_pcap.fastpack.zst"
    assert fo("convert", str(pc), str(a2), "--port", "7000").returncode == 0
    assert packets_of(a2) == pk
    # wrong port filter keeps nothing
    a3 = work / "from_pcap_none.fastpack.zst"
    p = fo("convert", str(pc), str(a3), "--port", "7001")
    assert p.returncode == 0 and "other_ports" in p.out


def test_convert_refuses_overwrite_and_unknown_kind(demo, work):
    out = work / "exists.fastpack"
    out.write_bytes(b"x")
    one_line_error(fo("convert", str(demo[0]), str(out)), 3)
    one_line_error(fo("convert", str(demo[0]), str(work / "x.weird")), 2)


# -- replay ----------------------------------------------------------------------------------------

def _udp_receiver():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.5)
    return s


def test_replay_udp_to_real_socket(demo):
    path, pk = demo
    rx = _udp_receiver()
    got = []
    p = popen("replay", str(path), "--udp", f"127.0.0.1:{rx.getsockname()[1]}", "--speed", "0")
    deadline = time.monotonic() + 60
    while len(got) < len(pk) and time.monotonic() < deadline:
        try:
            got.append(rx.recv(65536))
        except socket.timeout:
            if p.poll() is not None and len(got) < len(pk):
                # finished sending; give the kernel a moment, then stop
                try:
                    got.append(rx.recv(65536))
                except socket.timeout:
                    break
    out, err = p.communicate(timeout=60)
    rx.close()
    assert p.returncode == 0, err
    assert got == pk


def test_replay_tcp_burst_to_real_server(demo):
    path, pk = demo
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    chunks = []

    def serve():
        c, _ = srv.accept()
        while True:
            d = c.recv(65536)
            if not d:
                break
            chunks.append(d)
        c.close()

    th = threading.Thread(target=serve)
    th.start()
    p = fo("replay", str(path), "--tcp", f"127.0.0.1:{port}", "--speed", "0")
    th.join(30)
    srv.close()
    assert p.returncode == 0, p.err
    assert burst_decode(b"".join(chunks)) == pk


def test_replay_tcp_listen_paced(demo):
    path, pk = demo
    p = popen("replay", str(path), "--tcp", "127.0.0.1:0", "--listen", "--speed", "50", "--channel", "odin/set/*",
              "--channel", "odin/types")
    line = p.stderr.readline().decode()
    port = int(re.search(r":(\d+) ", line).group(1))
    c = socket.create_connection(("127.0.0.1", port))
    data = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        data += d
    c.close()
    p.wait(60)
    assert p.returncode == 0
    # every packet but the events (odin/event/N), in recorded order
    assert burst_decode(data) == [x for x in pk if x[0] != 0x0B]


def test_replay_stdout_fastpack(rawfp):
    from fastodin import decode

    p = fo("replay", str(rawfp), "--stdout", "--format", "fastpack", "--speed", "0", "--channel", "imu.*")
    assert p.returncode == 0, p.err
    recs = decode(p.stdout, namespace=True)
    assert {r.name for r in recs} == {"imu.accel_x", "imu.accel_y", "imu.gyro_z"}
    assert len(recs) == 600


def test_replay_usage_errors(demo, rawfp):
    one_line_error(fo("replay", str(demo[0]), "--stdout", "--format", "odin"), 2)
    one_line_error(fo("replay", str(rawfp), "--stdout", "--format", "burst"), 2)
    one_line_error(fo("replay", str(demo[0]), "--udp", "127.0.0.1:9", "--speed", "-1"), 2)


def test_replay_tcp_nobody_listening(demo):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    line = one_line_error(fo("replay", str(demo[0]), "--tcp", f"127.0.0.1:{port}"), 3)
    assert str(port) in line


# -- record ----------------------------------------------------------------------------------------

def _start_recorder(*args):
    p = popen("record", *args)
    line = p.stderr.readline().decode()
    return p, line


def test_record_udp_every_packet_sigterm(work):
    pk = Simulator(seed=11).packets(n=5000)
    out = work / "udp.fastpack.zst"
    p, line = _start_recorder("-o", str(out), "--udp", "127.0.0.1:0")
    m = re.search(r"UDP 127\.0\.0\.1:(\d+)", line)
    assert m, line + p.stderr.read().decode()
    port = int(m.group(1))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(("127.0.0.1", port))
    for i, x in enumerate(pk):
        tx.send(x)
        if i % 250 == 249:
            time.sleep(0.002)
    tx.close()
    p.send_signal(signal.SIGTERM)  # the recorder drains what the kernel holds, then closes
    so, se = p.communicate(timeout=60)
    assert p.returncode == 0, se
    assert "stopped by SIGTERM" in so.decode()
    assert packets_of(out) == pk
    with open_archive(out) as ar:
        assert ar.complete and not ar.damage


def test_record_udp_burst_datagrams_sigint(work):
    pk = Simulator(seed=12).packets(n=600)
    out = work / "udpb.fastpack.zst"
    p, line = _start_recorder("-o", str(out), "--udp", "127.0.0.1:0", "--burst")
    port = int(re.search(r":(\d+) ", line).group(1))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(("127.0.0.1", port))
    for i in range(0, len(pk), 20):
        tx.send(burst_encode_many(pk[i:i + 20]))
    tx.close()
    p.send_signal(signal.SIGINT)
    so, se = p.communicate(timeout=60)
    assert p.returncode == 0, se
    assert packets_of(out) == pk


def test_record_tcp_listen_and_connect(work):
    pk = Simulator(seed=13).packets(n=3000)
    data = burst_encode_many(pk)
    # listen: we connect and stream; EOF ends the recording
    out = work / "tcpl.fastpack.zst"
    p, line = _start_recorder("-o", str(out), "--tcp", "127.0.0.1:0", "--listen")
    port = int(re.search(r"TCP 127\.0\.0\.1:(\d+)", line).group(1))
    c = socket.create_connection(("127.0.0.1", port))
    for i in range(0, len(data), 7777):  # arbitrary splits
        c.sendall(data[i:i + 7777])
    c.close()
    so, se = p.communicate(timeout=60)
    assert p.returncode == 0, se
    assert packets_of(out) == pk
    # connect: we serve
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        cc, _ = srv.accept()
        cc.sendall(data)
        cc.close()

    th = threading.Thread(target=serve)
    th.start()
    out2 = work / "tcpc.fastpack.zst"
    r = fo("record", "-o", str(out2), "--tcp", f"127.0.0.1:{port}")
    th.join(30)
    srv.close()
    assert r.returncode == 0, r.err
    assert packets_of(out2) == pk


def test_record_stdin_burst_with_garbage(work):
    sim = Simulator(seed=14)
    pk = sim.packets(duration=0.5)
    data = b"\x13\x37garbage\x00" + burst_encode_many(pk)
    out = work / "stdin.fastpack.zst"
    p = fo("record", "-o", str(out), "--stdin", input=data)
    assert p.returncode == 0, p.err
    assert packets_of(out) == pk
    assert "stopped by end of input" in p.out


def test_record_stdin_fastpack(rawfp, work):
    out = work / "stdinfp.fastpack.zst"
    p = fo("record", "-o", str(out), "--stdin", "--fastpack", input=rawfp.read_bytes())
    assert p.returncode == 0, p.err
    with open_archive(rawfp) as a, open_archive(out) as b:
        ra = [(r.time, r.name, bytes(r.payload)) for r in a.records()]
        rb = [(r.time, r.name, bytes(r.payload)) for r in b.records()]
    assert ra == rb


def test_record_rotation_every_file_decodes_alone(work):
    sim = Simulator(seed=15)
    pk = sim.packets(duration=1.5)
    thirds = [pk[: len(pk) // 3], pk[len(pk) // 3: 2 * len(pk) // 3], pk[2 * len(pk) // 3:]]
    out = work / "rot.fastpack.zst"
    p = popen("record", "-o", str(out), "--stdin", "--rotate-time", "0.2", stdin=subprocess.PIPE)
    for k, part in enumerate(thirds):
        p.stdin.write(burst_encode_many(part))
        p.stdin.flush()
        # Wait until the recorder has opened this part (a slow start must not let all three batches
        # arrive together), then let more than rotate-time pass: the next batch starts a new file.
        deadline = time.monotonic() + 30
        while len(list(work.glob("rot-*.fastpack.zst"))) < k + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.4)
    p.stdin.close()
    p.stdin = None
    so, se = p.communicate(timeout=60)
    assert p.returncode == 0, se
    files = sorted(work.glob("rot-*.fastpack.zst"))
    assert len(files) >= 2
    from fastodin.odin.decode import decode

    data = []
    for f in files:
        got = packets_of(f)
        res = decode(got)
        assert len(res) == 3 and not res.undefined  # each file carries the definitions in force
        data += [x for x in got if x[0] in (0x02, 0x0B)]
    assert data == [x for x in pk if x[0] in (0x02, 0x0B)]


def test_record_sigkill_keeps_flushed_packets(work):
    pk = Simulator(seed=16).packets(n=2000)
    out = work / "killed.fastpack.zst"
    p, line = _start_recorder("-o", str(out), "--udp", "127.0.0.1:0", "--flush-interval", "0.2")
    port = int(re.search(r":(\d+) ", line).group(1))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(("127.0.0.1", port))
    for i, x in enumerate(pk):
        tx.send(x)
        if i % 250 == 249:
            time.sleep(0.002)
    tx.close()
    # wait (bounded) until everything sent is on disk, then SIGKILL
    deadline = time.monotonic() + 30
    n = -1
    while time.monotonic() < deadline:
        try:
            n = len(packets_of(out))
        except Exception:
            n = -1
        if n == len(pk):
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    assert n == len(pk)
    assert packets_of(out) == pk
    v = fo("verify", str(out))
    assert v.returncode == 1 and "did not close" in v.out  # no seek table: reported, still readable


def test_record_port_in_use(work):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    out = work / "busy.fastpack.zst"
    try:
        line = one_line_error(fo("record", "-o", str(out), "--udp", f"127.0.0.1:{port}"), 3)
    finally:
        s.close()
    assert "already in use" in line
    assert not out.exists()  # nothing half-written
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    t.listen(1)
    port = t.getsockname()[1]
    try:
        line = one_line_error(fo("record", "-o", str(out), "--tcp", f"127.0.0.1:{port}", "--listen"), 3)
    finally:
        t.close()
    assert "already in use" in line


def test_record_serial_without_pyserial(work):
    fake = work / "noserial"
    (fake / "serial").mkdir(parents=True, exist_ok=True)
    (fake / "serial" / "__init__.py").write_text("raise ImportError('no pyserial here')\n")
    p = fo("record", "-o", str(work / "s.fastpack.zst"), "--serial", "/dev/ttyUSB9",
           env={"PYTHONPATH": f"{fake}{os.pathsep}{REPO}"})
    line = one_line_error(p, 4)
    assert "pyserial" in line or "serial" in line


def test_record_usage_errors(work):
    one_line_error(fo("record", "-o", str(work / "u.fastpack.zst")), 2)  # no source
    one_line_error(fo("record", "-o", str(work / "u.fastpack.zst"), "--udp", "x:y"), 2)
    one_line_error(fo("record", "-o", str(work / "u.fastpack.zst"), "--udp", ":0", "--fastpack"), 2)
    one_line_error(fo("record", "-o", str(work / "u.fastpack.zst"), "--stdin", "--rotate-size", "1k"), 2)
    one_line_error(fo("record", "-o", str(work / "no" / "dir" / "u.fastpack.zst"), "--stdin", input=b""), 3)


def test_record_duration_stops(work):
    out = work / "dur.fastpack.zst"
    p = fo("record", "-o", str(out), "--udp", "127.0.0.1:0", "--duration", "0.3", timeout=60)
    assert p.returncode == 0, p.err
    assert "stopped by duration" in p.out
    assert fo("verify", str(out)).returncode == 0


# -- verify / recover ------------------------------------------------------------------------------

def test_verify_sound_and_damaged(demo, truncated, flipped, rawfp):
    assert fo("verify", str(demo[0])).returncode == 0
    assert fo("verify", str(rawfp)).returncode == 0
    v = fo("verify", str(truncated))
    assert v.returncode == 1 and "NOT SOUND" in v.out
    j = json.loads(fo("verify", str(flipped), "--json").out)
    assert j["sound"] is False and j["problems"]


def test_recover_reports_numbers(demo, truncated, work):
    total = json.loads(fo("info", str(demo[0]), "--json").out)["records"]
    out = work / "saved.fastpack.zst"
    p = fo("recover", str(truncated), str(out), "--json")
    assert p.returncode == 1  # something was lost
    r = json.loads(p.stdout)
    assert r["records_saved"] + r["records_lost"] + 0 >= total - 16  # saved + lost cover the file
    assert r["records_lost"] > 0 and r["lost"][0]["t_min"] is not None
    assert fo("verify", str(out)).returncode == 0
    ok = work / "saved_ok.fastpack.zst"
    p = fo("recover", str(demo[0]), str(ok))
    assert p.returncode == 0 and "lost:  0 records" in p.out


# -- bad input, every subcommand ------------------------------------------------------------------

READERS = [
    ("info", []), ("cat", []), ("export", ["-o", "{w}/o.npz", "--npz"]), ("replay", ["--stdout"]),
    ("convert", ["{w}/o.fastpack"]), ("verify", []), ("recover", ["{w}/o.fastpack.zst"]),
]


@pytest.mark.parametrize("cmd,extra", READERS)
def test_missing_file(cmd, extra, work):
    args = [a.format(w=work) for a in extra]
    line = one_line_error(fo(cmd, str(work / "missing.fastpack.zst"), *args), 3)
    assert "missing.fastpack.zst" in line


@pytest.mark.parametrize("cmd,extra", READERS)
def test_not_our_file(cmd, extra, junk, work):
    args = [a.format(w=work) for a in extra]
    line = one_line_error(fo(cmd, str(junk), *args), 1)
    assert "notes.txt" in line or "not" in line


@pytest.mark.parametrize("cmd,extra", [r for r in READERS if r[0] != "recover"])
def test_truncated_archive(cmd, extra, truncated, work):
    args = [a.format(w=work) for a in extra]
    p = fo(cmd, str(truncated), *args)
    assert p.returncode == 1
    if cmd != "verify":  # verify reports on stdout; everything else: one line on stderr
        line = one_line_error(p, 1)
        assert "damaged" in line or "NOT SOUND" in line or "cut" in line


def test_directory_is_not_a_file(work):
    one_line_error(fo("info", str(work)), 3)


# -- typed non-ODIN recordings (layouts, streams, tags) ---------------------------------------------

@pytest.fixture(scope="module")
def layout_archive(work):
    from fastodin.archive.writer import Writer

    p = work / "lay.fastpack.zst"
    with Writer(p) as w:
        w.set_tag("site", "lab")
        s = w.create_stream("imu", flavor="left")
        s.set_tag("model", "x1")
        s.data_layout.vector3d("accel").scalar("temp", "float32")
        s.config(0.0)
        for i in range(5):
            s.data(i * 0.1, (i, 2.0, 3.0), 20.0 + i)
        st = np.zeros(3, dtype=[("a", "<i2"), ("b", "<f8", (2,))])
        st["a"] = [1, 2, 3]
        st["b"][:, 1] = [0.5, 1.5, 2.5]
        w.write_many([0.0, 0.1, 0.2], "struct", st)
    return p


def test_info_cat_export_with_layouts(layout_archive, work):
    p = fo("info", str(layout_archive))
    assert p.returncode == 0, p.err
    assert 'site="lab"' in p.out and "imu/left flavor=left" in p.out and '"model": "x1"' in p.out
    rows = [json.loads(l) for l in fo("cat", str(layout_archive), "-c", "imu/left").out.splitlines()]
    assert [r["values"]["temp"] for r in rows] == [20.0, 21.0, 22.0, 23.0, 24.0]
    assert rows[2]["values"]["accel"] == [2.0, 2.0, 3.0]
    srows = [json.loads(l) for l in fo("cat", str(layout_archive), "-c", "struct").out.splitlines()]
    assert [r["values"]["a"] for r in srows] == [1, 2, 3] and srows[1]["values"]["b"] == [0.0, 1.5]
    d = work / "laycsv"
    assert fo("export", str(layout_archive), "-o", str(d), "--csv").returncode == 0
    st = list(csv.reader((d / "struct.csv").read_text().splitlines()))
    assert st[0] == ["time", "a", "b[0]", "b[1]"] and st[3] == ["0.2", "3", "0.0", "2.5"]
    imu = list(csv.reader((d / "imu_left.csv").read_text().splitlines()))
    assert imu[0] == ["time", "accel[0]", "accel[1]", "accel[2]", "temp"] and len(imu) == 6


def test_record_with_odin_db_types_identifier_only_sets(work):
    sim = Simulator(seed=2, self_describing=False)  # 0x01 identifiers only: no names, no types
    data = burst_encode_many(sim.packets(duration=0.3))
    db = work / "sim.odin.json"
    db.write_text(json.dumps(sim.odin_db()))
    plain_out, typed_out = work / "nodb.fastpack.zst", work / "withdb.fastpack.zst"
    assert fo("record", "-o", str(plain_out), "--stdin", input=data).returncode == 0
    assert fo("record", "-o", str(typed_out), "--stdin", "--odin-db", str(db), input=data).returncode == 0
    raw = json.loads(fo("cat", str(plain_out), "-c", "odin/set/0x????", "-n", "1").out)
    typed = json.loads(fo("cat", str(typed_out), "-c", "odin/set/0x????", "-n", "1").out)
    assert all(k.startswith("0x") for k in raw["values"] if k not in ("timestamp", "sequence"))
    assert any("." in k for k in typed["values"])  # dotted global names from the OdinDB
    bad = work / "bad.odin.json"
    bad.write_text("{not json")
    one_line_error(fo("record", "-o", str(work / "x.fastpack.zst"), "--stdin", "--odin-db", str(bad), input=data), 1)


def test_record_status_line_on_a_tty(work):
    """With stderr on a terminal, record draws a live status line (packets, rate, gaps, CRC)."""
    import pty

    master, slave = pty.openpty()
    out = work / "tty.fastpack.zst"
    e = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([PY, "-m", "fastodin", "record", "-o", str(out), "--udp", "127.0.0.1:0", "--duration", "1.5"],
                         stdout=subprocess.PIPE, stderr=slave, env=e)
    os.close(slave)
    buf = b""
    while True:
        try:
            d = os.read(master, 4096)
        except OSError:
            break
        if not d:
            break
        buf += d
    p.wait(30)
    os.close(master)
    assert p.returncode == 0
    txt = buf.decode(errors="replace")
    assert "rec 0 pkts" in txt and "gaps 0" in txt and "CRC errors 0" in txt


def test_replay_reemits_identifiers(demo):
    path, pk = demo
    p = fo("replay", str(path), "--stdout", "--speed", "0", "--identifier-interval", "0.5")
    assert p.returncode == 0, p.err
    got = burst_decode(p.stdout)
    ident = lambda xs: [x for x in xs if x[0] in (0x01, 0x03, 0x04)]
    assert [x for x in got if x[0] in (0x02, 0x0B)] == [x for x in pk if x[0] in (0x02, 0x0B)]
    assert len(ident(got)) > len(ident(pk))


def test_record_never_overwrites(work):
    out = work / "keep.fastpack.zst"
    out.write_bytes(b"precious")
    line = one_line_error(fo("record", "-o", str(out), "--stdin", input=b""), 3)
    assert "exists" in line and out.read_bytes() == b"precious"
    assert fo("record", "-o", str(out), "--stdin", "--force", input=b"").returncode == 0
    one_line_error(fo("record", "-o", str(work / "p.fastpack.zst"), "--stdin", "--preset", "bogus", input=b""), 2)


def test_record_reports_kernel_drops(work):
    """A stalled recorder with a tiny receive buffer loses datagrams in the kernel: it must say so
    (summary, one-line error, exit 1), never silently."""
    if not os.path.exists("/proc/net/udp"):
        pytest.skip("kernel drop counters need Linux /proc/net/udp")
    pk = Simulator(seed=17).packets(n=3000)
    out = work / "drops.fastpack.zst"
    p, line = _start_recorder("-o", str(out), "--udp", "127.0.0.1:0", "--rcvbuf", "4k")
    port = int(re.search(r":(\d+) ", line).group(1))
    p.send_signal(signal.SIGSTOP)  # the recorder cannot read: the kernel buffer overflows
    try:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.connect(("127.0.0.1", port))
        for x in pk:
            tx.send(x)
        tx.close()
    finally:
        p.send_signal(signal.SIGCONT)
    p.send_signal(signal.SIGTERM)
    so, se = p.communicate(timeout=60)
    assert p.returncode == 1
    assert "kernel dropped" in so.decode()
    err = [l for l in se.decode().splitlines() if "error" in l]
    assert len(err) == 1 and "dropped" in err[0]
    got = len(packets_of(out))
    m = re.search(r"kernel dropped (\d+)", so.decode())
    assert got + int(m.group(1)) == len(pk)  # every datagram is either in the archive or counted


def test_record_serial_over_a_pty(work):
    """--serial with pyserial (optional extra): a pseudo-terminal stands in for the device."""
    pytest.importorskip("serial")
    import pty
    import tty

    pk = Simulator(seed=18).packets(n=800)
    master, slave = pty.openpty()
    tty.setraw(slave)
    dev = os.ttyname(slave)
    out = work / "serial.fastpack.zst"
    p, line = _start_recorder("-o", str(out), "--serial", dev, "--baud", "921600")
    assert "serial" in line, line
    data = burst_encode_many(pk)
    for i in range(0, len(data), 4096):
        os.write(master, data[i:i + 4096])
    # wait (bounded) until the recorder has read everything, then stop it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            import termios

            if termios.tcgetattr(slave) is not None and _pty_pending(slave) == 0:
                break
        except Exception:
            break
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    so, se = p.communicate(timeout=60)
    os.close(master)
    os.close(slave)
    assert p.returncode == 0, se
    assert packets_of(out) == pk


def _pty_pending(fd: int) -> int:
    import fcntl
    import termios

    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, sys.byteorder)
