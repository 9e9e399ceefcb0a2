"""ODIN -> FastPack mapping: lossless (byte-identical, same order), metadata, held data, raw channels."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from fastodin.codec import decode as fp_decode
from fastodin.metadata import decode_meta
from fastodin.odin import (FastPackSink, OdinToFastPack, Simulator, WriterSink, convert_burst, convert_packets,
                           decode, iter_packets, packets_from_fastpack)
from fastodin.odin.mapping import RAW_CHANNEL, TYPES_CHANNEL
from test_odin_golden import EXT_CHUNKS, GOLDEN_DB, SET1_STREAM, golden

ALL_GOLDEN = SET1_STREAM + EXT_CHUNKS + ["06_type_descriptor.bin", "07_set2_identifier_ext.bin",
                                         "07_set2_identifier.bin", "07_set2_data.bin", "04_event_prefilled_AA.bin",
                                         "03_data_wrap_seq65535.bin", "03_data_wrap_seq0.bin"]


def _records(data):
    return list(fp_decode(data, namespace=True))


def _metas(data):
    return [decode_meta(r.payload) for r in _records(data) if r.id == 0]


def test_golden_capture_round_trips_byte_identical():
    pk = [golden(f) for f in ALL_GOLDEN]
    data, rep = convert_packets(pk)
    assert packets_from_fastpack(data) == pk
    assert list(iter_packets(data)) == pk
    assert rep["pending"] == 0 and rep["unresolved"] == 0


def test_channels_and_payloads():
    pk = [golden(f) for f in SET1_STREAM] + [golden("06_type_descriptor.bin"), b"\x7f\x00"]
    data, _ = convert_packets(pk)
    recs = [r for r in _records(data) if r.id != 0]
    assert [r.name for r in recs] == ["odin/set/0x0996/identifier"] + ["odin/set/0x0996"] * 4 + \
        ["odin/event/7", TYPES_CHANNEL, RAW_CHANNEL]
    assert [bytes(r.payload) for r in recs] == pk   # payload = packet verbatim


def test_metadata_stream_set_report():
    data, _ = convert_packets([golden(f) for f in SET1_STREAM], odin_db=GOLDEN_DB, counts_per_second=1000)
    m = _metas(data)
    assert m[0]["odin"] == "stream" and m[0]["counts_per_second"] == 1000
    s = [x for x in m if x.get("odin") == "set"]
    assert len(s) == 1 and s[0]["set_id"] == 0x0996 and s[0]["definition_identifier"] == 0x0A0B
    assert [e["name"] for e in s[0]["entries"]][6] == "system.axis"
    assert s[0]["entries"][6]["count"] == 2 and s[0]["entries"][0]["type"] == "f32"
    assert m[-1]["odin"] == "report" and m[-1]["stats"]["data"] == 4
    # set metadata comes before the set's first DATA record
    recs = _records(data)
    first_data = next(i for i, r in enumerate(recs) if r.name == "odin/set/0x0996")
    meta_i = next(i for i, r in enumerate(recs) if r.id == 0 and decode_meta(r.payload).get("odin") == "set")
    assert meta_i < first_data
    # record time = ticks / counts_per_second
    assert [r.time for r in recs if r.name == "odin/set/0x0996"] == [1.0, 1.01, 1.02, 1.03]


def test_msgpack_metadata_option():
    sink = FastPackSink(meta_format="msgpack")
    c = OdinToFastPack(sink)
    c.add_many([golden(f) for f in SET1_STREAM])
    c.close()
    recs = _records(sink.take())
    metas = [r for r in recs if r.id == 0]
    assert bytes(metas[0].payload[:1]) not in (b"{", b"[")
    assert decode_meta(metas[0].payload)["odin"] == "stream"


def test_data_before_identifier_held_then_written_in_order():
    pk = [golden("02_data_seq0.bin"), golden("04_event.bin"), golden("02_data_seq1.bin"), golden("01_identifier.bin"),
          golden("02_data_seq2.bin")]
    data, rep = convert_packets(pk, odin_db=GOLDEN_DB)
    assert packets_from_fastpack(data) == pk
    recs = _records(data)
    names = [r.name if r.id else decode_meta(r.payload)["odin"] for r in recs]
    # set metadata first, then the held packets in capture order, the identifier at its position
    assert names == ["stream", "set", "odin/set/0x0996", "odin/event/7", "odin/set/0x0996",
                     "odin/set/0x0996/identifier", "odin/set/0x0996", "report"]
    assert rep["unresolved"] == 0


def test_identifier_never_comes_goes_to_unresolved_and_reported():
    pk = [golden("02_data_seq0.bin"), golden("04_event.bin"), golden("02_data_seq1.bin")]
    data, rep = convert_packets(pk)
    assert packets_from_fastpack(data) == pk
    names = [r.name for r in _records(data) if r.id]
    assert names == ["odin/unresolved/0x0996", "odin/event/7", "odin/unresolved/0x0996"]
    assert rep["unresolved"] == 2 and rep["stats"]["undefined_data"] == 2


def test_max_pending_bounds_memory():
    pk = [golden("02_data_seq%d.bin" % i) for i in range(4)] + [golden("01_identifier.bin")]
    sink = FastPackSink()
    c = OdinToFastPack(sink, max_pending=2)
    for p in pk[:4]:
        c.add(p)
        assert len(c._pending) <= 2
    c.add(pk[4])
    rep = c.close()
    data = sink.take()
    assert packets_from_fastpack(data) == pk
    assert rep["unresolved"] == 2  # the two forced out before the identifier came


def test_length_mismatch_goes_to_unresolved():
    pk = [golden("01_identifier.bin"), golden("02_data_seq0.bin") + b"\x01"]
    data, rep = convert_packets(pk)
    assert packets_from_fastpack(data) == pk
    assert rep["unresolved"] == 1 and rep["stats"]["length_mismatches"] == 1


def test_definition_change_rewrites_set_metadata():
    from fastodin.odin.packets import Data, Identifier, IdentifierEntry
    a = Identifier(0x1111, 1, (IdentifierEntry(1, 4),))
    b = Identifier(0x1111, 2, (IdentifierEntry(1, 2),))
    pk = [a.to_bytes(), Data(0x1111, 1, 0, b"abcd").to_bytes(), b.to_bytes(), Data(0x1111, 2, 1, b"ab").to_bytes()]
    data, rep = convert_packets(pk)
    sets = [m for m in _metas(data) if m.get("odin") == "set"]
    assert [s["data_size"] for s in sets] == [4, 2]
    assert packets_from_fastpack(data) == pk
    r = decode(data)
    assert len(r[0x1111]) == 1 and len(r.other_layouts) == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**16), st.floats(0, 0.3), st.integers(0, 40))
def test_simulated_captures_round_trip(seed, loss, shuffle):
    sim = Simulator(seed=seed, loss=loss, start_ticks=2**32 - 30_000)
    pk = sim.packets(n=300)
    rng = random.Random(seed)
    for _ in range(shuffle):  # reorders, duplicates, junk
        i, j = rng.randrange(len(pk)), rng.randrange(len(pk))
        pk[i], pk[j] = pk[j], pk[i]
    pk.insert(rng.randrange(len(pk)), b"\x55junk")
    pk.insert(rng.randrange(len(pk)), pk[rng.randrange(len(pk))])
    data, rep = convert_packets(pk, max_pending=rng.choice([0, 5, 1000]))
    assert packets_from_fastpack(data) == pk
    times = [r.time for r in _records(data)]
    assert times == sorted(times)  # monotonic record times


def test_burst_capture_to_fastpack_and_replay():
    sim = Simulator(seed=9)
    raw = sim.burst(duration=0.3, garbage=0.05, corrupt=0.02)
    data, rep = convert_burst(raw)
    b = rep["burst"]
    assert b["crc_errors"] + b["cobs_errors"] > 0 and b["packets"] > 0
    from fastodin.odin.burst import burst_decode
    assert packets_from_fastpack(data) == burst_decode(raw)


def test_writer_sink_adapter():
    class W:
        def __init__(self):
            self.recs = []

        def write(self, t, name, payload):
            self.recs.append((t, name, bytes(payload)))

    w = W()
    c = OdinToFastPack(WriterSink(w))
    pk = [golden(f) for f in SET1_STREAM]
    c.add_many(pk)
    c.close()
    assert [p for _, n, p in w.recs if n != 0] == pk
    assert decode(w.recs)[0x0996].sequence.tolist() == [0, 1, 2, 3]


def test_bad_arguments():
    from fastodin.errors import UsageError
    with pytest.raises(UsageError):
        OdinToFastPack(FastPackSink(), counts_per_second=0)
    with pytest.raises(UsageError):
        OdinToFastPack(FastPackSink(), max_pending=-1)


def test_archive_round_trip_and_decode(tmp_path):
    import fastodin.archive.writer as archive
    from fastodin.archive.reader import open_archive
    pk = Simulator(seed=11, loss=0.01).packets(duration=2.0)
    pk.insert(5, b"\x7fjunk")
    p = tmp_path / "cap.fastpack.zst"
    with archive.Writer(str(p)) as w:
        c = OdinToFastPack(WriterSink(w))
        c.add_many(pk)
        c.close()
    assert list(iter_packets(str(p))) == pk
    ref = decode(pk)
    for src in (str(p),):
        r = decode(src)
        assert sorted(r) == sorted(ref)
        for k in ref:
            assert r[k].records.tobytes() == ref[k].records.tobytes()
    with open_archive(str(p)) as ar:
        r = decode(ar)
        assert {k: len(v) for k, v in r.items()} == {k: len(v) for k, v in ref.items()}
        assert list(iter_packets(ar)) == pk


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16), st.integers(0, 30))
def test_bulk_add_many_equals_packet_by_packet(seed, edits):
    from fastodin.odin.packets import Data, Identifier, IdentifierEntry
    rng = random.Random(seed)
    pk = Simulator(seed=seed, loss=0.05, identifier_interval=0.05).packets(n=400)
    extra = [b"\x7f", Identifier(0x4242, 1, (IdentifierEntry(9, 2),)).to_bytes(),
             Data(0x4242, 5, 1, b"zz").to_bytes(), Data(0x4242, 6, 2, b"zzz").to_bytes(), b"\x02\x01"]
    for _ in range(edits):
        pk.insert(rng.randrange(len(pk) + 1), rng.choice(extra + [pk[rng.randrange(len(pk))]]))
    a = FastPackSink()
    ca = OdinToFastPack(a, max_pending=rng.choice([3, 1000]))
    for p in pk:
        ca.add(p)
    ra = ca.close()
    b = FastPackSink()
    cb = OdinToFastPack(b, max_pending=ca.max_pending)
    cb.add_many(pk)
    rb = cb.close()
    assert a.take() == b.take()
    assert ra == rb


def test_add_after_close_is_an_error():
    from fastodin.errors import UsageError
    c = OdinToFastPack(FastPackSink())
    c.add_many([golden(f) for f in SET1_STREAM])
    c.close()
    with pytest.raises(UsageError):
        c.add(golden("02_data_seq0.bin"))
    with pytest.raises(UsageError):
        c.add_many([golden("02_data_seq0.bin")] * 100)
