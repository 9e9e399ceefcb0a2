"""Golden tests for what the command line writes (spec/cli-outputs.md).

Every expected byte string below was written out by hand from the spec's field tables (pcap
headers, IPv4 checksums folded by hand, COBS blocks, FastPack records), not pasted from a run;
CRC-16 values are cross-checked with an independent bitwise implementation in this file.
"""
from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import fastodin
from fastodin.archive import Layout, Writer
from fastodin.cli import main
from fastodin.cli._util import CliError
from fastodin.cli.pcap import PcapError, pcap_time, read_pcap, write_pcap
from fastodin.errors import DataError, FastOdinError

VEC = os.path.join(os.path.dirname(__file__), "vectors", "odin")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# An ODIN EVENT (id 1, tick 1000, sequence 0, empty payload) and an unknown packet type 0x07.
EVENT = bytes.fromhex("0b 01 00 00 e8 03 00 00 00 00")
UNKNOWN = bytes.fromhex("07 01")


def _crc16_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, bit by bit (poly 0x1021, init 0xFFFF, no reflection, no xorout)."""
    c = 0xFFFF
    for x in data:
        c ^= x << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


def _h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "fastodin", *args], capture_output=True, timeout=60, env=env)


def _run(capsys, *args: str):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_golden")
    plain = str(d / "plain.fastpack.zst")
    with Writer(plain, preset="light") as w:
        w.set_tag("site", "lab")
        w.write(0.0, "raw", b"\x01\x02\x03")
        imu = w.create_stream("imu", data=Layout().scalar("temp", "float32").scalar("n", "uint16"))
        imu.set_tag("unit", "C")
        imu.config(0.1)
        imu.data(0.25, 21.5, 7)
        w.write(0.3, "pad", b"\x01\x00")             # payloads ending in NUL bytes (npz must keep them)
        w.write(0.4, "a:b", b"A")                     # "a:b" and "a_b" sanitise to the same table name
        w.write(0.45, "a_b", b"B")
        w.write(0.05, 0, fastodin.encode_meta({"user": 1}))
        w.write(0.5, "raw", b"\xff")
        w.write(0.6, "pad", b"\x02\x00\x00")
        imu.data(0.75, -1.0, 8)
        imu.data(1.0, float("nan"), 9)

    from fastodin.odin.mapping import OdinToFastPack, WriterSink
    from fastodin.odin.odindb import load_odin_db

    ev = str(d / "ev.fastpack.zst")
    with Writer(ev) as w:
        c = OdinToFastPack(WriterSink(w))
        c.add_many([EVENT, UNKNOWN])
        c.close()
    golden = str(d / "golden.fastpack.zst")
    pk = [open(os.path.join(VEC, f), "rb").read() for f in ("01_identifier.bin", "02_data_seq0.bin", "04_event.bin")]
    pk.append(bytes.fromhex("0b 02 00 00 4c 04 00 00 00 00 61 62"))   # event 2, payload "ab" (printable)
    with Writer(golden) as w:
        c = OdinToFastPack(WriterSink(w), odin_db=load_odin_db(os.path.join(VEC, "golden_od.odin.json")))
        c.add_many(pk)
        c.close()
    return {"dir": d, "plain": plain, "ev": ev, "golden": golden, "golden_packets": pk}


# -- §1 pcap ---------------------------------------------------------------------------------------

PCAP_GLOBAL = "d4c3b2a1 0200 0400 00000000 00000000 ffff0000 65000000"


def test_write_pcap_bytes_by_hand():
    got = write_pcap([(1.5, b"\x0b\x01"), (2.000001, EVENT)], port=9000)
    want = _h(
        PCAP_GLOBAL
        # record 1: 1 s + 500000 us (0x0007A120), 30 bytes
        + "01000000 20a10700 1e000000 1e000000"
        # IPv4: 45 00, len 0x001e, id 1, DF, ttl 64, udp, checksum 0x3ccc, 127.0.0.1 -> 127.0.0.1
        + "4500 001e 0001 4000 40 11 3ccc 7f000001 7f000001"
        + "2328 2328 000a 0000" + "0b01"            # UDP 9000 -> 9000, len 10, no checksum
        # record 2: 2 s + 1 us, 38 bytes
        + "02000000 01000000 26000000 26000000"
        + "4500 0026 0002 4000 40 11 3cc3 7f000001 7f000001"
        + "2328 2328 0012 0000" + EVENT.hex()
    )
    assert got == want
    pk, st = read_pcap(got, port=9000)
    assert pk == [(1.5, b"\x0b\x01"), (2.000001, EVENT)] and st["udp"] == 2


def test_pcap_ipv4_checksum_and_identification():
    items = [(0.0, bytes(n)) for n in (0, 1, 7, 1000)] + [(0.0, b"x")] * 65533
    data = write_pcap(items)
    pos, k, idents = 24, 0, []
    while pos < len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        ip = data[pos + 16: pos + 36]
        s = sum(struct.unpack("!10H", ip))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        assert s == 0xFFFF                              # RFC 791: the folded sum over the header
        idents.append(struct.unpack_from("!H", ip, 4)[0])
        assert incl == 28 + len(items[k][1]) == struct.unpack_from("!H", ip, 2)[0]
        pos += 16 + incl
        k += 1
    assert k == 65537 and idents[:3] == [1, 2, 3] and idents[-3:] == [65535, 0, 1]   # wraps 65535 -> 0


@pytest.mark.parametrize("t, want", [
    (0.0, (0, 0)), (-0.0, (0, 0)), (-5.0, (0, 0)), (float("nan"), (0, 0)),
    (1.5, (1, 500000)), (2.9999996, (3, 0)), (1e-6, (0, 1)),
    (4294967295.25, (4294967295, 250000)),
    (4294967296.0, (0xFFFFFFFF, 999999)), (float("inf"), (0xFFFFFFFF, 999999)),
])
def test_pcap_time(t, want):
    assert pcap_time(t) == want


def test_pcap_error_is_a_data_error():
    with pytest.raises(PcapError) as ei:
        write_pcap([(0.0, bytes(65508))])            # 20 + 8 + 65508 > 65535
    assert isinstance(ei.value, DataError) and isinstance(ei.value, ValueError)
    assert isinstance(ei.value, FastOdinError)
    assert len(write_pcap([(0.0, bytes(65507))])) == 24 + 16 + 65535


def test_convert_archive_to_pcap_by_hand(files, capsys):
    out = str(files["dir"] / "ev.pcap")
    rc, _, _ = _run(capsys, "convert", files["ev"], out, "--port", "5000")
    assert rc == 0
    want = _h(
        PCAP_GLOBAL
        + "00000000 e8030000 26000000 26000000"         # time 0.001 s = 1000 us
        + "4500 0026 0001 4000 40 11 3cc4 7f000001 7f000001"
        + "1388 1388 0012 0000" + EVENT.hex()
        + "00000000 e8030000 1e000000 1e000000"         # unknown packet: the time before it
        + "4500 001e 0002 4000 40 11 3ccb 7f000001 7f000001"
        + "1388 1388 000a 0000" + UNKNOWN.hex()
    )
    assert open(out, "rb").read() == want


def test_pcap_errors_exit_1_one_line(files, capsys):
    big = str(files["dir"] / "big.fastpack.zst")
    from fastodin.odin.mapping import OdinToFastPack, WriterSink

    with Writer(big) as w:
        c = OdinToFastPack(WriterSink(w))
        c.add_many([EVENT + bytes(65500)])
        c.close()
    rc, out, err = _run(capsys, "convert", big, str(files["dir"] / "big.pcap"))
    assert rc == 1 and err.count("\n") == 1 and "PcapError" in err and "UDP datagram" in err
    ng = files["dir"] / "x.pcapng"
    ng.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(60))
    rc, out, err = _run(capsys, "convert", str(ng), str(files["dir"] / "x.fastpack.zst"))
    assert rc == 1 and err.count("\n") == 1 and "pcapng is not supported" in err


# -- §2 / §3 BURST and replay -------------------------------------------------------------------

EVENT_FRAME = "03 0b01 01 03 e803 01 01 01 03 9936 00"    # COBS(EVENT || 99 36) || 00
UNKNOWN_FRAME = "05 0701 94b9 00"                          # COBS(07 01 94 b9) || 00


def test_burst_crc_values():
    assert _crc16_bitwise(b"123456789") == 0x29B1
    assert _crc16_bitwise(EVENT) == 0x9936 and _crc16_bitwise(UNKNOWN) == 0x94B9


def test_convert_and_replay_burst_by_hand(files, capsys):
    want = _h(EVENT_FRAME + UNKNOWN_FRAME)
    out = str(files["dir"] / "ev.burst")
    rc, _, _ = _run(capsys, "convert", files["ev"], out)
    assert rc == 0 and open(out, "rb").read() == want
    p = _cli("replay", files["ev"], "--stdout", "--speed", "0", "--quiet")
    assert p.returncode == 0 and p.stdout == want
    # a BURST file, paced (one frame per write): the same bytes
    p = _cli("replay", out, "--stdout", "--speed", "1000", "--quiet")
    assert p.returncode == 0 and p.stdout == want
    p = _cli("replay", out, "--stdout", "--speed", "0", "-q", "--start", "0.0005", "--end", "0.001")
    assert p.returncode == 0 and p.stdout == b""        # both packets are at 0.001 s
    rc, _, err = _run(capsys, "replay", out, "--stdout", "--channel", "odin/*")
    assert rc == 2 and "no channels" in err


def test_replay_fastpack_by_hand(files):
    p = _cli("replay", files["plain"], "--stdout", "--format", "fastpack", "--channel", "raw", "--speed", "0",
             "-q")
    assert p.returncode == 0, p.stderr
    want = _h(
        "0000000000000000 01000000 03000000 726177 0000000000"     # definition: id 1 = "raw"
        "0000000000000000 01000000 03000000 010203 0000000000"     # t 0.0, 01 02 03
        "000000000000e03f 01000000 01000000 ff 00000000000000"     # t 0.5 (0x3FE0000000000000), ff
    )
    assert p.stdout == want


def test_replay_odin_on_a_byte_stream_is_usage(files, capsys):
    rc, _, err = _run(capsys, "replay", files["ev"], "--stdout", "--format", "odin")
    assert rc == 2 and err.count("\n") == 1


def test_paced_replay_sends_before_it_waits(monkeypatch):
    """A paced byte-stream replay must not hold due bytes in its 64 KiB buffer while it sleeps
    (it did: a slow stream reached the receiver only when the buffer filled)."""
    from fastodin.cli import replay as rp

    log = []

    class FakeTime:                                     # no real clock: the test never depends on timing
        now = 100.0

        @staticmethod
        def monotonic():
            return FakeTime.now

        @staticmethod
        def sleep(d):
            log.append(("sleep", d))
            FakeTime.now += d

    monkeypatch.setattr(rp, "time", FakeTime)
    written = []
    out = rp._Stream(lambda b: (written.append(b), log.append(("write", b))), "test", push=lambda: log.append("push"))
    for _, p in rp._paced(iter([(0.0, b"a"), (0.0, b"b"), (1.0, b"c")]), 2.0, out.push):
        out.packet(p)
    out.close()
    assert log == [("write", b"ab"), "push", ("sleep", 0.5), ("write", b"c")]
    log.clear()
    out = rp._Stream(lambda b: log.append(("write", b)), "test")
    for _ in rp._push_between(iter([(0.0, b"x"), (0.0, b"y")]), out):
        out.packet(_[1])
        log.append("next")
    assert log == ["next", ("write", b"x"), "next", ("write", b"y")]


# -- §4 cat --------------------------------------------------------------------------------------

PLAIN_JSONL = """\
{"t":0.0,"channel":"raw","hex":"010203"}
{"t":0.05,"channel":"0","meta":{"user":1}}
{"t":0.1,"channel":"imu:config","hex":""}
{"t":0.25,"channel":"imu","values":{"temp":21.5,"n":7}}
{"t":0.3,"channel":"pad","hex":"0100"}
{"t":0.4,"channel":"a:b","hex":"41"}
{"t":0.45,"channel":"a_b","hex":"42"}
{"t":0.5,"channel":"raw","hex":"ff"}
{"t":0.6,"channel":"pad","hex":"020000"}
{"t":0.75,"channel":"imu","values":{"temp":-1.0,"n":8}}
{"t":1.0,"channel":"imu","values":{"temp":"nan","n":9}}
"""


def test_cat_jsonl(files, capsys):
    rc, out, _ = _run(capsys, "cat", files["plain"], "--order", "time")
    assert rc == 0 and out == PLAIN_JSONL
    for line in out.splitlines():
        d = json.loads(line)
        assert list(d)[:2] == ["t", "channel"] and len(d) == 3 and list(d)[2] in ("hex", "meta", "values")


def test_cat_csv_and_hex(files, capsys):
    rc, out, _ = _run(capsys, "cat", files["plain"], "--channel", "imu", "--format", "csv")
    assert rc == 0 and out == "time,channel,temp,n,hex\n0.25,imu,21.5,7,\n0.75,imu,-1.0,8,\n1.0,imu,nan,9,\n"
    rc, out, _ = _run(capsys, "cat", files["plain"], "--format", "csv", "--order", "time")
    # several channels: the union of their value columns (fixed before the first row), then meta, hex
    assert rc == 0 and out == (
        "time,channel,temp,n,meta,hex\n"
        "0.0,raw,,,,010203\n"
        '0.05,0,,,"{""user"":1}",\n'
        "0.1,imu:config,,,,\n"
        "0.25,imu,21.5,7,,\n"
        "0.3,pad,,,,0100\n"
        "0.4,a:b,,,,41\n"
        "0.45,a_b,,,,42\n"
        "0.5,raw,,,,ff\n"
        "0.6,pad,,,,020000\n"
        "0.75,imu,-1.0,8,,\n"
        "1.0,imu,nan,9,,\n")
    rc, out, _ = _run(capsys, "cat", files["plain"], "--format", "csv", "--raw", "--channel", "imu")
    assert out == "time,channel,hex\n0.25,imu,0000ac410700\n0.75,imu,000080bf0800\n1.0,imu,0000c07f0900\n"
    rc, out, _ = _run(capsys, "cat", files["plain"], "--channel", "raw", "--format", "hex")
    assert rc == 0 and out == "0.0\traw\t3\t010203\n0.5\traw\t1\tff\n"
    rc, out, _ = _run(capsys, "cat", files["plain"], "--channel", "imu:config", "--format", "hex")
    assert out == "0.1\timu:config\t0\t\n"
    rc, out, _ = _run(capsys, "cat", files["plain"], "--channel", "nothing*", "--format", "csv")
    assert rc == 2


def test_cat_odin_values(files, capsys):
    rc, out, _ = _run(capsys, "cat", files["golden"], "--channel", "odin/set/0x0996", "--channel", "odin/event/*")
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines[0] == {"t": 0.001, "channel": "odin/set/0x0996", "values": {
        "timestamp": 1000, "sequence": 0, "sensors.temperature": 21.5, "sensors.pressure": 1013.25,
        "sensors.counter": 1000, "sensors.offset": -5, "system.uptime_ms": 60000,
        "system.voltage": 3.3, "system.axis[0]": -1, "system.axis[1]": 100,
        "system.error_code": -2147483648}}
    # float32 in its own shortest form (reads back as the same float32), not float64's 3.299999952316284
    assert '"system.voltage":3.3,' in out.splitlines()[0]
    ev = files["golden_packets"][2]
    assert lines[1]["channel"].startswith("odin/event/")
    assert lines[1]["values"]["payload"] == ev[10:].hex()        # opaque bytes: always hex
    assert lines[2] == {"t": 0.0011, "channel": "odin/event/2",
                        "values": {"event_id": 2, "timestamp": 1100, "sequence": 0, "payload": "6162"}}
    rc, out, _ = _run(capsys, "cat", files["golden"], "--channel", "odin/set/0x0996", "--format", "hex")
    assert out == f"0.001\todin/set/0x0996\t42\t{files['golden_packets'][1].hex()}\n"


def test_cat_non_utf8_channel_name(files, capsys):
    path = files["dir"] / "nu.fastpack"
    enc = fastodin.Encoder(namespace=True)
    enc.add(0.0, b"imu\xff".decode("utf-8", "surrogateescape"), b"\x01")
    path.write_bytes(enc.take())
    want = {"jsonl": '{"t":0.0,"channel":"imu\\\\xff","hex":"01"}\n',
            "csv": "time,channel,hex\n0.0,imu\\xff,01\n",
            "hex": "0.0\timu\\xff\t1\t01\n"}
    for fmt, w in want.items():
        rc, out, err = _run(capsys, "cat", str(path), "--format", fmt)
        assert (rc, out) == (0, w), err


def test_cat_csv_across_odin_sets_and_events(files, capsys):
    """Several channel types in one csv: the union of their columns, every value in its own column
    (no JSON object of values in a cell); it reads back into pandas with the jsonl values."""
    pd = pytest.importorskip("pandas")
    rc, out, _ = _run(capsys, "cat", files["golden"], "--format", "csv", "--channel", "odin/set/0x0996",
                      "--channel", "odin/event/*")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == ("time,channel,timestamp,sequence,sensors.temperature,sensors.pressure,sensors.counter,"
                        "sensors.offset,system.uptime_ms,system.voltage,system.axis[0],system.axis[1],"
                        "system.error_code,event_id,payload,hex")
    assert lines[1] == "0.001,odin/set/0x0996,1000,0,21.5,1013.25,1000,-5,60000,3.3,-1,100,-2147483648,,,"
    assert lines[3] == "0.0011,odin/event/2,1100,0,,,,,,,,,,2,6162,"
    df = pd.read_csv(io.StringIO(out), dtype={"hex": str, "payload": str})
    rc, jl, _ = _run(capsys, "cat", files["golden"], "--channel", "odin/set/0x0996", "--channel", "odin/event/*")
    for (_, row), line in zip(df.iterrows(), jl.splitlines()):
        want = json.loads(line)
        assert row["channel"] == want["channel"] and row["time"] == want["t"]
        for k, v in want["values"].items():
            assert row[k] == v, (k, row[k], v)
    # the whole file: metadata goes in `meta`, identifier/type packets (untyped) in `hex`
    rc, out, _ = _run(capsys, "cat", files["golden"], "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    head = rows[0]
    assert head[:2] == ["time", "channel"] and head[-2:] == ["meta", "hex"]
    by = {r[1]: r for r in rows[1:]}
    assert by["odin/set/0x0996/identifier"][-1] == files["golden_packets"][0].hex()
    assert json.loads(by["0"][head.index("meta")])["odin"] in ("stream", "set", "report")
    assert all(len(r) == len(head) for r in rows)


def test_cat_csv_value_named_like_a_fixed_column(tmp_path, capsys):
    p = str(tmp_path / "clash.fastpack.zst")
    with Writer(p) as w:
        w.define_channel("x", Layout().scalar("time", "float64").scalar("hex", "uint8"))
        w.write(0.5, "x", struct.pack("<dB", 7.25, 3))
    rc, out, _ = _run(capsys, "cat", p, "--format", "csv", "--channel", "x")
    assert (rc, out) == (0, "time,channel,values.time,values.hex,hex\n0.5,x,7.25,3,\n")


# -- issue 8 item 24: output nits ------------------------------------------------------------------

def test_plurals_in_summaries(tmp_path, capsys):
    one = str(tmp_path / "one.fastpack.zst")
    with Writer(one) as w:
        w.write(0.5, "x", b"\x01")
    rc, out, _ = _run(capsys, "info", one)
    assert "1 frame," in out and "1 frames" not in out and "in 1 channel\n" in out
    rc, out, _ = _run(capsys, "verify", one)
    assert out.endswith("1 frame, 1 record checked)\n")
    rc, out, _ = _run(capsys, "export", one, "-o", str(tmp_path / "e"), "--csv")
    assert out.startswith("exported 1 table (1 row) -> ") and "(1 file, " in out and "x: 1 row x 2 columns" in out
    rc, out, _ = _run(capsys, "recover", one, str(tmp_path / "r.fastpack.zst"))
    assert out.startswith("saved: 1 record in 1 frame -> ") and "lost:  0 records in 0 frames (0 damaged regions)" in out
    rc, out, _ = _run(capsys, "convert", one, str(tmp_path / "one.fastpack"))
    assert ": 1 record, " in out
    nan = tmp_path / "nan.fastpack"
    nan.write_bytes(fastodin.encode([(0.0, "x", b""), (float("nan"), "x", b"")], namespace=True))
    rc, out, _ = _run(capsys, "verify", str(nan))
    assert rc == 1 and "1 record with a NaN time" in out and "NOT SOUND (1 problem):" in out
    from fastodin.archive.recover import RecoveryReport

    r = RecoveryReport()
    r.records_saved, r.frames_saved = 1, 1
    assert str(r) == "saved 1 record in 1 frame; lost 0 records in 0 regions"


def test_info_shows_unix_time_tags_as_iso(tmp_path, capsys):
    p = str(tmp_path / "t.fastpack.zst")
    with Writer(p) as w:
        w.set_tag("started_unix", 1712345678.5)
        w.write(0.0, "x", b"")
    rc, out, _ = _run(capsys, "info", p)
    assert "started_unix=1712345678.5 (2024-04-05T19:34:38.500Z)" in out
    rc, out, _ = _run(capsys, "info", p, "--json")
    assert json.loads(out)["tags"]["started_unix"] == 1712345678.5       # JSON keeps the number


def test_float32_printed_as_float32(tmp_path, capsys):
    p = str(tmp_path / "f.fastpack.zst")
    vals = np.array([0.1, 3.3, 1e-8, 16777217.0, float("inf")], np.float32)
    with Writer(p) as w:
        w.define_channel("f", Layout().scalar("v", "float32").array("a", "float32", (2,)))
        for k, v in enumerate(vals):
            w.write(k * 0.5, "f", struct.pack("<3f", v, v, -v))
    rc, out, _ = _run(capsys, "cat", p)
    got = [json.loads(x)["values"] for x in out.splitlines()]
    assert out.splitlines()[0] == '{"t":0.0,"channel":"f","values":{"v":0.1,"a":[0.1,-0.1]}}'
    assert [g["v"] for g in got] == [0.1, 3.3, 1e-08, 16777216.0, "inf"]
    assert all(np.float32(g["v"]) == v for g, v in zip(got, vals))          # the same float32, bit for bit
    rc, out, _ = _run(capsys, "cat", p, "--format", "csv")
    assert out.splitlines()[:3] == ["time,channel,v,a,hex", '0.0,f,0.1,"[0.1,-0.1]",', '0.5,f,3.3,"[3.3,-3.3]",']
    rc, _, _ = _run(capsys, "export", p, "-o", str(tmp_path / "csv"), "--csv")
    assert (tmp_path / "csv" / "f.csv").read_text().splitlines()[:3] == ["time,v,a[0],a[1]", "0.0,0.1,0.1,-0.1",
                                                                        "0.5,3.3,3.3,-3.3"]


def test_odin_set_ids_match_whatever_the_case(tmp_path, capsys):
    p = str(tmp_path / "g.fastpack.zst")
    with Writer(p) as w:
        w.write(0.0, "odin/set/0xBEEF", b"\x01")      # as fastodin names them
        w.write(0.1, "odin/set/0xabcd", b"\x02")      # as a foreign tool might
        w.write(0.2, "imu", b"\x03")
    for glob, want in (("odin/set/0xbeef", "0.0"), ("odin/set/0xBEEF", "0.0"), ("odin/set/0xABCD", "0.1"),
                       ("odin/set/0xAbCd", "0.1"), ("*0XBE*", "0.0")):
        rc, out, _ = _run(capsys, "cat", p, "--format", "hex", "--channel", glob)
        assert rc == 0 and out.split("\t")[0] == want, glob
    rc, _, err = _run(capsys, "cat", p, "--channel", "IMU")     # other names stay case-sensitive
    assert rc == 2 and "no channel matches IMU" in err
    with fastodin.open(p) as ar:
        assert ar.channel_ids("odin/set/0xbeef") == ar.channel_ids("odin/set/0xBEEF") != set()


# -- §5 export -----------------------------------------------------------------------------------

def test_export_csv(files, capsys):
    out = files["dir"] / "csv"
    rc, _, _ = _run(capsys, "export", files["plain"], "-o", str(out), "--csv")
    assert rc == 0
    assert sorted(os.listdir(out)) == ["a_b-2.csv", "a_b.csv", "imu.csv", "imu_config.csv", "pad.csv", "raw.csv"]
    assert (out / "imu.csv").read_text() == "time,temp,n\n0.25,21.5,7\n0.75,-1.0,8\n1.0,nan,9\n"
    assert (out / "pad.csv").read_text() == "time,payload\n0.3,0100\n0.6,020000\n"
    assert (out / "a_b.csv").read_text() == "time,payload\n0.4,41\n"        # "a:b" (lower id) keeps the name
    assert (out / "a_b-2.csv").read_text() == "time,payload\n0.45,42\n"
    out = files["dir"] / "gcsv"
    db = os.path.join(VEC, "golden_od.odin.json")     # export decodes the packets again: 0x01-only sets need it
    rc, _, _ = _run(capsys, "export", files["golden"], "-o", str(out), "--csv", "--odin-db", db)
    head = (out / "set_0x0996.csv").read_text().splitlines()
    assert head[0].split(",")[:5] == ["timestamp", "ticks", "time", "sequence", "sensors.temperature"]
    assert head[1].split(",")[:5] == ["1000", "1000", "0.001", "0", "21.5"]


def test_export_npz(files, capsys):
    out = str(files["dir"] / "x.npz")
    rc, _, _ = _run(capsys, "export", files["plain"], "-o", out, "--npz")
    assert rc == 0
    z = np.load(out)                                   # no pickles needed
    assert z["pad/payload"].dtype == np.uint8 and z["pad/payload"].tolist() == [[1, 0, 0], [2, 0, 0]]
    assert z["pad/payload.length"].dtype == np.int64 and z["pad/payload.length"].tolist() == [2, 3]
    rows = [z["pad/payload"][k, :n].tobytes() for k, n in enumerate(z["pad/payload.length"])]
    assert rows == [b"\x01\x00", b"\x02\x00\x00"]      # trailing NULs kept (numpy S would drop them)
    assert z["imu/temp"].dtype == np.float32 and z["imu/n"].dtype == np.uint16
    assert z["imu/time"].dtype == np.float64 and z["imu/time"].tolist() == [0.25, 0.75, 1.0]
    out = str(files["dir"] / "g.npz")
    rc, _, _ = _run(capsys, "export", files["golden"], "-o", out, "--npz", "--odin-db",
                    os.path.join(VEC, "golden_od.odin.json"))
    z = np.load(out)
    assert {k: str(z[k].dtype) for k in z.files if k.startswith("set_0x0996/")} == {
        "set_0x0996/timestamp": "uint32", "set_0x0996/ticks": "int64", "set_0x0996/time": "float64",
        "set_0x0996/sequence": "uint16", "set_0x0996/sensors.temperature": "float32",
        "set_0x0996/sensors.pressure": "float32", "set_0x0996/sensors.counter": "uint32",
        "set_0x0996/sensors.offset": "int32", "set_0x0996/system.uptime_ms": "uint32",
        "set_0x0996/system.voltage": "float32", "set_0x0996/system.axis[0]": "int16",
        "set_0x0996/system.axis[1]": "int16", "set_0x0996/system.error_code": "int32"}
    eid = files["golden_packets"][2][1] | (files["golden_packets"][2][2] << 8)
    ev = [k for k in z.files if k.startswith(f"event_{eid}/")]
    assert sorted(ev) == sorted(f"event_{eid}/{c}" for c in
                                ("timestamp", "ticks", "time", "sequence", "payload", "payload.length"))
    n = int(z[f"event_{eid}/payload.length"][0])
    assert z[f"event_{eid}/payload"][0, :n].tobytes() == files["golden_packets"][2][10:]


def test_export_selection_keeps_definitions(files, capsys):
    """--start after the identifier packets, or --channel naming only the data channel, must still
    decode the set (both gave raw `unresolved_0x0996` tables)."""
    db = os.path.join(VEC, "golden_od.odin.json")
    for extra in (["--start", "0.0005"], ["--channel", "odin/set/0x0996"]):
        out = str(files["dir"] / ("sel-%s.npz" % extra[0].strip("-")))
        rc, _, _ = _run(capsys, "export", files["golden"], "-o", out, "--npz", "--odin-db", db, *extra)
        z = np.load(out)
        assert rc == 0 and not [k for k in z.files if k.startswith("unresolved_")]
        assert z["set_0x0996/sensors.temperature"].tolist() == [21.5]
        assert z["set_0x0996/system.axis[1]"].tolist() == [100]


def test_export_parquet(files, capsys):
    pq = pytest.importorskip("pyarrow.parquet")        # optional extra
    out = files["dir"] / "pq"
    rc, _, _ = _run(capsys, "export", files["plain"], "-o", str(out), "--parquet")
    assert rc == 0
    t = pq.read_table(str(out / "pad.parquet"))
    assert t.column_names == ["time", "payload"] and str(t.schema.field("payload").type) == "binary"
    assert t.column("payload").to_pylist() == [b"\x01\x00", b"\x02\x00\x00"]
    t = pq.read_table(str(out / "imu.parquet"))
    assert [str(f.type) for f in t.schema] == ["double", "float", "uint16"]


# -- §6 --json ------------------------------------------------------------------------------------

INFO_KEYS = {"path", "format", "complete", "size", "tags", "streams", "channels", "records", "time", "frames",
             "uncompressed_bytes", "compressed_bytes", "compression_ratio", "preset", "damage", "notes"}
CHANNEL_KEYS = {"id", "count", "bytes", "first", "last", "rate", "frames", "stream", "role", "layout"}


def test_info_json(files):
    p = _cli("info", files["plain"], "--json")
    assert p.returncode == 0 and p.stdout.endswith(b"}\n")
    d = json.loads(p.stdout)
    assert set(d) == INFO_KEYS
    assert d["format"] == "archive" and d["complete"] is True and d["tags"] == {"site": "lab"}
    assert d["records"] == 11 and d["time"] == [0.0, 1.0] and d["preset"] == "light"
    assert d["damage"] == [] and isinstance(d["size"], int) and isinstance(d["compression_ratio"], float)
    for c in d["channels"].values():
        assert set(c) == CHANNEL_KEYS
    raw = d["channels"]["raw"]
    assert (raw["count"], raw["bytes"], raw["first"], raw["last"], raw["rate"]) == (2, 4, 0.0, 0.5, 2.0)
    assert raw["stream"] is None and raw["layout"] is None
    assert d["channels"]["0"]["id"] == 0
    imu = d["channels"]["imu"]
    assert (imu["stream"], imu["role"], imu["layout"]["itemsize"]) == ("imu", "data", 6)
    s = d["streams"]["imu"]
    assert set(s) == {"name", "flavor", "tags", "compression", "channels", "count"}
    assert s["tags"] == {"unit": "C"} and s["channels"] == {"data": "imu", "config": "imu:config"} and s["count"] == 4


def test_info_json_odin(files, capsys):
    rc, out, _ = _run(capsys, "info", files["golden"], "--json")
    d = json.loads(out)
    assert set(d) == INFO_KEYS | {"odin"}
    o = d["odin"]
    assert {"stats", "sets", "source", "crc_errors", "sequence_totals", "counts_per_second"} <= set(o)
    assert o["crc_errors"] == 0 and o["sequence_totals"] == {"gaps": 0, "lost": 0, "duplicates": 0, "late": 0}
    assert o["stats"]["packets"] == 4 and o["sets"]["0x0996"]["packet_size"] == 42


def test_verify_and_recover_json(files, capsys):
    rc, out, _ = _run(capsys, "verify", files["plain"], "--json")
    d = json.loads(out)
    assert rc == 0 and d["sound"] is True
    assert set(d) == {"path", "format", "sound", "problems", "warnings", "frames", "frames_ok", "records", "size",
                      "complete"}
    rc, out, _ = _run(capsys, "recover", files["plain"], str(files["dir"] / "rec.fastpack.zst"), "--json")
    d = json.loads(out)
    assert rc == 0 and set(d) == {"frames_saved", "frames_lost", "records_saved", "records_lost", "lost", "output"}
    assert d["lost"] == [] and d["records_lost"] == 0


# -- §7 archives written by convert ---------------------------------------------------------------

def test_convert_to_archive_keeps_streams(files, capsys):
    for src in (files["plain"], None):
        if src is None:                                 # raw .fastpack input too
            src = str(files["dir"] / "plain.fastpack")
            assert _run(capsys, "convert", files["plain"], src)[0] == 0
        out = str(files["dir"] / ("conv-%d.fastpack.zst" % len(os.listdir(files["dir"]))))
        assert _run(capsys, "convert", src, out)[0] == 0
        rc, got, _ = _run(capsys, "cat", out, "--order", "time")
        assert got == PLAIN_JSONL
        with fastodin.open(out) as ar:
            assert ar.info()["streams"]["imu"]["tags"] == {"unit": "C"} and ar.tags == {"site": "lab"}


def test_convert_nan_time_to_archive_is_a_data_error(files, capsys):
    src = files["dir"] / "nan.fastpack"
    src.write_bytes(fastodin.encode([(0.0, "a", b"1"), (float("nan"), "a", b"2")], namespace=True))
    out = files["dir"] / "nan.fastpack.zst"
    rc, _, err = _run(capsys, "convert", str(src), str(out))
    assert rc == 1 and err.count("\n") == 1 and "record 1" in err and "NaN" in err
    assert not out.exists()                             # no half-written archive left behind


def test_record_fastpack_stdin_applies_writer_metadata(files, capsys):
    """A raw stream made from an archive (its `{"fastodin": ...}` records) records into an archive
    with the same streams and typed records (it used to stop at once with exit 2)."""
    src = str(files["dir"] / "rec-src.fastpack")
    assert _run(capsys, "convert", files["plain"], src)[0] == 0
    out = str(files["dir"] / "rec-out.fastpack.zst")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(src, "rb") as f:
        p = subprocess.run([sys.executable, "-m", "fastodin", "record", "-o", out, "--stdin", "--fastpack", "-q"],
                           stdin=f, capture_output=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    rc, got, _ = _run(capsys, "cat", out, "--order", "time")
    assert got == PLAIN_JSONL
    with fastodin.open(out) as ar:
        assert ar.tags["site"] == "lab" and ar.tags["recorded_by"] == "fastodin record"
        assert ar.info()["streams"]["imu"]["tags"] == {"unit": "C"}


# -- §8 exit codes ---------------------------------------------------------------------------------

def test_exit_codes_and_error_classes(files, capsys):
    from fastodin.cli import _util

    assert (_util.EXIT_OK, _util.EXIT_DATA, _util.EXIT_USAGE, _util.EXIT_IO, _util.EXIT_DEP,
            _util.EXIT_INTERRUPT) == (0, 1, 2, 3, 4, 130)
    assert issubclass(CliError, FastOdinError) and not issubclass(CliError, ValueError)
    rc, _, err = _run(capsys, "cat", str(files["dir"] / "missing.fastpack.zst"))
    assert rc == 3 and err.startswith("fastodin cat: error: no such file") and err.count("\n") == 1
    junk = files["dir"] / "junk.bin"
    junk.write_bytes(b"hello, not ours\n" * 3)
    rc, _, err = _run(capsys, "info", str(junk))
    assert rc == 1 and err.count("\n") == 1
