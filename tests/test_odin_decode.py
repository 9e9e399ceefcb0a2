"""Typed decode: equal to odin-stream's own decode (manifest python_decode) and beyond it."""
from __future__ import annotations

import numpy as np
import pytest

from fastodin.odin import decode, decode_packets, Simulator
from fastodin.odin.burst import burst_encode_many
from fastodin.odin.packets import Data, Identifier, IdentifierEntry
from test_odin_golden import EXT_CHUNKS, GOLDEN_DB, GOLDEN_DB_ARRAY_AS_PARAM, SET1_STREAM, golden, manifest

PD = manifest()["python_decode"]
DATA4 = ["02_data_seq%d.bin" % i for i in range(4)]


def _rows_equal(table, want_rows):
    rows = table.rows()
    assert len(rows) == len(want_rows)
    for got, want in zip(rows, want_rows):
        for k, v in want.items():
            gk = {"__timestamp": "timestamp", "__sequence_number": "sequence"}.get(k, k)
            assert got[gk] == v, (k, got[gk], v)


@pytest.mark.parametrize("db", [GOLDEN_DB, GOLDEN_DB_ARRAY_AS_PARAM])
def test_with_odin_db_equals_odin_stream(db):
    # odin-stream 0.2.0 decodes this only with the 'array as parameter' variant; we decode both
    r = decode([golden(f) for f in SET1_STREAM], odin_db=db)
    _rows_equal(r[0x0996], PD["with_odin_db"]["frames"]["0x996"])
    assert len(r.events[7]) == 1 and r.events[7].payloads[0] == bytes.fromhex("01020304646f6f722d6f70656e")


def test_identifier_ext_alone_equals_odin_stream():
    r = decode([golden(f) for f in EXT_CHUNKS + DATA4])
    _rows_equal(r[0x0996], PD["no_db_identifier_ext"]["frames"]["0x996"])
    assert list(r[0x0996].columns())[4:] == [k for k in PD["no_db_identifier_ext"]["schema"]["0x996"]][2:]


def test_set2_custom_struct_equals_odin_stream():
    r = decode([golden(f) for f in ("07_set2_identifier_ext.bin", "06_type_descriptor.bin", "07_set2_data.bin")])
    _rows_equal(r[0xCC4D], PD["no_db_set2_custom"]["frames"]["0xcc4d"])


def test_plain_identifier_without_db_still_decodes_raw_and_keeps_data():
    # odin-stream buffers these forever ("awaiting schema header"); we give raw entry bytes
    r = decode([golden(f) for f in ["01_identifier.bin"] + DATA4])
    t = r[0x0996]
    assert len(t) == 4
    assert t.sequence.tolist() == [0, 1, 2, 3]
    assert bytes(t["0x01010000"][0]) == bytes.fromhex("0000ac41")


def test_data_before_identifier_is_decoded():
    r = decode([golden(f) for f in DATA4 + ["01_identifier.bin"]], odin_db=GOLDEN_DB)
    assert r[0x0996]["sensors.counter"].tolist() == [1000, 1001, 1002, 1003]


def test_data_with_no_identifier_is_reported_not_dropped():
    r = decode([golden(f) for f in DATA4])
    assert 0x0996 not in r
    assert r.undefined[0x0996] == [golden(f) for f in DATA4]
    assert r.report["stats"]["undefined_data"] == 4


def test_wrong_crc_header_is_trusted_but_reported():
    ident = Identifier(0xBEEF, 1, (IdentifierEntry(0x01010000, 4),))
    pk = [ident.to_bytes()] + [Data(0xBEEF, i, i, b"\x00\x00\x80\x3f").to_bytes() for i in range(4)]
    r = decode(pk)
    assert len(r[0xBEEF]) == 4
    assert r.report["stats"]["set_id_mismatches"] == 1
    assert r.report["sets"]["0xBEEF"]["set_id_ok"] is False


def test_sequence_wrap_and_tick_seconds():
    pk = [golden(f) for f in ["01_identifier.bin", "03_data_wrap_seq65535.bin", "03_data_wrap_seq0.bin"]]
    r = decode(pk, odin_db=GOLDEN_DB, counts_per_second=1000)
    t = r[0x0996]
    assert t.sequence.tolist() == [65535, 0]
    assert t.sequence_stats.gaps == 0
    assert t["time"].tolist() == [1.04, 1.05]


def test_timestamp_wrap_unwrapped():
    ident = Identifier(0xBEEF, 1, (IdentifierEntry(1, 1),))
    ts = [0xFFFFFFF0, 0xFFFFFFFF, 5, 20]
    r = decode([ident.to_bytes()] + [Data(0xBEEF, x, i, b"\x01").to_bytes() for i, x in enumerate(ts)])
    assert r[0xBEEF].ticks.tolist() == [0xFFFFFFF0, 0xFFFFFFFF, 0x100000005, 0x100000014]
    assert np.all(np.diff(r[0xBEEF]["time"]) > 0)


def test_length_mismatch_and_unknown_and_malformed_are_reported():
    pk = [golden("01_identifier.bin"), golden("02_data_seq0.bin") + b"\x00", golden("02_data_seq1.bin"),
          b"\x7f\x01", b"\x01\x00", b"\x02\x96\x09"]
    r = decode(pk)
    st = r.report["stats"]
    assert len(r[0x0996]) == 1
    assert st["length_mismatches"] == 1 and st["unknown"] == 1 and st["malformed"] >= 2
    assert r.unknown == [b"\x7f\x01"]
    assert st["unknown_types"] == {"0x7F": 1}


def test_decode_burst_bytes_and_path(tmp_path):
    data = golden("burst_framed_stream.bin")
    r = decode(data, odin_db=GOLDEN_DB)
    assert len(r[0x0996]) == 4 and r.report["burst"]["packets"] == 6
    p = tmp_path / "cap.burst"
    p.write_bytes(data)
    assert len(decode(str(p), odin_db=GOLDEN_DB)[0x0996]) == 4


def test_simulator_decode_consistent_across_sources():
    sim = Simulator(seed=5)
    pk = sim.packets(duration=0.5)
    a = decode(pk)
    b = decode(burst_encode_many(pk))
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].records.tobytes() == b[k].records.tobytes()
    imu = [k for k, t in a.items() if "imu.sample" in t.names][0]
    t = a[imu]
    # the padded struct (u8 at 0, f32 at 4) decodes with its real offsets
    assert t.records.dtype["imu.sample"].fields["x"][1] == 4
    assert t["imu.sample.code"].dtype == np.dtype("<u2")
    assert t.sequence_stats.gaps == 0


def test_to_numpy_and_pandas():
    r = decode([golden(f) for f in SET1_STREAM], odin_db=GOLDEN_DB)
    arr = r[0x0996].to_numpy(expand=True)
    assert arr["system.axis[1]"].tolist() == [100, 200, 300, 400]
    pd = pytest.importorskip("pandas")
    df = r[0x0996].to_pandas()
    assert isinstance(df, pd.DataFrame) and df["sensors.counter"].tolist() == [1000, 1001, 1002, 1003]


def test_missing_column_is_key_error_with_names():
    r = decode([golden(f) for f in SET1_STREAM], odin_db=GOLDEN_DB)
    with pytest.raises(KeyError, match="sensors.counter"):
        r[0x0996]["nope"]


def test_empty_inputs():
    assert len(decode([])) == 0
    assert len(decode_packets([])) == 0
    assert len(decode(b"", format="burst")) == 0


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 1000), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=30),
       st.lists(st.integers(0, 10**6), max_size=10))
def test_mutated_captures_never_crash_decode_or_mapping(seed, flips, cuts):
    from fastodin.odin import convert_packets, packets_from_fastpack
    pk = [bytearray(p) for p in Simulator(seed=seed).packets(n=150)]
    for pos, val in flips:
        p = pk[pos % len(pk)]
        if p:
            p[pos % len(p)] = val
    for c in cuts:
        p = pk[c % len(pk)]
        del p[c % (len(p) + 1):]
    pk = [bytes(p) for p in pk]
    r = decode(pk)
    assert r.report["stats"]["packets"] == len(pk)
    data, rep = convert_packets(pk)
    assert packets_from_fastpack(data) == pk
    assert decode(data).report["stats"]["packets"] == len(pk)


def test_contiguous_columns_equal_views():
    r = decode(Simulator(seed=6).packets(duration=1.0))
    for t in r.values():
        a = t.columns()
        b = t.columns(contiguous=True)
        assert list(a) == list(b)
        for k in a:
            assert b[k].flags.c_contiguous and np.array_equal(a[k], b[k])


def test_to_polars_matches_odin_stream_frame():
    pytest.importorskip("polars")
    r = decode([golden(f) for f in SET1_STREAM], odin_db=GOLDEN_DB)
    df = r[0x0996].to_polars()
    want = PD["with_odin_db"]["frames"]["0x996"]
    assert df["system.voltage"].to_list() == [w["system.voltage"] for w in want]
    assert df["system.axis[0]"].to_list() == [w["system.axis[0]"] for w in want]


def test_decode_and_replay_take_archive_records_directly(tmp_path):
    # Archive.records() yields fastodin Records (time, id, payload, name): read by attribute, not position
    import fastodin
    from fastodin.odin import Simulator, WriterSink, OdinToFastPack, decode, iter_packets

    packets = Simulator(seed=5).packets(n=300)
    path = tmp_path / "cap.fastpack.zst"
    with fastodin.Writer(str(path)) as w:
        conv = OdinToFastPack(WriterSink(w))
        conv.add_many(packets)
        conv.close()
    ar = fastodin.open(str(path))
    by_records = decode(list(ar.records()))
    direct = decode(ar)
    assert sum(len(t) for t in by_records.values()) == sum(len(t) for t in direct.values()) > 0
    assert list(iter_packets(list(ar.records()))) == packets
