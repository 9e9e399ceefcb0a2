"""Tests of the vectorised columnar FastPack path (fastodin.columns)."""
from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastodin import columns
from fastodin.columns import (
    Columns,
    Scan,
    channel_array,
    decode_columns,
    encode_columns,
    pad_len,
    record_size,
    scan,
)
from fastodin.errors import DataError, LimitError, TruncatedError, UsageError

VEC = Path(__file__).parent / "vectors" / "fastpack"
INDEX = json.loads((VEC / "index.json").read_text())["vectors"]
HS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -------------------------------------------------------------------------------------------------
# independent reference encoder / parser (one record at a time, no numpy)


def ref_encode(recs) -> bytes:
    """recs: (time_bits u64, id u32, payload bytes)."""
    out = bytearray()
    for tb, i, p in recs:
        out += struct.pack("<QII", tb, i, len(p)) + p + b"\0" * ((8 - len(p) % 8) % 8)
    return bytes(out)


def ref_parse(buf, start=0, end=None, max_len=1 << 62, max_records=None):
    """[(time_bits, id, payload_offset, len)], end — or raises ('limit', offset, len, record)."""
    end = len(buf) if end is None else min(end, len(buf))
    p = start
    out = []
    while end - p >= 16 and (max_records is None or len(out) < max_records):
        tb, i, ln = struct.unpack_from("<QII", buf, p)
        if ln > max_len:
            raise _RefLimit(p, ln, len(out))
        sz = 16 + ln + (8 - ln % 8) % 8
        if sz > end - p:
            break
        out.append((tb, i, p + 16, ln))
        p += sz
    return out, p


class _RefLimit(Exception):
    def __init__(self, offset, length, record):
        super().__init__(offset, length, record)
        self.offset, self.length, self.record = offset, length, record


def as_rows(s):
    return list(zip(s.time_bits.tolist(), s.id.tolist(), s.offset.tolist(), s.length.tolist()))


def check_scan(buf, start=0, end=None, max_len=256 * 2**20, max_records=None):
    try:
        want, want_end = ref_parse(buf, start, end, max_len, max_records)
    except _RefLimit as e:
        with pytest.raises(LimitError) as ei:
            scan(buf, start, end, max_record_size=max_len, max_records=max_records)
        assert (ei.value.offset, ei.value.length, ei.value.limit, ei.value.record) == (
            e.offset,
            e.length,
            max_len,
            e.record,
        )
        assert "max_record_size" in str(ei.value)
        return None
    s = scan(buf, start, end, max_record_size=max_len, max_records=max_records)
    assert isinstance(s, Scan)
    assert as_rows(s) == want
    assert s.end == want_end
    assert s.time.dtype == np.dtype("<f8") and s.id.dtype == np.dtype("<u4")
    assert s.offset.dtype == np.int64 and s.length.dtype == np.dtype("<u4")
    return s


# -------------------------------------------------------------------------------------------------
# golden vectors


def _wire(m):
    if "wire_records" in m:
        return [(r["offset"], r["time_hex"], r["id"], r["len"], r["payload_hex"]) for r in m["wire_records"]]
    return [(r[0], r[1], r[2], r[3], r[4]) for r in m["wire_records_compact"]]


@pytest.mark.parametrize("case", INDEX, ids=[c["name"] for c in INDEX])
def test_golden_wire_records(case):
    data = (VEC / case["file"]).read_bytes()
    m = json.loads((VEC / case["manifest"]).read_text())
    c = decode_columns(data)
    assert isinstance(c, Columns)
    got = []
    for k in range(c.count):
        off = int(c.offset[k])
        ln = int(c.length[k])
        got.append((off - 16, c.time[k : k + 1].tobytes().hex(), int(c.id[k]), ln, data[off : off + ln].hex()))
    assert got == _wire(m)
    assert len(c.leftover) == m["wire_trailing_bytes"]
    assert c.leftover == data[len(data) - m["wire_trailing_bytes"] :]
    assert c.end == len(data) - m["wire_trailing_bytes"]


def test_golden_realistic_channel_array_by_name():
    data = (VEC / "realistic_5ch_10000.fp").read_bytes()
    m = json.loads((VEC / "realistic_5ch_10000.json").read_text())
    outs = m["decode"]["outputs_compact"]
    names = sorted({o[2] for o in outs})
    assert len(names) == 5
    for name in names:
        want = [o for o in outs if o[2] == name]
        t, v = channel_array(data, name, "<f8")
        assert v.shape == (len(want),)
        assert v.tobytes().hex() == "".join(o[3] for o in want)
        assert t.tobytes().hex() == "".join(o[1] for o in want)
        # by id (namespace on) gives the same
        _, v2 = channel_array(data, _id_of(m, name), "<f8")
        assert v2.tobytes() == v.tobytes()


def _id_of(m, name):
    return m["decode"]["namespace_after"]["name_to_id"][name]


def test_golden_namespace_cases_channel_array():
    # ns_reset: ids re-bound after resets (A is 1, then 3, then 1 again)
    data = (VEC / "ns_reset.fp").read_bytes()
    m = json.loads((VEC / "ns_reset.json").read_text())
    for name in ("A", "B", "C"):
        want = [o for o in m["decode"]["outputs"] if o.get("name") == name]
        t, v = channel_array(data, name, ("u1", 2))
        assert v.tobytes().hex() == "".join(o["payload_hex"] for o in want)
        assert t.tobytes().hex() == "".join(o["time_hex"] for o in want)
    # the b"0" reset quirk: after it, id 1 is "B"
    data = (VEC / "ns_reset_quirk_payload_0.fp").read_bytes()
    assert channel_array(data, "A", "u1")[1].tobytes() == b"a"
    assert channel_array(data, "B", "u1")[1].tobytes() == b"b"
    # metadata passes through on id 0
    data = (VEC / "ns_meta_passthrough.fp").read_bytes()
    _, v = channel_array(data, "x", "<f8")
    assert v.tolist() == [1.0, 2.0]


# -------------------------------------------------------------------------------------------------
# hypothesis: random streams, all three strategies

SPECIAL_BITS = [0, 0x8000000000000000, 0x7FF8000000000000, 0x7FF0000000000001, 0xFFF8DEADBEEF0001, 0x7FF0000000000000]


@st.composite
def streams(draw):
    kind = draw(st.sampled_from(["uniform", "cyclic", "irregular"]))
    n = draw(st.integers(0, 150))
    if kind == "uniform":
        ln = draw(st.integers(0, 200))
        lens = [ln] * n
    elif kind == "cyclic":
        cyc = draw(st.lists(st.integers(0, 200), min_size=1, max_size=9))
        lens = [cyc[i % len(cyc)] for i in range(n)]
    else:
        pool = draw(st.lists(st.integers(0, 200), min_size=1, max_size=6))
        lens = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    seed = draw(st.integers(0, 2**32))
    rnd = random.Random(seed)
    recs = []
    for ln in lens:
        tb = rnd.choice(SPECIAL_BITS) if rnd.random() < 0.2 else rnd.getrandbits(64)
        recs.append((tb, rnd.getrandbits(32) if rnd.random() < 0.3 else rnd.randrange(6), rnd.randbytes(ln)))
    return recs


@HS
@given(streams(), st.integers(0, 11), st.data())
def test_scan_matches_reference(recs, prefix, data):
    stream = ref_encode(recs)
    block = data.draw(st.sampled_from([columns._BLOCK, 64, 200, 1024]))
    old = columns._BLOCK
    columns._BLOCK = block
    try:
        buf = bytes(prefix) + stream
        s = check_scan(buf, prefix)
        assert s.count == len(recs)
        assert [int(o) for o in s.offset] == _offsets(recs, prefix)
        # a cut anywhere and a start at a random record boundary
        cut = data.draw(st.integers(prefix, len(buf)))
        check_scan(buf[:cut], prefix)
        check_scan(buf, prefix, cut)
        if recs:
            k = data.draw(st.integers(0, len(recs)))
            st0 = prefix + sum(record_size(len(p)) for _, _, p in recs[:k])
            check_scan(buf, st0)
        # misaligned, writable and numpy inputs
        ba = bytearray(b"\x01" * 3 + buf)
        mv = memoryview(ba)[3:]
        check_scan(mv, prefix)
        check_scan(np.frombuffer(buf, np.uint8), prefix)
        # limits
        mr = data.draw(st.integers(0, 40))
        check_scan(buf, prefix, max_records=mr)
        ml = data.draw(st.integers(0, 210))
        check_scan(buf, prefix, max_len=ml)
    finally:
        columns._BLOCK = old


def _offsets(recs, base):
    out = []
    p = base
    for _, _, pl in recs:
        out.append(p + 16)
        p += record_size(len(pl))
    return out


@HS
@given(st.binary(max_size=600), st.integers(0, 1 << 33))
def test_scan_random_bytes(buf, max_len):
    check_scan(buf, max_len=max_len)
    check_scan(buf, 3, max_len=max_len)


@HS
@given(streams(), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), max_size=6), st.data())
def test_scan_mutations(recs, flips, data):
    buf = bytearray(ref_encode(recs))
    if not buf:
        buf = bytearray(32)
    for pos, bit in flips:
        buf[pos % len(buf)] ^= 1 << bit
    if data.draw(st.booleans()):
        # a huge len field somewhere (overflow, waits forever in the reference)
        pos = data.draw(st.integers(0, max(0, len(buf) - 4)))
        buf[pos : pos + 4] = b"\xff\xff\xff\xff"[: len(buf) - pos]
    cut = data.draw(st.integers(0, len(buf)))
    block = data.draw(st.sampled_from([columns._BLOCK, 96]))
    old = columns._BLOCK
    columns._BLOCK = block
    try:
        check_scan(bytes(buf[:cut]))
        check_scan(bytes(buf[:cut]), max_len=4096)
        c = None
        try:
            c = decode_columns(bytes(buf[:cut]))
        except LimitError:
            pass
        if c is not None:
            assert c.end + len(c.leftover) == cut
    finally:
        columns._BLOCK = old


def test_large_records_and_block_crossing():
    rnd = random.Random(5)
    recs = [(i, i, rnd.randbytes(rnd.choice([3, 300_000, 40, 1_000_000]))) for i in range(40)]
    buf = ref_encode(recs)
    s = check_scan(buf)
    assert s.count == 40
    # long irregular stream: crosses many default-size blocks
    recs = [(i, i % 7, bytes(rnd.choice([8, 16, 24, 40, 100]))) for i in range(30_000)]
    buf = ref_encode(recs)
    s = check_scan(buf)
    assert s.count == 30_000
    check_scan(buf[:-5])
    # uniform prefix, then irregular, then cyclic
    recs = [(0, 1, bytes(16))] * 500 + recs[:2000] + [(0, 2, bytes(k % 3 * 8)) for k in range(900)]
    check_scan(ref_encode(recs))


@pytest.mark.parametrize("lens", [[8], [8, 24, 0], [8, 16, 24, 40, 100, 0, 8, 8, 16, 40, 3, 24, 9]])
def test_scan_arrays_are_copies(lens):
    recs = [(k, 1 + k % 3, bytes(lens[k * 7 % len(lens)] if len(lens) > 3 else lens[k % len(lens)])) for k in range(60)]
    buf = bytearray(ref_encode(recs))
    s = scan(buf)
    want = as_rows(s)
    buf[:] = bytes(len(buf))
    assert as_rows(s) == want
    assert s.time_bits.tolist() == list(range(60))
    assert s.id.tolist() == [1 + k % 3 for k in range(60)]


def test_scan_bit_exact_times():
    bits = [0x7FF8000000000001, 0xFFF0000000000001, 0x8000000000000000, 0x7FF4000000000000] * 10
    buf = ref_encode([(b, 1, b"12345678") for b in bits])
    s = scan(buf)
    assert s.time_bits.tolist() == bits
    assert decode_columns(buf).time_bits.tolist() == bits
    t, v = channel_array(buf, 1, "<u8", namespace=False)
    assert t.view("<u8").tolist() == bits


def test_scan_args():
    with pytest.raises(UsageError):
        scan(b"x" * 32, -1)
    with pytest.raises(UsageError):
        scan(np.zeros((4, 8), np.uint8)[:, ::2])
    s = scan(b"\0" * 32, 40)
    assert s.count == 0 and s.end == 40
    assert scan(b"", 0).end == 0
    assert pad_len(0) == 0 and pad_len(9) == 7 and record_size(9) == 32
    from fastodin import codec

    assert columns.DEFAULT_MAX_RECORD_SIZE == codec.DEFAULT_MAX_RECORD_SIZE
    assert all(pad_len(n) == codec.pad_len(n) and record_size(n) == codec.record_size(n) for n in range(40))
    with pytest.raises(UsageError):
        scan(b"", max_records=-2)
    with pytest.raises(UsageError):
        channel_array(b"", 1, object)


# -------------------------------------------------------------------------------------------------
# errors


def test_limit_error_fields_probe_path():
    buf = ref_encode([(0, 1, b"abc")] * 3) + struct.pack("<QII", 0, 1, 1000) + bytes(1000)
    with pytest.raises(LimitError) as ei:
        scan(buf, max_record_size=100)
    e = ei.value
    assert (e.offset, e.length, e.limit, e.record) == (72, 1000, 100, 3)
    assert "max_record_size=100" in str(e) and "offset 72" in str(e)
    assert isinstance(e, ValueError)


@pytest.mark.parametrize("pattern", ["uniform", "cyclic", "irregular"])
def test_limit_error_fields_vectorised_paths(pattern):
    rnd = random.Random(1)
    if pattern == "uniform":
        lens = [16] * 100
    elif pattern == "cyclic":
        lens = [8, 24, 40] * 40
    else:
        lens = [rnd.choice([8, 16, 24, 40, 100]) for _ in range(100)]
    good = ref_encode([(0, 1, bytes(n)) for n in lens])
    bad = struct.pack("<QII", 0, 1, 0xFFFFFFFF)
    buf = good + bad + good
    with pytest.raises(LimitError) as ei:
        scan(buf)
    assert (ei.value.offset, ei.value.length, ei.value.record) == (len(good), 0xFFFFFFFF, len(lens))
    assert ei.value.limit == 256 * 2**20
    # a huge len on the last header: the records before it are a correct Scan
    s = scan(good + bad[:12] + b"\xff\xff\xff\x7f", max_record_size=2**32)
    assert s.count == len(lens) and s.end == len(good)


def test_channel_array_size_mismatch():
    buf = ref_encode([(0, 1, b"x"), (0, 1, bytes(16)), (0, 1, bytes(16)), (0, 1, bytes(8))])
    with pytest.raises(DataError) as ei:
        channel_array(buf, "x", ("<f8", 2))
    e = ei.value
    assert e.channel == "x" and e.offset == 88 and e.length == 8 and e.record == 3
    assert "'x'" in str(e) and "offset 88" in str(e) and "16 bytes" in str(e)


def test_channel_array_truncated_and_usage():
    buf = ref_encode([(0, 1, b"x"), (0, 1, bytes(8))])
    with pytest.raises(TruncatedError) as ei:
        channel_array(buf + b"abc", "x", "<f8")
    assert ei.value.offset == len(buf) and ei.value.record == 2
    with pytest.raises(UsageError):
        channel_array(buf, "x", "<f8", namespace=False)
    with pytest.raises(UsageError):
        channel_array(buf, 1.5, "<f8")


# -------------------------------------------------------------------------------------------------
# channel_array with namespaces


def ns_reference(recs):
    """Sequential namespace decoding (the rule fastodin.codec.Decoder follows): -> [(name, idx)]."""
    table = {}
    out = []
    for k, (_, i, p) in enumerate(recs):
        if i == 0:
            if p in (b"", b"0"):
                table.clear()
            else:
                out.append((0, k))
        elif i not in table:
            if p not in (b"", b"0"):  # Perl truthiness: these names bind nothing
                table[i] = p.decode("utf-8", "surrogateescape")
        else:
            out.append((table[i], k))
    return out


@st.composite
def named_streams(draw):
    names = ["a", "b", "température", "d/e", ""]
    ops = draw(st.lists(st.sampled_from(["a", "b", "température", "d/e", "reset", "reset0", "meta"]), max_size=80))
    table = {}
    nxt = [1]
    recs = []
    sizes = {"a": 8, "b": 16, "température": 8, "d/e": 3}
    rebind = draw(st.booleans())
    for k, op in enumerate(ops):
        if op in ("reset", "reset0"):
            recs.append((k, 0, b"" if op == "reset" else b"0"))
            table.clear()
            nxt[0] = 1
        elif op == "meta":
            recs.append((k, 0, b'{"m":1}'))
        else:
            if op not in table:
                i = nxt[0]
                nxt[0] += 1
                if rebind and draw(st.booleans()):
                    i = draw(st.integers(1, 2**32 - 1))
                if i in table.values():  # a drawn id may collide with a sequential one, and vice versa
                    continue
                table[op] = i
                recs.append((k, i, op.encode()))
            recs.append((k, table[op], bytes([k % 256]) * sizes[op]))
    del names
    return recs


@HS
@given(named_streams())
def test_channel_array_namespace_matches_sequential(recs):
    buf = ref_encode(recs)
    ref = ns_reference(recs)
    for name, dt in (("a", "<u8"), ("b", ("<u4", 4)), ("température", "<f8"), ("d/e", ("u1", 3))):
        idx = [k for nm, k in ref if nm == name]
        t, v = channel_array(buf, name, dt)
        assert v.shape[0] == len(idx)
        assert v.tobytes() == b"".join(recs[k][2] for k in idx)
        assert t.view("<u8").tolist() == [recs[k][0] for k in idx]
    meta = [k for nm, k in ref if nm == 0]
    t, v = channel_array(buf, 0, "V7")
    assert v.shape[0] == len(meta)
    assert channel_array(buf, "", "V7")[1].shape[0] == len(meta)


def test_channel_array_agrees_with_decoder():
    from fastodin import codec  # the lead's Decoder: same namespace rules
    rnd = random.Random(3)
    recs = []
    table = {}
    for k in range(3000):
        r = rnd.random()
        if r < 0.01:
            recs.append((k, 0, rnd.choice([b"", b"0"])))
            table.clear()
        else:
            nm = rnd.choice("abcde")
            if nm not in table:
                table[nm] = len(table) + 1
                recs.append((k, table[nm], nm.encode()))
            recs.append((k, table[nm], rnd.randbytes(8)))
    buf = ref_encode(recs)
    dec = codec.Decoder(namespace=True)
    dec.feed(buf)
    want = {}
    for rec in dec:
        want.setdefault(rec.name, []).append(bytes(rec.payload))
    for nm in "abcde":
        _, v = channel_array(buf, nm, "<u8")
        assert v.tobytes() == b"".join(want.get(nm, []))


def test_channel_array_zero_copy_and_gather():
    n = 1000
    head = ref_encode([(0, 1, b"x"), (0, 2, b"y")])
    body = encode_columns(np.arange(n, dtype=float), np.arange(n) % 2 + 1, np.arange(2 * n, dtype="<f8").reshape(n, 2))
    buf = bytearray(head + body)
    t, v = channel_array(buf, "y", ("<f8", 2))
    assert v.shape == (n // 2, 2) and t.shape == (n // 2,)
    assert np.shares_memory(v, np.frombuffer(buf, np.uint8))  # evenly strided: a view
    assert v[:, 0].tolist() == list(np.arange(2, 2 * n, 4, dtype=float))
    assert t.tolist() == list(np.arange(1, n, 2, dtype=float))
    del v, t
    # uneven spacing: gathered copy, same values
    irregular = ref_encode(
        [(0, 1, b"x"), (0, 2, b"y"), (1, 1, bytes(8)), (2, 2, bytes(24)), (3, 1, b"\x01" * 8), (4, 1, b"\x02" * 8)]
    )
    t, v = channel_array(irregular, "x", "<u8")
    assert v.tolist() == [0, 0x0101010101010101, 0x0202020202020202] and t.view("<u8").tolist() == [1, 3, 4]
    assert not np.shares_memory(v, np.frombuffer(irregular, np.uint8))
    t, v = channel_array(irregular, "nope", "<u8")
    assert v.shape == (0,) and t.shape == (0,)


def test_channel_array_rebound_ids_and_duplicate_names():
    recs = [
        (1, 1, b"a"), (1, 1, b"A1"),
        (2, 2, b"b"), (2, 2, b"B1"),
        (3, 0, b""),  # reset: id 1 becomes b, id 2 becomes a
        (4, 1, b"b"), (4, 1, b"B2"),
        (5, 2, b"a"), (5, 2, b"A2"),
        (6, 0, b"0"),  # quirk reset
        (7, 5, b"a"), (7, 5, b"A3"), (8, 1, b"B3"),  # id 1 undefined again: a definition of "B3"
        (9, 1, b"xx"),
    ]
    buf = ref_encode(recs)
    assert channel_array(buf, "a", "S2")[1].tolist() == [b"A1", b"A2", b"A3"]
    assert channel_array(buf, "b", "S2")[1].tolist() == [b"B1", b"B2"]
    assert channel_array(buf, "B3", "S2")[1].tolist() == [b"xx"]
    assert channel_array(buf, 1, "S2")[1].tolist() == [b"A1", b"B2", b"xx"]
    # without a namespace: raw ids, everything
    with pytest.raises(DataError):
        channel_array(buf, 1, "S2", namespace=False)  # id 1 has 1- and 2-byte payloads


# -------------------------------------------------------------------------------------------------
# encode_columns


@HS
@given(
    st.integers(0, 60),
    st.integers(0, 40),
    st.integers(0, 2**32),
    st.booleans(),
)
def test_encode_columns_matches_reference(n, plen, seed, scalar_id):
    rnd = random.Random(seed)
    bits = [rnd.choice(SPECIAL_BITS + [rnd.getrandbits(64)]) for _ in range(n)]
    ids = 7 if scalar_id else [rnd.getrandbits(32) for _ in range(n)]
    pays = [rnd.randbytes(plen) for _ in range(n)]
    arr = np.frombuffer(b"".join(pays), np.uint8).reshape(n, plen)
    times = np.array(bits, dtype="<u8").view("<f8")
    out = encode_columns(times, ids, arr)
    ids_l = [7] * n if scalar_id else ids
    assert out == ref_encode(list(zip(bits, ids_l, pays)))
    c = decode_columns(out)
    assert c.time_bits.tolist() == bits and c.id.tolist() == ids_l and c.leftover == b""


def test_encode_columns_typed_rows_and_errors():
    vals = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = encode_columns([0.0, 1.0], [1, 2], vals)
    t, v = channel_array(out, 2, ("<f8", 2), namespace=False)
    assert v.tolist() == [[3.0, 4.0]] and t.tolist() == [1.0]
    out = encode_columns(np.zeros(3), 1, np.array([1.5, 2.5, 3.5]))  # 1-D: one f8 per record
    assert channel_array(out, 1, "<f8", namespace=False)[1].tolist() == [1.5, 2.5, 3.5]
    assert encode_columns([], 1, np.zeros((0, 4), np.uint8)) == b""
    with pytest.raises(UsageError):
        encode_columns([0.0], [1, 2], np.zeros((1, 4), np.uint8))
    with pytest.raises(UsageError):
        encode_columns([0.0, 1.0], 1, np.zeros((1, 4), np.uint8))
    with pytest.raises(UsageError):
        encode_columns([0.0], -1, np.zeros((1, 4), np.uint8))
    with pytest.raises(UsageError):
        encode_columns([0.0], 2**32, np.zeros((1, 4), np.uint8))
    with pytest.raises(UsageError):
        encode_columns([0.0], [1.5], np.zeros((1, 4), np.uint8))
    with pytest.raises(UsageError):
        encode_columns([0.0], 1, np.uint8(3))


@pytest.mark.parametrize("period", range(1, 11))
def test_every_period(period):
    rnd = random.Random(period)
    cyc = [rnd.randrange(0, 120) for _ in range(period)]
    recs = [(rnd.getrandbits(64), k % 9, rnd.randbytes(cyc[k % period])) for k in range(300)]
    buf = ref_encode(recs)
    assert check_scan(buf).count == 300
    for cut in (len(buf) - 1, len(buf) // 2, len(buf) // 3 + 5, 100):
        check_scan(buf[:cut])
    # the pattern breaks in the middle, then resumes
    recs[150] = (1, 1, b"zz")
    check_scan(ref_encode(recs))


@pytest.mark.parametrize("run", [1, 3, 17, 40, 300])
def test_runs_of_sizes(run):
    rnd = random.Random(run)
    recs = []
    while len(recs) < 3000:
        ln = rnd.randrange(0, 50)
        recs += [(rnd.getrandbits(64), rnd.randrange(4), rnd.randbytes(ln)) for _ in range(run)]
    buf = ref_encode(recs)
    s = check_scan(buf)
    assert s.count == len(recs)
    check_scan(buf[:-3])
    check_scan(buf, max_records=1234)


@HS
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from([b"", b"0", b"a", b"b", b"ab", b"\xff", b"12345678", b"x" * 9])),
        max_size=60,
    )
)
def test_channel_array_agrees_with_decoder_on_any_framing(items):
    """Random ids (0..4) and payloads: every name the Decoder yields, channel_array finds the same."""
    from fastodin import codec

    recs = [(k, i, p) for k, (i, p) in enumerate(items)]
    buf = ref_encode(recs)
    dec = codec.Decoder(namespace=True)
    dec.feed(buf)
    want = {}
    for rec in dec:
        if rec.name is not None:
            want.setdefault(rec.name, []).append((rec.time, bytes(rec.payload)))
    for name, rows in want.items():
        if name in ("", "0"):
            continue
        sizes = {len(p) for _, p in rows}
        if len(sizes) == 1:
            t, v = channel_array(buf, name, np.dtype(("V", sizes.pop())))
            assert v.tobytes() == b"".join(p for _, p in rows)
            assert t.tolist() == [tt for tt, _ in rows]
        else:
            with pytest.raises(DataError):
                channel_array(buf, name, "u1" if 1 in sizes else "V9")


def test_irregular_block_with_misleading_probe():
    # the probe sees ~1 KiB records, the rest of the block is tiny records (estimate far off)
    rnd = random.Random(9)
    recs = [(k, 1, bytes(rnd.choice([1000, 1008]))) for k in range(16)]
    recs += [(k, 2, bytes(rnd.choice([0, 8]))) for k in range(20_000)]
    buf = ref_encode(recs)
    assert check_scan(buf).count == len(recs)
    check_scan(buf[: len(buf) // 2 + 3])


def test_channel_array_falsy_definitions_bind_nothing():
    # Perl: a definition named "" or "0" leaves the id undefined; the next record defines it again
    recs = [(0, 1, b""), (1, 1, b"0"), (2, 1, b"a"), (3, 1, b"0"), (4, 1, b"x"), (5, 0, b""), (6, 1, b"0"), (7, 1, b"b"), (8, 1, b"y")]
    buf = ref_encode(recs)
    t, v = channel_array(buf, "a", "S1")
    assert v.tolist() == [b"0", b"x"]
    assert t.view("<u8").tolist() == [3, 4]
    assert channel_array(buf, "b", "S1")[1].tolist() == [b"y"]
    assert channel_array(buf, 1, "S1")[1].tolist() == [b"0", b"x", b"y"]


def test_channel_array_returns_times_then_values_like_archive_read(tmp_path):
    """One tuple order across the package: ``(times, values)``, as Archive.read and the record
    (time | id | payload) have it (channel_array returned (values, times))."""
    import fastodin

    buf = fastodin.encode([(0.5, "x", np.float64(7.0).tobytes()), (1.5, "x", np.float64(8.0).tobytes())],
                          namespace=True)
    p = tmp_path / "x.fastpack"
    p.write_bytes(buf)
    t, v = channel_array(buf, "x", "<f8")
    with fastodin.open(p) as ar:
        t2, v2 = ar.read("x", dtype="<f8")
    assert t.tolist() == t2.tolist() == [0.5, 1.5]
    assert v.tolist() == v2.tolist() == [7.0, 8.0]
