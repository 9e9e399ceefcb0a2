"""Shared helpers for the ODIN tests: golden vector access."""
from __future__ import annotations

import json
import os
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ODIN_DIR = os.path.join(HERE, "vectors", "odin")


def golden(name: str) -> bytes:
    with open(os.path.join(ODIN_DIR, name), "rb") as f:
        return f.read()


def manifest() -> Dict:
    with open(os.path.join(ODIN_DIR, "manifest.json")) as f:
        return json.load(f)


def manifest_packets() -> List[Dict]:
    return manifest()["packets"]


GOLDEN_DB = os.path.join(ODIN_DIR, "golden_od.odin.json")
GOLDEN_DB_ARRAY_AS_PARAM = os.path.join(ODIN_DIR, "golden_od_array_as_parameter.odin.json")
SET1_STREAM = ["01_identifier.bin", "02_data_seq0.bin", "02_data_seq1.bin", "02_data_seq2.bin", "02_data_seq3.bin",
               "04_event.bin"]
EXT_CHUNKS = ["05_identifier_ext_chunk%d.bin" % i for i in range(5)]


# ------------------------------------------------------------------------------------------
# golden packets: parse to manifest values, rebuild byte-identical

import struct as _struct

import numpy as np
import pytest

from fastodin.errors import OdinError
from fastodin.odin import crc16, set_id
from fastodin.odin.packets import (Data, Event, Identifier, IdentifierExt, TypeDescriptor, UnknownPacket,
                                   parse_packet)


@pytest.mark.parametrize("entry", manifest_packets(), ids=lambda e: e["file"])
def test_golden_packet_rebuilds_byte_identical(entry):
    raw = golden(entry["file"])
    assert raw.hex(" ") == entry["hex"]
    p = parse_packet(raw)
    assert p.to_bytes() == raw
    assert len(raw) == entry["length"]


def test_identifier_fields_match_manifest():
    e = manifest_packets()[0]
    p = parse_packet(golden(e["file"]))
    assert isinstance(p, Identifier)
    assert p.set_id == int(e["header"]["identifier_crc16"], 16)
    assert p.reserved == e["header"]["reserved"]
    assert p.definition_identifier == e["header"]["definition_identifier"]
    assert [(x.global_id, x.size) for x in p.entries] == [(x["id_int"], x["size"]) for x in e["entries"]]
    assert set_id(x.global_id for x in p.entries) == p.set_id == 0x0996


@pytest.mark.parametrize("entry", [e for e in manifest_packets() if e["type"].startswith("0x02") and "header" in e],
                         ids=lambda e: e["file"])
def test_data_header_matches_manifest(entry):
    p = parse_packet(golden(entry["file"]))
    assert isinstance(p, Data)
    assert p.timestamp == entry["header"]["timestamp"]
    assert p.sequence == entry["header"]["sequence"]
    if "values_in_identifier_order" in entry:
        v = entry["values_in_identifier_order"]
        f = _struct.unpack("<ffIiIfhhi", p.payload)
        assert f[0] == v["sensors.temperature"] and f[1] == v["sensors.pressure"]
        assert f[2] == v["sensors.counter"] and f[3] == v["sensors.offset"]
        assert f[4] == v["system.uptime_ms"] and list(f[6:8]) == v["system.axis"]
        assert f[8] == v["system.error_code"]
        assert np.float32(v["system.voltage"]) == np.float32(f[5])


def test_event_fields_and_unwritten_bytes():
    e = parse_packet(golden("04_event.bin"))
    assert isinstance(e, Event)
    assert (e.event_id, e.timestamp, e.payload.hex()) == (7, 1045, "01020304646f6f722d6f70656e")
    aa = parse_packet(golden("04_event_prefilled_AA.bin"))
    # bytes 3, 8, 9 are never written by the reference: we keep them to rebuild identically
    assert (aa.reserved, aa.sequence) == (0xAA, 0xAAAA)
    assert aa.to_bytes() == golden("04_event_prefilled_AA.bin")
    assert aa.payload == e.payload


def test_identifier_ext_chunks_match_manifest():
    names = []
    for i, f in enumerate(EXT_CHUNKS):
        p = parse_packet(golden(f))
        assert isinstance(p, IdentifierExt)
        h = next(x for x in manifest_packets() if x["file"] == f)["header"]
        assert (p.set_id, p.definition_identifier, p.total_count, p.start_ordinal) == (
            int(h["identifier_crc16"], 16), h["definition_identifier"], h["total_count"], h["start_ordinal"])
        names += [it.name for it in p.items]
    assert names == [x["name"] for x in manifest_packets()[0]["entries"]]


def test_type_descriptor_matches_manifest():
    p = parse_packet(golden("06_type_descriptor.bin"))
    assert isinstance(p, TypeDescriptor)
    want = next(x for x in manifest_packets() if x["file"] == "06_type_descriptor.bin")["types"][0]
    t = p.types[0]
    assert (t.type_id, t.name, t.size) == (want["type_id"], want["name"], want["size"])
    assert [(f.name, f.size, f.offset) for f in t.fields] == [(a, c, d) for a, _, c, d in want["fields"]]
    assert [f.element_type for f in t.fields] == [10, 10, 10]


def test_set2_crc():
    p = parse_packet(golden("07_set2_identifier.bin"))
    assert set_id(e.global_id for e in p.entries) == 0xCC4D == p.set_id
    ext = parse_packet(golden("07_set2_identifier_ext.bin"))
    assert [(i.element_type, i.type_id) for i in ext.items] == [(13, 0x42), (10, 0)]


def test_crc16_check_value_and_empty_set():
    assert crc16(b"123456789") == 0x29B1
    assert set_id([]) == 0xFFFF
    assert crc16(b"") == 0xFFFF


# ------------------------------------------------------------------------------------------
# malformed packets: clear OdinError with offset/length, never struct.error/IndexError

@pytest.mark.parametrize("raw,what", [
    (b"", "empty"),
    (b"\x02\x96", "too short"),
    (b"\x02\x96\x09\x00\x01", "too short"),
    (b"\x01\x96\x09\x00\x0b\x0a\x00", "too short"),
    (b"\x01\x96\x09\x00\x0b\x0a\x00\x00\x01\x02\x03", "% 6"),
    (b"\x03\x96\x09\x00\x0b\x0a\x00\x00\x08\x00", "too short"),
    (b"\x03\x96\x09\x00\x0b\x0a\x00\x00\x08\x00\x00\x00\x01\x02", "cut"),
    (b"\x03\x96\x09\x00\x0b\x0a\x00\x00\x08\x00\x00\x00" + b"\x00\x00\x01\x01\x04\x00\x0a\x13\x00\x00abc", "overruns"),
    (b"\x03\x96\x09\x00\x0b\x0a\x00\x00\x01\x00\x05\x00" + b"\x00\x00\x01\x01\x04\x00\x0a\x01\x00\x00a", "exceed"),
    (b"\x04\x00\x00\x00\x0b\x0a\x00\x00\x01\x00\x00\x00\x42\x00", "cut"),
    (b"\x04\x00\x00\x00\x0b\x0a\x00\x00\x01\x00\x00\x00\x42\x00\x0c\x00\x01\x09ab", "overruns"),
    (b"\x04\x00\x00\x00\x0b\x0a\x00\x00\x01\x00\x00\x00\x42\x00\x0c\x00\x01\x01a\x0a\x04", "cut"),
    (b"\x04\x00\x00\x00\x0b\x0a\x00\x00\x01\x00\x00\x00\x42\x00\x0c\x00\x01\x01a\x0a\x04\x00\x00\x00\x05x", "overruns"),
    (b"\x0b\x07\x00\x00\x15", "too short"),
])
def test_malformed_packets_raise_odin_error(raw, what):
    with pytest.raises(OdinError) as ei:
        parse_packet(raw, index=3)
    assert what in str(ei.value)
    assert ei.value.length == len(raw)
    assert ei.value.record == 3
    assert isinstance(ei.value, ValueError)


def test_unknown_packet_type_kept_raw():
    p = parse_packet(b"\x7f\x01\x02\x03")
    assert isinstance(p, UnknownPacket)
    assert p.type == 0x7F and p.to_bytes() == b"\x7f\x01\x02\x03"


def test_set2_data_values():
    p = parse_packet(golden("07_set2_data.bin"))
    assert (p.set_id, p.timestamp, p.sequence) == (0xCC4D, 3000, 0)
    v = np.frombuffer(p.payload, "<f4")
    want = next(x for x in manifest_packets() if x["file"] == "07_set2_data.bin")["values"]
    assert v[:3].tolist() == [np.float32(x) for x in want["imu.accel"]]
    assert v[3:].tolist() == want["imu.gyro_raw"]
