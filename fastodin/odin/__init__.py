"""ODIN streams: packets, BURST framing, definitions, typed decode, FastPack mapping, replay, simulator.

One module per concern:

* :mod:`~fastodin.odin.crc`       CRC-16/CCITT-FALSE, set ids, vectorised CRC of many frames
* :mod:`~fastodin.odin.packets`   parse/build 0x01 0x02 0x03 0x04 0x0B packets (byte-exact)
* :mod:`~fastodin.odin.burst`     BURST link framing (COBS + CRC16 BE + 0x00), streaming decoder
* :mod:`~fastodin.odin.types`     element type codes -> numpy dtypes
* :mod:`~fastodin.odin.schema`    set definitions (EntryDef, SetDef), 0x03/0x04 assembly
* :mod:`~fastodin.odin.odindb`    OdinDB ``.odin`` JSON loader
* :mod:`~fastodin.odin.sequence`  sequence gap/duplicate/reorder tracking, tick unwrapping
* :mod:`~fastodin.odin.stream`    packet-by-packet stream state and counters
* :mod:`~fastodin.odin.table`     decoded per-set tables
* :mod:`~fastodin.odin.decode`    :func:`decode` -> per-set tables (numpy fast path)
* :mod:`~fastodin.odin.mapping`   lossless ODIN -> FastPack mapping (channels, metadata)
* :mod:`~fastodin.odin.replay`    replay recorded packets (paced, BURST)
* :mod:`~fastodin.odin.simulator` a simulated ODIN device

>>> from fastodin.odin import Simulator, decode
>>> r = decode(Simulator(seed=3).packets(n=200))
>>> sum(len(t) for t in r.values()) > 100
True
"""
from __future__ import annotations

from .burst import BurstDecoder, BurstStats, burst_decode, burst_encode, burst_encode_many, cobs_decode, cobs_encode
from .crc import crc16, set_id
from .decode import DecodeResult, decode, decode_packets, packets_from_fastpack
from .mapping import (FastPackSink, OdinToFastPack, WriterSink, convert_burst, convert_packets, event_channel,
                      identifier_channel, set_channel, unresolved_channel)
from .odindb import OdinDB, load_odin_db
from .packets import (Data, Event, ExtItem, Identifier, IdentifierEntry, IdentifierExt, TypeDef, TypeDescriptor,
                      TypeField, UnknownPacket, build_packet, parse_packet)
from .replay import iter_packets, replay, replay_burst, timed_packets
from .schema import EntryDef, SetDef
from .sequence import SequenceTracker, TickUnwrapper
from .simulator import Simulator, benchmark_device, default_device
from .stream import OdinStream
from .table import DEFAULT_COUNTS_PER_SECOND, EventTable, SetTable

__all__ = [
    "BurstDecoder", "BurstStats", "burst_decode", "burst_encode", "burst_encode_many", "cobs_decode", "cobs_encode",
    "crc16", "set_id", "DecodeResult", "decode", "decode_packets", "packets_from_fastpack", "FastPackSink",
    "OdinToFastPack", "WriterSink", "convert_burst", "convert_packets", "event_channel", "identifier_channel",
    "set_channel", "unresolved_channel", "OdinDB", "load_odin_db", "Data", "Event", "ExtItem", "Identifier",
    "IdentifierEntry", "IdentifierExt", "TypeDef", "TypeDescriptor", "TypeField", "UnknownPacket", "build_packet",
    "parse_packet", "iter_packets", "replay", "replay_burst", "timed_packets", "EntryDef", "SetDef",
    "SequenceTracker", "TickUnwrapper", "Simulator", "benchmark_device", "default_device", "OdinStream",
    "DEFAULT_COUNTS_PER_SECOND", "EventTable", "SetTable",
]
