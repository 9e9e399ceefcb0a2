"""Issue 8 item 16: a BURST capture whose device clock starts at 600 s (or just before the u32 tick
wrap) was converted with its identifier records at 0.0, and ``replay --speed 1`` sent the identifiers
and then slept 600 s (a 20 s run sent 667 bytes).  Data must flow from the first second.

No test depends on timing: the replay's clock and sleep are fakes that advance instantly."""
from __future__ import annotations

import struct

import pytest

from fastodin.archive import Writer, open_archive
from fastodin.cli import main
from fastodin.cli import replay as cli_replay
from fastodin.codec import decode as fp_decode
from fastodin.metadata import decode_meta
from fastodin.odin import convert_burst, replay
from fastodin.odin.burst import burst_decode, burst_encode_many
from fastodin.odin.mapping import FastPackSink, OdinToFastPack

VEC = "tests/vectors/odin/"
CPS = 1_000_000
WRAP = 1 << 32
STARTS = {"at_600_s": 600 * CPS, "near_the_wrap": WRAP - 5 * CPS}   # the second wraps 5 s into the run


def golden(name):
    with open(VEC + name, "rb") as f:
        return f.read()


def capture(start_ticks, seconds=20.0, rate=10):
    """Identifier, then DATA of set 0x0996 at `rate` Hz from device tick `start_ticks`, and an event."""
    ident, data = golden("01_identifier.bin"), bytearray(golden("02_data_seq0.bin"))
    pk = [ident]
    n = int(seconds * rate)
    for k in range(n):
        struct.pack_into("<IH", data, 4, (start_ticks + k * CPS // rate) % WRAP, k & 0xFFFF)
        pk.append(bytes(data))
    ev = bytearray(golden("04_event.bin"))
    struct.pack_into("<I", ev, 4, (start_ticks + (n - 1) * CPS // rate) % WRAP)
    pk.append(bytes(ev))
    return pk


class FakeTime:
    """Stands for the `time` module of fastodin.cli.replay: sleeping advances the clock at once."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, d):
        self.sleeps.append(d)
        self.now += d


@pytest.mark.parametrize("start", sorted(STARTS))
def test_conversion_stamps_packets_before_the_first_timestamp_with_it(start):
    pk = capture(STARTS[start])
    fp, _ = convert_burst(burst_encode_many(pk))
    recs = list(fp_decode(fp, namespace=True))
    t0 = STARTS[start] / CPS
    assert recs[0].id == 0 and decode_meta(recs[0].payload)["odin"] == "stream"
    assert recs[0].time == t0                                    # not 0.0
    ident = [r for r in recs if r.name == "odin/set/0x0996/identifier"]
    assert [r.time for r in ident] == [t0]
    times = [r.time for r in recs]
    assert times == sorted(times)
    assert times[-1] - times[0] == pytest.approx(19.9)          # across the wrap too
    assert [bytes(r.payload) for r in recs if r.id and r.name.startswith("odin/")] == pk  # byte-identical


def test_a_stream_without_timestamps_keeps_time_zero():
    fp, _ = convert_burst(burst_encode_many([golden("01_identifier.bin")]))
    assert {r.time for r in fp_decode(fp, namespace=True)} == {0.0}


def test_held_packets_are_bounded_by_max_pending():
    sink = FastPackSink()
    conv = OdinToFastPack(sink, max_pending=10)
    for k in range(25):   # identifiers only: no clock, but memory stays bounded
        conv.add(golden("01_identifier.bin")[:-1] + bytes([k]))
    assert len(conv._pending) <= 10
    conv.close()
    assert sum(1 for r in fp_decode(sink.take(), namespace=True) if r.id) == 25


@pytest.mark.parametrize("start", sorted(STARTS))
def test_library_replay_paces_from_the_first_data(start):
    pk = capture(STARTS[start])
    fp, _ = convert_burst(burst_encode_many(pk))
    for src in (fp, burst_encode_many(pk)):
        ft = FakeTime()
        assert list(replay(src, speed=1.0, clock=ft.monotonic, sleep=ft.sleep)) == pk
        assert sum(ft.sleeps) == pytest.approx(19.9) and max(ft.sleeps) < 0.2


def _old_style_archive(path, pk, t0):
    """An archive as converted before the fix: the identifier record at 0.0, data at device time."""
    with Writer(path) as w:
        w.write(0.0, "odin/set/0x0996/identifier", pk[0])
        for k, p in enumerate(pk[1:-1]):
            w.write(t0 + k / 10, "odin/set/0x0996", p)
        w.write(t0 + (len(pk) - 3) / 10, "odin/event/7", pk[-1])


def _cli_replay(monkeypatch, capsysbinary, path):
    ft = FakeTime()
    t_start = ft.now
    sent = []   # (fake seconds since start, bytes)

    def fake_stdout():
        return cli_replay._Stream(lambda b: sent.append((ft.now - t_start, b)), "stdout")

    monkeypatch.setattr(cli_replay, "time", ft)
    monkeypatch.setattr(cli_replay, "_stdout_out", fake_stdout)
    rc = main(["replay", str(path), "--stdout", "--speed", "1", "--quiet"])
    capsysbinary.readouterr()
    return rc, ft, sent


@pytest.mark.parametrize("start", sorted(STARTS))
@pytest.mark.parametrize("source", ["burst_capture", "converted_archive", "archive_converted_before_the_fix"])
def test_cli_replay_sends_data_from_the_first_second(tmp_path, monkeypatch, capsysbinary, start, source):
    pk = capture(STARTS[start])
    burst = tmp_path / "cap.burst"
    burst.write_bytes(burst_encode_many(pk))
    path = burst
    if source == "converted_archive":
        path = tmp_path / "cap.fastpack.zst"
        assert main(["convert", str(burst), str(path)]) == 0
        with open_archive(path) as ar:          # the archive's time range starts with the data
            assert min(r.time for r in ar.records()) == STARTS[start] / CPS
    elif source == "archive_converted_before_the_fix":
        path = tmp_path / "old.fastpack.zst"
        _old_style_archive(str(path), pk, STARTS[start] / CPS)
    capsysbinary.readouterr()
    rc, ft, sent = _cli_replay(monkeypatch, capsysbinary, path)
    assert rc == 0
    assert sum(ft.sleeps) == pytest.approx(19.9, abs=0.05)      # the run's length, not 600 s more
    first_second = burst_decode(b"".join(b for t, b in sent if t <= 1.0))
    assert sum(1 for p in first_second if p[0] == 2) >= 9       # ~10 DATA packets in the first second
    assert burst_decode(b"".join(b for _, b in sent)) == pk     # byte-identical, in order


def test_paced_starts_at_the_first_item_that_may_start_it(monkeypatch):
    ft = FakeTime()
    monkeypatch.setattr(cli_replay, "time", ft)
    items = [(0.0, b"\x01ident"), (600.0, b"\x02data"), (601.0, b"\x02data")]
    list(cli_replay._paced(iter(items), 1.0, starts=lambda b: b[0] == 2))
    assert ft.sleeps == [1.0]
    ft.sleeps.clear()
    list(cli_replay._paced(iter(items), 1.0))                    # no predicate: the first item starts it
    assert ft.sleeps == [600.0, 1.0]
