"""OdinDB loading, element types -> dtypes, struct layouts, 0x03/0x04 learning."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fastodin.errors import OdinError
from fastodin.odin import OdinDB, OdinStream, load_odin_db
from fastodin.odin.packets import ExtItem, IdentifierExt, TypeDef, TypeField
from fastodin.odin.schema import EntryDef, SchemaAssembler, SetDef, flat_columns, struct_dtype_from_typedef
from fastodin.odin.types import entry_dtype
from test_odin_golden import EXT_CHUNKS, GOLDEN_DB, GOLDEN_DB_ARRAY_AS_PARAM, golden


def test_golden_db_as_exported_resolves_arrays():
    db = load_odin_db(GOLDEN_DB)
    assert len(db) == 8
    p = db.params[0x02030000]
    assert (p.kind, p.name, p.count) == ("array", "system.axis", 2)
    e = db.entry(0x02030000, 4)
    assert e.resolved_dtype() == np.dtype(("<i2", (2,)))
    assert db.entry(0x01010000, 4).resolved_dtype() == np.dtype("<f4")


def test_both_golden_db_variants_give_same_layout_for_the_identifier():
    a = OdinStream(GOLDEN_DB)
    b = OdinStream(GOLDEN_DB_ARRAY_AS_PARAM)
    for s in (a, b):
        s.process(golden("01_identifier.bin"))
    # the 'array as parameter' variant says i16 of 2 bytes but the entry is 4 bytes: we make it i16[2] too
    assert [e.resolved_dtype() for e in a.sets[0x0996].entries] == [e.resolved_dtype() for e in b.sets[0x0996].entries]


def _db(params, types=None):
    return OdinDB.from_dict({"name": "t", "types": types or {}, "root": {
        "type": "parameter_group", "name": "root", "global_name": "root", "global_id": 0,
        "parameters": [{"type": "parameter_group", "name": "g", "global_name": "g", "global_id": 1,
                        "parameters": params}]}})


def test_vector_char_bool_and_custom_struct_with_padding():
    db = _db([
        {"type": "vector", "global_id": 10, "global_name": "g.v", "name": "v", "element_type": "u16",
         "element_size": 2, "max_element_count": 8},
        {"type": "array", "global_id": 11, "global_name": "g.s", "name": "s", "element_type": "char",
         "element_size": 1, "element_count": 12},
        {"type": "parameter", "global_id": 12, "global_name": "g.b", "name": "b", "element_type": "bool",
         "element_size": 1},
        {"type": "parameter", "global_id": 13, "global_name": "g.p", "name": "p", "element_type": "padded",
         "element_size": 8},
        {"type": "parameter", "global_id": 14, "global_name": "g.q", "name": "q", "element_type": "packed3",
         "element_size": 5},
    ], types={
        "padded": {"type": "type_definition", "size": 8, "count": None, "structure": {"a": "u8", "b": "f32"}},
        "packed3": {"type": "type_definition", "size": 5, "count": None, "structure": {"a": "u8", "b": "f32"}},
    })
    assert db.entry(10, 6).resolved_dtype() == np.dtype(("<u2", (3,)))      # vector, 3 of max 8 used
    assert db.entry(10, 18).dtype is None and db.entry(10, 18).note        # over max count: raw + note
    assert db.entry(11, 12).resolved_dtype() == np.dtype("S12")
    assert db.entry(12, 1).resolved_dtype() == np.dtype("?")
    dt = db.entry(13, 8).resolved_dtype()
    assert dt.fields["b"][1] == 4 and dt.itemsize == 8                     # C-aligned
    dt = db.entry(14, 5).resolved_dtype()
    assert dt.fields["b"][1] == 1 and dt.itemsize == 5                     # packed
    raw = np.array([(7, 1.5)], dtype=db.entry(13, 8).resolved_dtype()).tobytes()
    assert raw[0] == 7 and np.frombuffer(raw[4:8], "<f4")[0] == 1.5


def test_explicit_offsets_and_nested_types():
    db = _db([{"type": "parameter", "global_id": 1, "global_name": "g.x", "name": "x", "element_type": "outer",
               "element_size": 12}],
             types={"inner": {"type": "type_definition", "size": 4, "count": None, "structure": {"u": "u16", "v": "u16"}},
                    "outer": {"type": "type_definition", "size": 12, "count": None,
                              "structure": {"a": {"type": "u8", "offset": 0}, "in": {"type": "inner", "offset": 4},
                                            "z": {"type": "u32", "offset": 8}}}})
    dt = db.entry(1, 12).resolved_dtype()
    assert dt.fields["in"][1] == 4 and dt.fields["in"][0].names == ("u", "v") and dt.fields["z"][1] == 8


@pytest.mark.parametrize("doc,match", [
    ({}, "root"),
    ({"root": {"type": "parameter_group", "parameters": [{"type": "weird"}]}}, "unknown type"),
    ({"root": {"type": "parameter_group", "parameters": [{"type": "parameter", "global_name": "x"}]}}, "lacks"),
    ({"types": {"t": {"size": 3, "structure": {"a": "u8", "b": "f32"}}}, "root": {"parameters": []}}, "fits neither"),
    ({"types": {"t": {"size": 4, "structure": {"a": "nope"}}}, "root": {"parameters": []}}, "unknown element type"),
    ({"types": {"t": {"size": 4, "structure": {"a": "t"}}}, "root": {"parameters": []}}, "recursive"),
])
def test_bad_odin_db_is_a_clear_error(doc, match):
    with pytest.raises(OdinError, match=match):
        OdinDB.from_dict(doc)


def test_unknown_element_type_and_unknown_param_stay_raw():
    db = _db([{"type": "parameter", "global_id": 5, "global_name": "g.x", "name": "x", "element_type": "mystery",
               "element_size": 4}])
    e = db.entry(5, 4)
    assert e.dtype is None and e.resolved_dtype() == np.dtype("V4")
    assert db.entry(99, 2).note == "global id not in OdinDB"


def test_bad_db_file(tmp_path):
    p = tmp_path / "x.odin"
    p.write_text("{not json")
    with pytest.raises(OdinError, match="cannot read"):
        OdinDB.load(p)
    with pytest.raises(OdinError, match="cannot read"):
        OdinDB.load(tmp_path / "missing.odin")


def test_learn_from_identifier_ext_alone():
    s = OdinStream()
    for f in reversed(EXT_CHUNKS):  # any order
        s.process(golden(f))
    d = s.sets[0x0996]
    assert d.source == "identifier_ext" and d.set_id_ok
    assert [e.name for e in d.entries][:2] == ["sensors.temperature", "sensors.pressure"]
    assert d.packet_dtype()["system.axis"] == np.dtype(("<i2", (2,)))


def test_custom_struct_learned_from_0x04_before_or_after_0x03():
    for order in (["06_type_descriptor.bin", "07_set2_identifier_ext.bin"],
                  ["07_set2_identifier_ext.bin", "06_type_descriptor.bin"]):
        s = OdinStream()
        for f in order:
            s.process(golden(f))
        dt = s.sets[0xCC4D].packet_dtype()
        assert dt["imu.accel"].names == ("x", "y", "z")
        assert dt["imu.gyro_raw"] == np.dtype(("<f4", (3,)))


def test_struct_dtype_honours_offsets_and_rejects_overlap():
    td = TypeDef(1, 12, "t", (TypeField(2, 1, 0, "a"), TypeField(11, 8, 4, "b")))
    dt, note = struct_dtype_from_typedef(td)
    assert dt.itemsize == 12 and dt.fields["b"][1] == 4 and note is None
    dt, note = struct_dtype_from_typedef(TypeDef(1, 8, "o", (TypeField(4, 4, 0, "a"), TypeField(4, 4, 2, "b"))))
    assert dt == np.dtype("V8") and "overlap" in note
    dt, note = struct_dtype_from_typedef(TypeDef(1, 4, "u", (TypeField(99, 4, 0, "a"),)))
    assert dt.fields["a"][0] == np.dtype("V4") and "raw" in note


def test_unknown_element_type_in_0x03_kept_raw_and_counted():
    s = OdinStream()
    s.process(IdentifierExt(0x1234, 0, 2, 0, (ExtItem(1, 4, 200, 0, "weird"), ExtItem(2, 4, 10, 0, "ok"))).to_bytes())
    d = s.sets[0x1234]
    assert d.entries[0].resolved_dtype() == np.dtype("V4")
    assert s.stats.unknown_element_types == 1
    assert s.stats.set_id_mismatches == 1  # 0x1234 is not the CRC of ids 1, 2


def test_schema_assembler_restarts_on_new_total():
    a = SchemaAssembler()
    a.add(IdentifierExt(1, 0, 3, 0, (ExtItem(1, 4, 10, 0, "a"),)))
    assert a.missing == [1, 2]
    assert a.add(IdentifierExt(1, 0, 1, 0, (ExtItem(9, 4, 10, 0, "z"),)))
    assert [i.name for i in a.items()] == ["z"] and a.conflicts == 1


def test_entry_dtypes_for_every_code():
    for code, size, want in [(0, 1, "?"), (1, 1, "u1"), (2, 2, ("u1", (2,))), (3, 2, "<u2"), (4, 4, "<u4"),
                             (5, 8, "<u8"), (6, 1, "i1"), (7, 2, "<i2"), (8, 4, "<i4"), (9, 8, "<i8"),
                             (10, 4, "<f4"), (11, 8, "<f8"), (12, 5, "S5")]:
        assert entry_dtype(code, size) == np.dtype(want)
    assert entry_dtype(14, 4) is None and entry_dtype(3, 3) is None


def test_setdef_meta_round_trip_with_struct():
    dt, _ = struct_dtype_from_typedef(TypeDef(1, 8, "p", (TypeField(2, 1, 0, "a"), TypeField(10, 4, 4, "b"))))
    s = SetDef(5, 6, (EntryDef(1, 16, "x", 13, 1, "p", np.dtype((dt, (2,)))), EntryDef(2, 3, "c", 12)))
    m = json.loads(json.dumps(s.to_meta()))
    assert SetDef.from_meta(m).packet_dtype() == s.packet_dtype()
    with pytest.raises(OdinError):
        SetDef.from_meta({"set_id": 1})


def test_flat_columns_names():
    dt, _ = struct_dtype_from_typedef(TypeDef(1, 8, "p", (TypeField(2, 1, 0, "a"), TypeField(10, 4, 4, "b"))))
    arr = np.zeros(3, [("s.v", dt, (2,)), ("s.ax", "<i2", (2,)), ("s.k", "<u4")])
    assert list(flat_columns(arr)) == ["s.v[0].a", "s.v[0].b", "s.v[1].a", "s.v[1].b", "s.ax[0]", "s.ax[1]", "s.k"]


def test_non_utf8_names_survive_metadata():
    import orjson
    import msgpack
    s = OdinStream()
    raw_name = b"bad\xff\xfename"
    pkt = bytearray(IdentifierExt(0x1234, 0, 1, 0, (ExtItem(1, 4, 10, 0, "x" * len(raw_name)),)).to_bytes())
    pkt[-len(raw_name):] = raw_name
    s.process(bytes(pkt))
    d = s.sets[0x1234]
    m = d.to_meta()
    orjson.dumps(m)
    msgpack.packb(m)
    back = SetDef.from_meta(orjson.loads(orjson.dumps(m)))
    assert back.entries[0].name.encode("utf-8", "surrogateescape") == raw_name
