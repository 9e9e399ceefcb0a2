"""BURST framing: COBS + CRC16 BE + 0x00; golden stream; resync; vector == scalar."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from fastodin.errors import OdinError
from fastodin.odin.burst import (BurstDecoder, BurstStats, burst_decode, burst_encode, burst_encode_many,
                                 cobs_decode, cobs_encode, _decode_scalar, _decode_vector)
from fastodin.odin.crc import crc16
from test_odin_golden import SET1_STREAM, golden


def test_golden_burst_stream_decodes_to_golden_packets():
    data = golden("burst_framed_stream.bin")
    pk = burst_decode(data)
    assert pk == [golden(f) for f in SET1_STREAM]


def test_encoder_reproduces_golden_stream():
    want = golden("burst_framed_stream.bin")
    pk = [golden(f) for f in SET1_STREAM]
    assert b"".join(burst_encode(p) for p in pk) == want
    assert burst_encode_many(pk) == want
    assert burst_encode_many(pk * 20) == want * 20  # vectorised path


def test_frame_layout():
    p = b"\x0b\x07\x00\x00"
    f = burst_encode(p)
    assert f.endswith(b"\x00") and b"\x00" not in f[:-1]
    assert cobs_decode(f[:-1]) == p + crc16(p).to_bytes(2, "big")


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00", b"\x01" * 253, b"\x01" * 254, b"\x01" * 255,
                                  b"\x01" * 254 + b"\x00", b"\x00" + b"\x02" * 600, bytes(range(256)) * 3])
def test_cobs_round_trip_edges(data):
    enc = cobs_encode(data)
    assert b"\x00" not in enc
    assert cobs_decode(enc) == data


def test_cobs_decode_errors():
    with pytest.raises(OdinError, match="claims"):
        cobs_decode(b"\x05ab")
    with pytest.raises(OdinError, match="0x00"):
        cobs_decode(b"\x02a\x00")


@settings(max_examples=150)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=40))
def test_round_trip_any_split(packets):
    data = burst_encode_many(packets)
    assert data == b"".join(burst_encode(p) for p in packets)
    d = BurstDecoder()
    rng = random.Random(len(data))
    i = 0
    out = []
    while i < len(data):
        j = i + rng.randint(1, 64)
        d.feed(data[i:j])
        out += list(d)
        i = j
    assert out == packets
    assert d.stats.packets == len(packets) and d.stats.crc_errors == 0


def test_resync_after_garbage_and_bad_crc():
    pk = [golden(f) for f in SET1_STREAM]
    frames = [burst_encode(p) for p in pk]
    bad = bytearray(frames[2])
    bad[3] ^= 0x01 if bad[3] != 1 else 0x02
    data = b"\x13\x37garbage\x00" + frames[0] + frames[1] + b"\xff\xfe\x00" + bytes(bad) + b"".join(frames[3:])
    d = BurstDecoder()
    d.feed(data)
    got = list(d)
    assert got == pk[:2] + pk[3:]
    s = d.stats
    assert s.packets == 5
    assert s.crc_errors + s.cobs_errors + s.short_frames == 3  # leading junk, ff fe, flipped frame
    assert s.garbage_bytes > 0
    # junk with no delimiter before a frame takes that frame with it (it ends at the frame's 0x00)
    d2 = BurstDecoder()
    d2.feed(b"junk" + frames[0] + frames[1])
    assert list(d2) == [pk[1]] and d2.stats.crc_errors + d2.stats.cobs_errors == 1


def test_oversize_run_is_discarded_and_counted():
    d = BurstDecoder(max_frame=100)
    d.feed(b"\x01" * 150)
    assert d.stats.oversize == 1 and d.buffered == 0
    d.feed(burst_encode(b"\x0b\x01\x00\x00"))
    assert list(d) == [b"\x0b\x01\x00\x00"]


def test_trailing_partial_frame_counts_as_garbage():
    st_ = BurstStats()
    out = burst_decode(burst_encode(b"abc") + b"\x05\x01", st_)
    assert out == [b"abc"] and st_.garbage_bytes == 2


@settings(max_examples=150)
@given(st.lists(st.binary(max_size=80), min_size=20, max_size=40), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))
def test_vector_decoder_equals_scalar_on_corrupted_streams(packets, flips):
    data = bytearray(burst_encode_many(packets))
    for pos, val in flips:
        data[pos % len(data)] = val
    if not data.endswith(b"\x00"):
        data += b"\x00"
    s1, o1 = BurstStats(), []
    _decode_scalar(bytes(data[:-1]), s1, o1)
    s2, o2 = BurstStats(), []
    _decode_vector(bytes(data), s2, o2)
    assert o1 == o2 and s1 == s2


def test_take_and_iteration_mix():
    d = BurstDecoder()
    d.feed(burst_encode(b"a1") + burst_encode(b"b2"))
    assert next(d) == b"a1"
    assert d.take() == [b"b2"]
    assert list(d) == []


def test_big_feeds_split_mid_frame_equal_one_shot():
    from fastodin.odin import Simulator
    pk = Simulator(seed=3).packets(duration=3.0)
    data = burst_encode_many(pk)
    for step in (70_001, 100_003, 1 << 17):
        d = BurstDecoder()
        got = []
        for i in range(0, len(data), step):
            d.feed(data[i:i + step])
            got += d.take()
        assert got == pk and d.stats.crc_errors == 0 and d.buffered == 0
