"""Packet build/parse round trips and robustness (hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastodin.errors import OdinError
from fastodin.odin import crc16, set_id
from fastodin.odin.crc import crc16_frames, crc16_rows
from fastodin.odin.packets import (Data, Event, ExtItem, Identifier, IdentifierEntry, IdentifierExt, TypeDef,
                                   TypeDescriptor, TypeField, UnknownPacket, parse_packet)

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
names = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)

identifiers = st.builds(Identifier, u16, u32, st.lists(st.builds(IdentifierEntry, u32, u16), max_size=20).map(tuple), u8)
datas = st.builds(Data, u16, u32, u16, st.binary(max_size=200), u8)
events = st.builds(Event, u16, u32, st.binary(max_size=100), u16, u8)
items = st.builds(ExtItem, u32, u16, u8, u16, names)
exts = st.builds(lambda sid, d, its, start, r: IdentifierExt(sid, d, start + len(its) + 1, start, tuple(its), r),
                 u16, u32, st.lists(items, max_size=8), st.integers(0, 1000), u8)
fields = st.builds(TypeField, u8, u16, u16, names)
typedefs = st.builds(TypeDef, u16, u16, names, st.lists(fields, max_size=6).map(tuple))
typedescs = st.builds(TypeDescriptor, u32, u16, u16, st.lists(typedefs, max_size=4).map(tuple), u16, u8)


@settings(max_examples=200)
@given(st.one_of(identifiers, datas, events, exts, typedescs))
def test_build_parse_round_trip(p):
    raw = p.to_bytes()
    q = parse_packet(raw)
    assert q == p
    assert q.to_bytes() == raw


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_random_bytes_never_crash(raw):
    try:
        p = parse_packet(raw)
    except OdinError as e:
        assert e.length == len(raw)
        return
    assert p.to_bytes() == raw


@settings(max_examples=200)
@given(st.one_of(identifiers, exts, typedescs), st.data())
def test_truncations_and_flips_are_clean(p, data):
    raw = bytearray(p.to_bytes())
    cut = data.draw(st.integers(0, len(raw)))
    for b in (bytes(raw[:cut]),):
        try:
            q = parse_packet(b)
            assert q.to_bytes() == b
        except OdinError:
            pass
    if raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
        try:
            q = parse_packet(bytes(raw))
            assert q.to_bytes() == bytes(raw)
        except OdinError:
            pass


def test_unknown_type_round_trip():
    for t in (0, 5, 0x0A, 0x0C, 0xFF):
        p = parse_packet(bytes([t, 1, 2, 3, 4]))
        assert isinstance(p, UnknownPacket) and p.packet_type == t


def test_identifier_data_size():
    p = Identifier(1, 2, (IdentifierEntry(1, 4), IdentifierEntry(2, 6)))
    assert p.data_size == 10


def test_name_too_long_is_an_error():
    with pytest.raises(OdinError):
        IdentifierExt(1, 0, 1, 0, (ExtItem(1, 4, 10, 0, "x" * 256),)).to_bytes()


@settings(max_examples=100)
@given(st.lists(st.binary(min_size=0, max_size=70), min_size=1, max_size=30))
def test_vector_crc_equals_scalar(frames):
    buf = b"".join(frames)
    a = np.frombuffer(buf, np.uint8)
    lens = np.array([len(f) for f in frames], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
    got = crc16_frames(a, starts, lens).tolist()
    assert got == [crc16(f) for f in frames]


def test_crc_rows_odd_and_even_widths():
    rng = np.random.default_rng(0)
    for w in (1, 2, 3, 8, 9, 170):
        rows = rng.integers(0, 256, (7, w), dtype=np.uint8)
        assert crc16_rows(rows).tolist() == [crc16(r.tobytes()) for r in rows]


def test_crc_residue_property():
    for data in (b"", b"\x00", b"hello", bytes(range(256))):
        c = crc16(data)
        assert crc16(data + c.to_bytes(2, "big")) == 0


def test_set_id_is_crc_over_le_ids():
    ids = [0x01010000, 0x02]
    assert set_id(ids) == crc16(b"\x00\x00\x01\x01\x02\x00\x00\x00")


@settings(max_examples=200)
@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_fast_crc_equals_table_driven(data, init):
    from fastodin.odin.crc import crc16_table
    assert crc16(data, init) == crc16_table(data, init)
