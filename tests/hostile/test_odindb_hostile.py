"""Issue 8 item 6: the OdinDB loader leaked ValueError/TypeError/OverflowError/RecursionError on crafted
``.odin`` files (counts "abc", -5, 1e300, Infinity ids, 100k nesting).  Every one is an OdinError that
names the file, the place and the field; a mutated real export only ever gives an OdinDB or an
OdinError."""
import copy
import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastodin.errors import OdinError
from fastodin.odin.odindb import MAX_DEPTH, OdinDB, load_odin_db

GOLDEN = "tests/vectors/odin/golden_od.odin.json"


def golden():
    with open(GOLDEN) as f:
        return json.load(f)


def first_param(d):
    return d["root"]["parameters"][0]["parameters"][0]          # sensors.temperature


def an_array(d):
    for g in d["root"]["parameters"]:
        for p in g.get("parameters", []):
            if p.get("type") == "array":
                return p
    raise AssertionError("the golden export has an array")


def with_types(types):
    d = golden()
    d["types"] = types
    return d


def _load_text(tmp_path, text, name="crafted.odin"):
    p = tmp_path / name
    p.write_text(text)
    return OdinDB.load(p), str(p)


@pytest.mark.parametrize("field,value,says", [
    ("element_count", "abc", "element_count: 'abc' is not an integer"),
    ("element_count", -5, "element_count: -5 is out of range"),
    ("element_count", 1e300, "element_count: 1e+300 is out of range"),
    ("element_count", float("inf"), "element_count: inf is not an integer"),
    ("element_count", [1], "element_count: a list is not an integer"),
    ("global_id", float("inf"), "global_id: inf is not an integer"),
    ("global_id", float("nan"), "global_id: nan is not an integer"),
    ("global_id", -1, "global_id: -1 is out of range 0..4294967295"),
    ("global_id", 2 ** 40, "global_id: 1099511627776 is out of range"),
    ("element_size", "4x", "element_size: '4x' is not an integer"),
    ("element_type", 7, "element_type: 7 is not a string"),
])
def test_bad_parameter_fields_name_the_file_place_and_field(tmp_path, field, value, says):
    d = golden()
    an_array(d)[field] = value
    text = json.dumps(d)  # Python's json writes Infinity / NaN, as a crafted file would
    with pytest.raises(OdinError) as ei:
        _load_text(tmp_path, text)
    msg = str(ei.value)
    assert says in msg
    assert str(tmp_path / "crafted.odin") in msg and "root.parameters[1].parameters[" in msg
    assert "system.axis" in msg or "(" in msg


@pytest.mark.parametrize("types,says", [
    ({"t": {"size": 4, "count": "abc", "structure": "u8"}}, "count: 'abc' is not an integer"),
    ({"t": {"size": 4, "count": -5, "structure": "u8"}}, "count: -5 is out of range"),
    ({"t": {"size": 1e300, "structure": "u8"}}, "size: 1e+300 is out of range"),
    ({"t": {"count": 1e300, "structure": "u8"}}, "count: 1e+300 is out of range"),
    ({"t": {"structure": {"a": {"type": "u8", "offset": "x"}}}}, "offset: 'x' is not an integer"),
    ({"t": {"structure": {"a": {"type": "u8", "count": -1}}}}, "count: -1 is out of range"),
    ({"t": {"structure": {"a": {"type": "u8", "count": 70000}}}}, "count: 70000 is out of range"),
    ({"t": {"structure": [1, 2]}}, "structure[0]: 1 is not a type name"),
    ({"t": {"structure": {"a": 5}}}, "unsupported 'int'"),
    ({"a": {"structure": "b", "count": 300}, "b": {"structure": "u8", "count": 300}}, "more than an entry can hold"),
    ({"t": {"structure": {"a": "u8", "b": "u8"}, "size": 1}}, "fits neither"),
])
def test_bad_type_fields_are_odin_errors(types, says):
    with pytest.raises(OdinError, match=None) as ei:
        load_odin_db(with_types(types))
    assert says in str(ei.value) and "types[" in str(ei.value)


def test_deep_json_nesting_in_a_file(tmp_path):
    text = '{"root": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(OdinError, match="nested too deeply") as ei:
        _load_text(tmp_path, text)
    assert "crafted.odin" in str(ei.value)


def _chain(depth, leaf):
    node = leaf
    for _ in range(depth):
        node = {"type": "parameter_group", "name": "g", "parameters": [node]}
    return node


def _deep_structure(depth):
    s = {"structure": {"x": "u8"}}
    for _ in range(depth):
        s = {"structure": {"in": s}}
    return s


def _type_chain(n):
    types = {f"t{i}": {"structure": f"t{i + 1}"} for i in range(n)}
    types[f"t{n}"] = {"structure": "u8"}
    return types


@pytest.mark.parametrize("make,says", [   # 5,000 deep: far past the interpreter's recursion limit
    (lambda: {"root": _chain(5_000, {})}, f"groups nested deeper than {MAX_DEPTH}"),
    (lambda: {"root": {"parameters": []}, "types": _type_chain(5_000)}, f"types nested deeper than {MAX_DEPTH}"),
    (lambda: {"root": {"parameters": []}, "types": {"t": _deep_structure(5_000)}},
     f"structures nested deeper than {MAX_DEPTH}"),
], ids=["groups", "named_types", "inline_structures"])
def test_deep_nesting_in_a_dict(make, says):
    with pytest.raises(OdinError, match=says):
        OdinDB.from_dict(make())


def test_moderate_nesting_still_loads():
    leaf = {"type": "parameter", "global_id": 5, "global_name": "a.b", "element_type": "u16", "element_size": 2}
    db = OdinDB.from_dict({"root": _chain(MAX_DEPTH - 1, leaf),
                           "types": {"t": _deep_structure(MAX_DEPTH - 1)}})
    assert db.params[5].name == "a.b" and db.types["t"].itemsize == 1


def test_cli_names_the_field_not_an_internal_error(tmp_path):
    d = golden()
    an_array(d)["element_count"] = "abc"
    bad = tmp_path / "bad.odin"
    bad.write_text(json.dumps(d))
    src = tmp_path / "cap.burst"
    with open("tests/vectors/odin/burst_framed_stream.bin", "rb") as f:
        src.write_bytes(f.read())
    p = subprocess.run([sys.executable, "-m", "fastodin", "convert", "--odin-db", str(bad), str(src),
                        str(tmp_path / "out.fastpack.zst")], capture_output=True, text=True, timeout=60,
                       check=False)
    assert p.returncode == 1, p.stderr
    assert "element_count: 'abc' is not an integer" in p.stderr and "internal error" not in p.stderr
    assert p.stderr.count("\n") == 1


# -- property: mutations of the real export give an OdinDB or an OdinError, nothing else ----------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
    | st.sampled_from(["f32", "u8", "char", "bool", "custom", "t", "array", "vector", "parameter",
                       "parameter_group", "type_definition", "1e300", "-5", "Infinity"]),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "size", "count", "structure", "offset", "name", "global_id", "parameters",
                         "element_type", "element_size", "element_count", "max_element_count", "t", "x"]),
        kids, max_size=4),
    max_leaves=12)


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


@st.composite
def mutated_exports(draw):
    d = golden()
    if draw(st.booleans()):
        d["types"] = draw(st.dictionaries(st.sampled_from(["t", "u", "vec3"]), json_values, max_size=3))
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(d))
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "delete", "nest"]))
        if not path:
            if how == "replace":
                d = draw(json_values)
            continue
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        k = path[-1]
        if how == "replace":
            parent[k] = draw(json_values)
        elif how == "delete":
            del parent[k]
        else:
            parent[k] = _chain(draw(st.integers(1, 3 * MAX_DEPTH)), copy.deepcopy(parent[k]))
        if not isinstance(d, (dict, list)):
            break
    return d


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_exports())
def test_mutated_export_gives_an_odindb_or_an_odin_error(d):
    try:
        db = load_odin_db(d) if isinstance(d, dict) else OdinDB.from_dict(d)
    except OdinError:
        return
    for gid in db.params:   # whatever loaded resolves entries without surprises
        for size in (0, 1, 4, 8, 65535):
            db.entry(gid, size).resolved_dtype()
