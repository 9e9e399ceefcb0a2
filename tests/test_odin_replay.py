"""Replay: exact order and bytes, pacing (fake clock, no timing dependence), identifier re-emission."""
from __future__ import annotations

import pytest

from fastodin.errors import UsageError
from fastodin.odin import Simulator, convert_packets, replay, replay_burst, timed_packets
from fastodin.odin.burst import burst_decode, burst_encode_many
from test_odin_golden import SET1_STREAM, golden


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


def test_replay_sources_agree():
    pk = Simulator(seed=2).packets(duration=0.2)
    fp, _ = convert_packets(pk)
    assert list(replay(fp)) == pk
    assert list(replay(pk)) == pk
    assert list(replay(burst_encode_many(pk))) == pk
    assert burst_decode(replay_burst(fp)) == pk
    assert replay_burst(fp) == burst_encode_many(pk)


def test_replay_from_path_and_records(tmp_path):
    pk = [golden(f) for f in SET1_STREAM]
    fp, _ = convert_packets(pk)
    p = tmp_path / "x.fastpack"
    p.write_bytes(fp)
    assert list(replay(str(p))) == pk
    from fastodin.codec import decode as fp_decode
    recs = [(r.time, r.name, r.payload) for r in fp_decode(fp, namespace=True) if r.id]
    assert list(replay(recs)) == pk


def test_pacing_follows_recorded_time():
    pk = [golden(f) for f in SET1_STREAM]
    fp, _ = convert_packets(pk, counts_per_second=1000)   # data at 1.00, 1.01, 1.02, 1.03 s
    fc = FakeClock()
    out = list(replay(fp, speed=2.0, clock=fc.clock, sleep=fc.sleep))
    assert out == pk
    assert sum(fc.sleeps) == pytest.approx((1.045 - 1.0) / 2.0)   # event at 1.045 s is the last


def test_identifier_reemission():
    pk = Simulator(seed=4, identifier_interval=0).packets(duration=1.0)
    n_ident = sum(1 for p in pk if p[0] in (1, 3, 4))
    fp, _ = convert_packets(pk)
    out = list(replay(fp, identifier_interval=0.25))
    assert len(out) > len(pk)
    extra = sum(1 for p in out if p[0] in (1, 3, 4)) - n_ident
    assert extra >= 3 * n_ident
    assert [p for p in out if p[0] not in (1, 3, 4)] == [p for p in pk if p[0] not in (1, 3, 4)]


def test_timed_packets_monotonic_for_packet_lists():
    pk = Simulator(seed=1).packets(n=100)
    times = [t for t, _ in timed_packets(pk)]
    assert times == sorted(times)


def test_bad_speed():
    with pytest.raises(UsageError):
        list(replay([], speed=-1))


def test_bad_identifier_interval_and_bad_source():
    from fastodin.odin import decode
    with pytest.raises(UsageError):
        list(replay([], identifier_interval=0))
    with pytest.raises(UsageError):
        decode(None)
    with pytest.raises(UsageError):
        decode(b"\x00", format="nope")
