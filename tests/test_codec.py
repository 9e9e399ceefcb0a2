"""Property and error-path tests of the FastPack codec (fastodin.codec)."""
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastodin import encode_meta
from fastodin.codec import DEFAULT_MAX_RECORD_SIZE, HEADER, Decoder, Encoder, decode, encode, record_size
from fastodin.errors import DataError, ExtraData, FastOdinError, LimitError, TruncatedError, UsageError

time_bits = st.integers(min_value=0, max_value=2**64 - 1)
names = st.sampled_from(["a", "b", "imu/accel", "température", "x" * 40, "7"])
payloads = st.binary(max_size=70)


def as_time(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def bits_of(t):
    return struct.unpack("<Q", struct.pack("<d", t))[0]


plain_records = st.lists(
    st.tuples(time_bits, st.integers(min_value=0, max_value=2**32 - 1), payloads), max_size=40
)
named_records = st.lists(st.tuples(time_bits, names, payloads), max_size=40)


def feed_in_chunks(dec, data, cuts):
    out = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in zip(points, points[1:]):
        dec.feed(data[a:b])
        out.extend(dec)
    return out


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(plain_records, st.lists(st.integers(min_value=0, max_value=10**6), max_size=12))
def test_plain_round_trip_any_chunking(recs, cuts):
    data = encode([(as_time(t), i, p) for t, i, p in recs])
    assert len(data) == sum(record_size(len(p)) for _, _, p in recs)
    one_shot = decode(data)
    chunked = feed_in_chunks(Decoder(), data, cuts)
    for got in (one_shot, chunked):
        assert [(bits_of(r.time), r.id, bytes(r.payload), r.name) for r in got] == [
            (t, i, p, None) for t, i, p in recs
        ]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(named_records, st.lists(st.integers(min_value=0, max_value=10**6), max_size=12))
def test_named_round_trip_any_chunking(recs, cuts):
    data = encode([(as_time(t), n, p) for t, n, p in recs], namespace=True)
    want = [(t, n, p) for t, n, p in recs]
    for got in (decode(data, namespace=True), feed_in_chunks(Decoder(namespace=True), data, cuts)):
        assert [(bits_of(r.time), r.name, bytes(r.payload)) for r in got] == want
    # each distinct name is defined exactly once, right before its first use
    raw = decode(data)
    distinct = list(dict.fromkeys(n for _, n, _ in recs))
    assert len(raw) == len(recs) + len(distinct)
    ids = {}
    i = 0
    for t, n, p in recs:
        if n not in ids:
            ids[n] = len(ids) + 1
            assert (raw[i].id, bytes(raw[i].payload)) == (ids[n], n.encode())
            i += 1
        assert (raw[i].id, bytes(raw[i].payload)) == (ids[n], p)
        i += 1


def test_byte_at_a_time_equals_one_shot():
    recs = [(i * 0.5, f"ch{i % 3}", bytes(range(i % 20))) for i in range(200)]
    data = encode(recs, namespace=True)
    dec = Decoder(namespace=True)
    out = []
    for i in range(len(data)):
        dec.feed(data[i : i + 1])
        out.extend(dec)
    assert [(r.time, r.name, bytes(r.payload)) for r in out] == recs
    assert dec.tell() == len(data) and dec.buffered == 0 and dec.records == 200


def test_special_times_bit_exact():
    nan_payload = as_time(0x7FF8_0000_DEAD_BEEF)
    times = [nan_payload, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1e300]
    data = encode([(t, 1, b"") for t in times])
    assert [bits_of(r.time) for r in decode(data)] == [bits_of(t) for t in times]


def test_payload_is_zero_copy_view():
    data = encode([(0.0, 1, b"\x01" * 16)])
    r = decode(data)[0]
    assert isinstance(r.payload, memoryview)
    assert r.payload.obj is data  # a view into the input bytes, no copy
    assert np.frombuffer(r.payload, "<f8").shape == (2,)


def test_any_bytes_like_payload():
    arr = np.arange(3, dtype="<f8")
    data = encode([(0.0, 1, arr), (0.0, 1, bytearray(b"ab")), (0.0, 1, memoryview(b"xyz")), (0.0, 1, arr[::2])])
    got = [bytes(r.payload) for r in decode(data)]
    assert got == [arr.tobytes(), b"ab", b"xyz", arr[::2].tobytes()]


def test_tell_and_records_track_iteration():
    data = encode([(0.0, "a", b"x" * 9), (1.0, "a", b""), (2.0, "b", b"yy")], namespace=True)
    dec = Decoder(namespace=True)
    dec.feed(data)
    assert dec.tell() == 0
    r1 = next(dec)
    assert dec.tell() == 24 + 32 and dec.records == 1  # definition + 9-byte record
    next(dec)
    assert dec.tell() == 24 + 32 + 16
    next(dec)
    assert dec.tell() == len(data) and dec.records == 3
    with pytest.raises(StopIteration):
        next(dec)
    assert r1.name == "a"


def test_header_over_limit_is_an_error_not_a_wait():
    good = encode([(0.0, 1, b"abc")])
    bad = HEADER.pack(1.0, 2, 2**31)
    dec = Decoder(max_record_size=1024)
    dec.feed(good + bad)
    with pytest.raises(LimitError) as ei:
        list(dec)
    e = ei.value
    assert isinstance(e, ValueError) and isinstance(e, FastOdinError)
    assert e.offset == len(good) and e.limit == 1024 and e.length == 2**31 and e.record == 1
    assert "max_record_size" in str(e) and f"offset {len(good)}" in str(e)
    # the default limit is finite (256 MiB)
    with pytest.raises(LimitError, match="max_record_size=268435456"):
        decode(HEADER.pack(0.0, 1, DEFAULT_MAX_RECORD_SIZE + 1))


def test_truncated_and_trailing_bytes_one_shot():
    data = encode([(0.0, 1, b"a"), (1.0, 2, b"bb")])
    for cut in range(1, 24):
        with pytest.raises(TruncatedError) as ei:
            decode(data[:-cut])
        assert ei.value.offset == 24 and ei.value.record == 1
        assert [r.id for r in ei.value.unpacked] == [1]
    with pytest.raises(ExtraData, match="after 2 good records") as ei:
        decode(data + b"\x01\x02\x03")
    assert ei.value.extra == b"\x01\x02\x03" and len(ei.value.unpacked) == 2 and ei.value.offset == len(data)


def test_close_reports_leftover():
    dec = Decoder()
    dec.feed(encode([(0.0, 1, b"abc")])[:20])
    assert list(dec) == []
    with pytest.raises(TruncatedError, match="20 bytes at offset 0"):
        dec.close()


def test_big_record_in_small_chunks_is_linear():
    payload = bytes(range(256)) * 16384  # 4 MiB
    data = encode([(1.0, 9, payload), (2.0, 9, b"z")])
    dec = Decoder()
    out = []
    for i in range(0, len(data), 1024):  # 4096 feeds: quadratic joining would copy ~8 GB
        dec.feed(data[i : i + 1024])
        out.extend(dec)
    assert [bytes(r.payload) for r in out] == [payload, b"z"]


def test_encoder_usage_errors():
    enc = Encoder()
    with pytest.raises(UsageError, match="id"):
        enc.add(0.0, -1, b"")
    with pytest.raises(UsageError, match="id"):
        enc.add(0.0, 2**32, b"")
    with pytest.raises(UsageError, match="time"):
        enc.add("now", 1, b"")
    with pytest.raises(UsageError, match="bytes-like"):
        enc.add(0.0, 1, 12345)
    assert len(enc) == 0  # nothing half-written
    with pytest.raises(UsageError):
        Encoder(namespace="yes")


def test_namespace_keys_and_reset():
    enc = Encoder(namespace=True)
    enc.add(0.0, "", encode_meta({"a": 1}))
    enc.add(1.0, b"bytes-name", b"1")
    enc.add(2.0, 5, b"2")  # ints are names in namespace mode (as in the reference)
    enc.reset(3.0)
    enc.add(4.0, "5", b"3")
    data = enc.take()
    got = [(r.id, r.name, bytes(r.payload)) for r in decode(data, namespace=True)]
    assert got == [(0, None, b'{"a":1}'), (1, "bytes-name", b"1"), (2, "5", b"2"), (1, "5", b"3")]


def test_time_modes_resolve_on_request():
    enc = Encoder(namespace=True)
    enc.add_meta(0.0, {"fastpack_time": {"mode": "delta", "base": 0.5, "origin": 100.0}})
    for _ in range(4):
        enc.add(2.0, "x", b"")
    enc.add_meta(0.0, {"fastpack_time": {"mode": "multiple", "base": 0.001}})
    enc.add(1500.0, "x", b"")
    enc.add_meta(0.0, {"fastpack_time": {"mode": "absolute"}})
    enc.add(7.0, "x", b"")
    data = enc.take()
    raw = [r.time for r in decode(data, namespace=True) if r.name]
    assert raw == [2.0, 2.0, 2.0, 2.0, 1500.0, 7.0]  # raw by default
    resolved = [r.time for r in decode(data, namespace=True, resolve_time=True) if r.name]
    assert resolved == [101.0, 102.0, 103.0, 104.0, 1.5, 7.0]
    # also without a namespace, and across chunk boundaries
    plain = [r.time for r in feed_in_chunks(Decoder(resolve_time=True), data, [50, 100, 170, 230]) if r.id == 1]
    assert plain == [101.0, 102.0, 103.0, 104.0, 105.0, 1.5, 7.0]  # without a namespace the definition is data too


def test_bad_time_mode_declaration_is_a_data_error():
    data = encode([(0.0, 0, encode_meta({"fastpack_time": {"mode": "warp"}})), (1.0, 1, b"")])
    assert len(decode(data, resolve_time=False)) == 2
    with pytest.raises(DataError, match="offset 0"):
        decode(data, resolve_time=True)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_never_crash(data, ns):
    try:
        decode(data, namespace=ns, max_record_size=4096)
    except DataError:
        pass
    dec = Decoder(namespace=ns, max_record_size=4096, resolve_time=True)
    try:
        for i in range(0, len(data), 13):
            dec.feed(data[i : i + 13])
            list(dec)
    except DataError:
        pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(named_records, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), max_size=5), st.integers(0, 10**6))
def test_mutated_streams_never_crash(recs, flips, cut):
    data = bytearray(encode([(as_time(t), n, p) for t, n, p in recs], namespace=True))
    if data:
        for pos, bit in flips:
            data[pos % len(data)] ^= 1 << bit
        data = data[: cut % (len(data) + 1)]
    try:
        decode(bytes(data), namespace=True, max_record_size=1 << 16, resolve_time=True)
    except DataError:
        pass


def test_definition_with_falsy_name_binds_nothing_as_in_perl():
    # Perl binds an id only to a name it holds true: "" and "0" leave the id unbound, so the
    # id's next record is a definition again (found by tests/interop/perl_crosscheck.py)
    enc = Encoder()
    enc.add(0.0, 3, b"")
    enc.add(0.0, 3, b"x")
    enc.add(0.0, 3, b"data")
    enc.add(0.0, 4, b"0")
    enc.add(0.0, 4, b"y")
    enc.add(1.0, 4, b"more")
    got = [(r.name, bytes(r.payload)) for r in decode(enc.take(), namespace=True)]
    assert got == [("x", b"data"), ("y", b"more")]


def test_msgpack_extension_types_are_rejected_like_the_reference():
    import msgpack

    from fastodin import decode_meta
    from fastodin.errors import MetadataError

    with pytest.raises(MetadataError, match="extension type 5"):
        decode_meta(msgpack.packb([msgpack.ExtType(5, b"ab")]))
