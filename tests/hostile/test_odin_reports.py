"""Issue 8 item 1: ODIN reports hold counts and ranges, never per-ordinal lists; no id-0 record the
mapping writes can exceed a writer's limit; a recorder fed hostile packets keeps recording and closes
cleanly (the file verifies and has its seek table).

The hostile input of the issue: tiny 0x03 IDENTIFIER_EXT packets (12 bytes, no items) each claiming
``total_count=65535`` for a new set id.  27 KB of BURST made the report list 111 M missing ordinals
(3.7 GB, then a 650 MB id-0 record the writer refused, leaving no seek table)."""
import json
import os
import struct

from fastodin.codec import decode
from fastodin.odin.burst import burst_encode_many
from fastodin.odin.mapping import MAX_META_SIZE, convert_burst, convert_packets
from fastodin.odin.packets import (
    ExtItem,
    IdentifierExt,
    TypeDef,
    TypeDescriptor,
    TypeField,
)

RSS_LIMIT = 512 << 20  # the issue's ceiling (tests/hostile/conftest.py)
VEC = "tests/vectors/odin/"


def claim_everything(n_sets: int) -> bytes:
    """n_sets 0x03 packets without items, each announcing 65535 entries."""
    return burst_encode_many([struct.pack("<BHBIHH", 3, sid, 0, 1, 65535, 0) for sid in range(n_sets)])


def good_packets():
    return [open(VEC + f, "rb").read() for f in ("01_identifier.bin", "02_data_seq0.bin", "02_data_seq1.bin",
                                                   "02_data_seq2.bin", "02_data_seq3.bin")]


def test_incomplete_schema_is_reported_as_counts_and_ranges():
    _, rep = convert_burst(claim_everything(3))
    s = rep["sets"]["0x0001"]
    assert "schema_missing_ordinals" not in s
    assert s["schema_incomplete"] == {"total_count": 65535, "received": 0, "missing": 65535,
                                      "missing_ranges": [[0, 65534]], "more_ranges": 0}
    assert len(json.dumps(rep)) < 4096


def test_missing_ranges_are_capped_and_counted():
    # every other ordinal of 0..199 seen: 100 runs of missing ordinals (plus the tail), 8 listed
    items = [IdentifierExt(7, 1, 1000, o, (ExtItem(o, 1, 2, 0, ""),)).to_bytes() for o in range(0, 200, 2)]
    _, rep = convert_packets(items)
    inc = rep["sets"]["0x0007"]["schema_incomplete"]
    assert inc["received"] == 100 and inc["missing"] == 900
    assert inc["missing_ranges"] == [[1, 1], [3, 3], [5, 5], [7, 7], [9, 9], [11, 11], [13, 13], [15, 15]]
    assert inc["more_ranges"] == 100 - 8  # 99 single gaps and the tail 199..999: 100 runs, 8 listed


def test_convert_of_the_issue_input_is_bounded(bounded, tmp_path):
    src = tmp_path / "hostile.burst"
    src.write_bytes(claim_everything(1700))  # 27 KB, as in the issue
    assert len(src.read_bytes()) < 28_000
    out = tmp_path / "out.fastpack.zst"
    r = bounded.cli("convert", "--from", "burst", str(src), str(out), timeout=120)
    assert r.returncode == 0 and not r.timed_out, r.text
    assert r.peak_rss <= RSS_LIMIT, r.peak_rss
    v = bounded.cli("verify", str(out), timeout=120)
    assert v.returncode == 0 and "SOUND" in v.text, v.text


def test_record_stdin_keeps_recording_and_closes_cleanly(bounded, tmp_path):
    """Hostile packets, then real ones: all recorded, the file is complete (seek table) and SOUND."""
    out = tmp_path / "rec.fastpack.zst"
    stream = claim_everything(1700) + burst_encode_many(good_packets())
    r = bounded.cli("record", "--stdin", "-o", str(out), "--quiet", stdin=stream, timeout=120)
    assert r.returncode == 0 and not r.timed_out, r.text
    assert r.peak_rss <= RSS_LIMIT, r.peak_rss
    v = bounded.cli("verify", str(out), timeout=120)
    assert v.returncode == 0 and "SOUND" in v.text, v.text
    i = bounded.cli("info", "--json", str(out), timeout=120)
    d = json.loads(i.stdout)
    assert d["complete"] is True
    assert d["channels"]["odin/set/0x0996"]["count"] == 4           # the real data after the hostile part
    assert d["odin"]["stats"]["identifiers_ext"] == 1700


def _fat_type_case(n_entries: int, n_fields: int = 200):
    """A custom type of n_fields u8 fields with 250-byte names, and a set of n_entries entries of it:
    its definition metadata, written naively, is n_entries x ~60 KB of JSON from ~60 KB of packets."""
    fields = tuple(TypeField(2, 1, k, f"f{k:03d}".ljust(250, "x")) for k in range(n_fields))
    td = TypeDescriptor(1, 1, 0, (TypeDef(9, n_fields, "fat", fields),)).to_bytes()
    chunks = []
    per = 500
    for start in range(0, n_entries, per):
        its = tuple(ExtItem(0x10000 + o, n_fields, 13, 9, "") for o in range(start, min(n_entries, start + per)))
        chunks.append(IdentifierExt(0x1234, 1, n_entries, start, its).to_bytes())
    data = struct.pack("<BHBIH", 2, 0x1234, 0, 1000, 0) + bytes(n_entries * n_fields)
    return [td] + chunks + [data]


def test_set_metadata_never_exceeds_the_limit(bounded):
    """6000 entries of a 60 KB type: ~360 MB of definition JSON if written whole (over the writer's
    256 MiB record limit, and GBs while built).  Entries are omitted beyond MAX_META_SIZE."""
    code = f"""
import sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from test_odin_reports import _fat_type_case
from fastodin.codec import decode
from fastodin.metadata import decode_meta
from fastodin.odin.mapping import convert_packets, MAX_META_SIZE
data, rep = convert_packets(_fat_type_case(6000))
metas = [r.payload for r in decode(data, namespace=True) if r.id == 0]
sets = [decode_meta(p) for p in metas if b'"odin":"set"' in bytes(p[:40])]
assert max(map(len, metas)) <= MAX_META_SIZE, max(map(len, metas))
assert sets and sets[-1]["entries_omitted"] == 6000 and "entries" not in sets[-1], sets[-1].keys()
print("ok", max(map(len, metas)))
"""
    r = bounded.python(code, timeout=120)
    assert r.returncode == 0 and b"ok" in r.stdout, r.text[-2000:]
    assert r.peak_rss <= RSS_LIMIT, r.peak_rss


def test_small_custom_definitions_are_written_whole():
    data, _ = convert_packets(_fat_type_case(3, n_fields=4))
    metas = [r.payload for r in decode(data, namespace=True) if r.id == 0]
    sets = [json.loads(bytes(p)) for p in metas if b'"odin":"set"' in bytes(p[:40])]
    assert len(sets[-1]["entries"]) == 3 and "entries_omitted" not in sets[-1]
    assert max(map(len, metas)) < MAX_META_SIZE


def test_a_set_written_without_its_entries_is_skipped_with_a_reason():
    """Readers of stored definitions skip the trimmed object, saying why; the packets still decode."""
    from fastodin.odin.decode import StoredDefinitions
    sd = StoredDefinitions()
    sd.add({"odin": "set", "set_id": 1, "definition_identifier": 0, "entries_omitted": 6000})
    assert len(sd) == 0 and "6000 omitted: over the size limit" in sd.errors[0]
