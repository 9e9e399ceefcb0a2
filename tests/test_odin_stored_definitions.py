"""decode() of a recording uses the set definitions the mapping stored in its id-0 metadata
(spec/odin-mapping.md §5): a capture converted with an OdinDB decodes typed without it; an
explicit odin_db wins; bad stored metadata never stops a decode."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import fastodin
from fastodin.metadata import encode_meta
from fastodin.odin import FastPackSink, OdinToFastPack, Simulator, WriterSink, convert_packets, decode
from fastodin.odin.decode import StoredDefinitions
from fastodin.odin.schema import EntryDef, SetDef
from fastodin.odin.types import F32


def _capture(seed=3, n=900, **kw):
    sim = Simulator(seed=seed, self_describing=False, **kw)  # sets announced by 0x01 only
    return sim, sim.packets(n=n), sim.odin_db()


def _same_tables(got, want):
    """Every set: same definition, same columns (dtypes) and the same values, bit for bit."""
    assert sorted(got) == sorted(want) and len(want) >= 3
    for sid, w in want.items():
        g = got[sid]
        assert g.definition.packet_dtype() == w.definition.packet_dtype(), hex(sid)
        wc, gc = w.columns(expand=True), g.columns(expand=True)  # structs and arrays flattened
        assert list(gc) == list(wc), hex(sid)
        for k in wc:
            a, b = np.ascontiguousarray(gc[k]), np.ascontiguousarray(wc[k])
            assert a.dtype == b.dtype and a.shape == b.shape, (hex(sid), k, a.dtype, b.dtype)
            assert a.tobytes() == b.tobytes(), (hex(sid), k)
    assert sum(len(t) for t in got.values()) == sum(len(t) for t in want.values()) > 100


def _typed(r):
    """No entry of any set is raw bytes."""
    for t in r.values():
        for e in t.definition.entries:
            dt = e.resolved_dtype()
            assert not (dt.kind == "V" and dt.fields is None and dt.subdtype is None), (e.global_id, dt)


def test_without_stored_definitions_sets_are_untyped():
    # the premise: these sets are typed only by the OdinDB (no 0x03 schema in the packets)
    _, pk, db = _capture()
    assert all(t.definition.source == "identifier" for t in decode(pk).values())
    assert all(t.definition.source == "odin_db" for t in decode(pk, odin_db=db).values())


@pytest.mark.parametrize("meta_format", ["json", "msgpack"])
def test_raw_fastpack_decodes_typed_without_odin_db(tmp_path, meta_format):
    _, pk, db = _capture()
    want = decode(pk, odin_db=db)
    sink = FastPackSink(meta_format=meta_format)
    conv = OdinToFastPack(sink, odin_db=db)
    conv.add_many(pk)
    conv.close()
    raw = sink.take()
    got = decode(raw)
    _same_tables(got, want)
    _typed(got)
    assert {t.definition.source for t in got.values()} == {"metadata"}
    assert got.report["stored_definitions"] == 3 and got.report["stored_definitions_used"] is True
    path = tmp_path / "cap.fastpack"
    path.write_bytes(raw)
    _same_tables(decode(str(path)), want)


def test_archive_decodes_typed_without_odin_db(tmp_path):
    _, pk, db = _capture(seed=4)
    want = decode(pk, odin_db=db)
    path = tmp_path / "cap.fastpack.zst"
    with fastodin.Writer(str(path)) as w:
        conv = OdinToFastPack(WriterSink(w), odin_db=db)
        conv.add_many(pk)
        conv.close()
    _same_tables(decode(str(path)), want)  # a .fastpack.zst path
    ar = fastodin.open(str(path))
    try:
        _same_tables(decode(ar), want)  # an open archive
        _same_tables(decode(list(ar.records())), want)  # archive records (id-0 records among them)
        # the records of the ODIN channels alone carry no metadata: untyped, as before
        assert all(t.definition.source == "identifier" for t in decode(list(ar.records(channels="odin/*"))).values())
    finally:
        ar.close()


def test_tuple_records_and_counts_per_second_from_metadata():
    _, pk, db = _capture(seed=5, counts_per_second=1000.0)
    want = decode(pk, odin_db=db, counts_per_second=1000.0)
    recs = []
    sink = type("S", (), {})()
    sink.write = lambda t, name, payload: recs.append((t, name, payload))
    sink.write_meta = lambda t, obj: recs.append((t, 0, encode_meta(obj)))
    conv = OdinToFastPack(sink, odin_db=db, counts_per_second=1000.0)
    conv.add_many(pk)
    conv.close()
    got = decode(recs)
    _same_tables(got, want)
    sid = next(iter(want))
    assert np.array_equal(got[sid].time, want[sid].time)
    assert got[sid].time[-1] > 0.5  # ticks / 1000, not ticks / 1e6


def test_explicit_odin_db_overrides_stored_definitions():
    _, pk, db = _capture(seed=6)
    raw, _ = convert_packets(pk, odin_db=db)
    other = copy.deepcopy(db)
    # the other OdinDB calls sensors.temperature "renamed.temp" and types it i32
    for g in other["root"]["parameters"]:
        for p in g["parameters"]:
            if p["global_name"] == "sensors.temperature":
                p["global_name"], p["element_type"] = "renamed.temp", "i32"
    stored = decode(raw)
    got = decode(raw, odin_db=other)
    sid = next(k for k, t in stored.items() if "sensors.temperature" in t.names)
    assert "renamed.temp" in got[sid].names and "sensors.temperature" not in got[sid].names
    assert got[sid].records["renamed.temp"].dtype == np.dtype("<i4")
    assert stored[sid].records["sensors.temperature"].dtype == np.dtype("<f4")
    assert got[sid].definition.source == "odin_db"
    assert got.report["stored_definitions_used"] is False
    _same_tables(got, decode(pk, odin_db=other))


def test_packets_own_schema_is_kept():
    # a self-describing device (0x03/0x04): the stored definitions add nothing, the packets' own stay
    sim = Simulator(seed=7)
    pk = sim.packets(n=600)
    raw, _ = convert_packets(pk, odin_db=sim.odin_db())
    got, want = decode(raw), decode(pk)
    _same_tables(got, want)
    assert {t.definition.source for t in got.values()} == {"identifier_ext"}


def test_set_without_identifier_packets_uses_stored_definition(tmp_path):
    # e.g. records selected by channel: the DATA and the metadata, no identifier packets
    _, pk, db = _capture(seed=8)
    want = decode(pk, odin_db=db)
    raw, _ = convert_packets(pk, odin_db=db)
    d = fastodin.codec.Decoder(namespace=True)
    d.feed(raw)
    recs = [(r.time, r.name if r.id else 0, bytes(r.payload)) for r in d
            if r.id == 0 or not r.name.endswith("/identifier")]
    assert not any(isinstance(n, str) and n.endswith("/identifier") for _, n, _ in recs)
    got = decode(recs)
    _same_tables(got, want)
    # without the metadata the DATA cannot be decoded at all
    bare = decode([r for r in recs if r[1] != 0])
    assert len(bare) == 0 and sum(map(len, bare.undefined.values())) == sum(map(len, want.values()))
    # an explicit OdinDB re-types the stored layouts
    again = decode(recs, odin_db=db)
    _same_tables(again, want)
    assert {t.definition.source for t in again.values()} == {"odin_db"}


def _one_set_records(meta_objs):
    """Records: the given id-0 objects, a 0x01 for set (5: 4 bytes, 6: 2 bytes), two DATA packets."""
    d = SetDef(0, 0x0A0B, (EntryDef(5, 4), EntryDef(6, 2)))
    d = SetDef(d.computed_set_id, 0x0A0B, d.entries)
    ch = "odin/set/0x%04X" % d.set_id
    recs = [(0.0, 0, m if isinstance(m, bytes) else encode_meta(m)) for m in meta_objs]
    recs.append((0.0, ch + "/identifier", d.identifier_packet().to_bytes()))
    for k in range(2):
        pkt = bytes([2]) + d.set_id.to_bytes(2, "little") + b"\0" + (100 * k).to_bytes(4, "little") \
            + k.to_bytes(2, "little") + np.float32(1.5 + k).tobytes() + (7 + k).to_bytes(2, "little")
        recs.append((k * 1e-4, ch, pkt))
    return d, recs


def _set_meta(d, entries):
    return {"odin": "set", "channel": "odin/set/0x%04X" % d.set_id, "set_id": d.set_id,
            "definition_identifier": d.definition_identifier, "counts_per_second": 1e6, "entries": entries}


def test_stored_definition_types_a_0x01_set():
    d, _ = _one_set_records([])
    good = [{"global_id": 5, "size": 4, "name": "v", "dtype": "<f4"}, {"global_id": 6, "size": 2, "dtype": "<u2"}]
    _, recs = _one_set_records([_set_meta(d, good)])
    t = decode(recs)[d.set_id]
    assert t.records["v"].tolist() == [1.5, 2.5] and t.records["0x00000006"].tolist() == [7, 8]


@pytest.mark.parametrize("bad_entries", [
    [{"global_id": 5, "size": 4, "name": "v", "dtype": "|O"}, {"global_id": 6, "size": 2, "dtype": "<u2"}],
    [{"global_id": 5, "size": 4, "name": "v", "dtype": "<f8"}, {"global_id": 6, "size": 2, "dtype": "<u2"}],
    [{"global_id": 5, "size": 4, "name": "v", "dtype": {"names": ["a"], "formats": ["|O"], "offsets": [0],
                                                        "itemsize": 8}}, {"global_id": 6, "size": 2}],
    [{"global_id": 5, "size": 4, "name": "v", "dtype": ["<f4", [3]]}, {"global_id": 6, "size": 2}],
    [{"global_id": 5, "size": 4, "name": "v", "element_type": "f32"}, {"global_id": 6, "size": 2}],
])
def test_stored_type_that_does_not_fit_stays_raw(bad_entries):
    d, _ = _one_set_records([])
    _, recs = _one_set_records([_set_meta(d, bad_entries)])
    r = decode(recs)
    t = r[d.set_id]
    assert len(t) == 2
    v = t.records["v"]  # the stored name is used, the unusable type is not
    assert v.dtype == np.dtype("V4") and bytes(v[0]) == np.float32(1.5).tobytes()
    assert any("0x00000005" in e and "unusable" in e for e in r.report["stats"]["errors"]), r.report


@pytest.mark.parametrize("bad", [
    {"odin": "set", "set_id": 1},  # no entries
    {"odin": "set", "set_id": "x", "definition_identifier": 0, "entries": []},
    {"odin": "set", "set_id": 70000, "definition_identifier": 0, "entries": []},
    {"odin": "set", "set_id": 1, "definition_identifier": 0, "entries": [{"global_id": 5, "size": -4}]},
    {"odin": "set", "set_id": 1, "definition_identifier": 0, "entries": [7]},
    b"{not json",
    b"\xc1",  # never-used MessagePack byte
])
def test_unusable_stored_metadata_is_reported_not_fatal(bad):
    d, recs = _one_set_records([bad, {"odin": "stream", "counts_per_second": "fast"}])
    r = decode(recs)
    t = r[d.set_id]
    assert len(t) == 2 and t.definition.source == "identifier"  # decoded from the packets, untyped
    assert any("unusable" in e or "not decodable" in e for e in r.report["stats"]["errors"]), r.report
    assert t.time[-1] == pytest.approx(100e-6)  # a non-numeric rate is ignored: the default 1e6


def test_stored_definition_of_another_layout_is_not_applied():
    d, _ = _one_set_records([])
    other = [{"global_id": 5, "size": 2, "name": "v", "dtype": "<u2"}, {"global_id": 6, "size": 4, "dtype": "<f4"}]
    _, recs = _one_set_records([_set_meta(d, other)])
    t = decode(recs)[d.set_id]
    assert t.definition.source == "identifier" and "v" not in t.names


def test_stored_definitions_merge_keeps_what_packets_know():
    sd = StoredDefinitions()
    sd.add({"odin": "set", "set_id": 1, "definition_identifier": 0,
            "entries": [{"global_id": 5, "size": 4, "name": "stored", "dtype": "<u4"},
                        {"global_id": 6, "size": 4, "name": "w", "dtype": "<f4"}]})
    learned = SetDef(1, 0, (EntryDef(5, 4, "from_packets", F32), EntryDef(6, 4)))
    m = sd.merge(learned)
    assert [e.name for e in m.entries] == ["from_packets", "w"] and m.source == "metadata"
    assert m.entries[0].resolved_dtype() == np.dtype("<f4")
    assert sd.merge(SetDef(1, 0, (EntryDef(5, 4, "a", F32), EntryDef(6, 4, "b", F32)))).source == "identifier"
    assert sd.merge(SetDef(1, 1, (EntryDef(5, 4), EntryDef(6, 4)))).source == "identifier"  # other od id


def test_checked_entry_refuses_object_dtypes():
    from fastodin.odin.decode import _checked_entry

    e = _checked_entry(EntryDef(5, 8, "v", None, 0, None, np.dtype("O")))
    assert e.name == "v" and e.resolved_dtype() == np.dtype("V8") and "unusable" in e.note
    ok = _checked_entry(EntryDef(5, 8, "v", None, 0, None, np.dtype("<f8")))
    assert ok.resolved_dtype() == np.dtype("<f8")
