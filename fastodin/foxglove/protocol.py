"""The Foxglove WebSocket protocol (subprotocol ``foxglove.websocket.v1``): the messages we send and
the client messages we accept, byte for byte (spec/foxglove-ws.md).

>>> message_data(3, 1_500_000_000, b"{}").hex()
'0103000000002f6859000000007b7d'
>>> parse_client('{"op": "subscribe", "subscriptions": [{"id": 0, "channelId": 2}]}')
('subscribe', [(0, 2)])
"""
from __future__ import annotations

import base64
import struct
from typing import Any, Dict, List, Optional, Tuple

import orjson

from ..errors import DataError

__all__ = ["SUBPROTOCOL", "server_info", "advertise", "unadvertise", "status", "message_data", "time_message",
           "parse_client", "ws_schema", "BINARY_SCHEMA_ENCODINGS"]

SUBPROTOCOL = "foxglove.websocket.v1"
_DATA = struct.Struct("<BIQ")       # opcode 0x01, subscription id u32, log time u64 ns
_TIME = struct.Struct("<BQ")        # opcode 0x02, time u64 ns
#: schema encodings whose schema data is binary: sent base64-encoded in ``advertise``
BINARY_SCHEMA_ENCODINGS = ("protobuf", "flatbuffer")
#: the most subscriptions one client message may carry
MAX_SUBSCRIPTIONS = 65536


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def server_info(name: str, capabilities: List[str], metadata: Dict[str, str], session_id: str) -> str:
    return _dumps({"op": "serverInfo", "name": name, "capabilities": capabilities, "supportedEncodings": [],
                   "metadata": metadata, "sessionId": session_id})


def advertise(channels: List[Dict[str, Any]]) -> str:
    """``channels``: ``{id, topic, encoding, schemaName, schema, schemaEncoding}`` each."""
    return _dumps({"op": "advertise", "channels": channels})


def unadvertise(ids: List[int]) -> str:
    return _dumps({"op": "unadvertise", "channelIds": ids})


def status(level: int, message: str) -> str:
    """level 0 info, 1 warning, 2 error."""
    return _dumps({"op": "status", "level": level, "message": message})


def message_data(sub_id: int, log_time_ns: int, payload: bytes) -> bytes:
    return _DATA.pack(0x01, sub_id, log_time_ns) + payload


def time_message(ns: int) -> bytes:
    return _TIME.pack(0x02, ns)


def ws_schema(encoding: str, data: bytes) -> str:
    """Schema data as the ``schema`` string of ``advertise``: base64 for binary schema encodings."""
    if encoding in BINARY_SCHEMA_ENCODINGS:
        return base64.b64encode(data).decode("ascii")
    return data.decode("utf-8", "replace")


def _ids(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
        raise DataError(f"{what} must be an integer 0..2**32-1, not {v!r}")
    return v


def parse_client(text: Any) -> Tuple[str, Optional[List[Any]]]:
    """A client text message: ``("subscribe", [(sub id, channel id)])``, ``("unsubscribe", [sub
    ids])`` or ``(op, None)`` for operations we do not offer; DataError if it is malformed."""
    if not isinstance(text, str) or len(text) > 1 << 22:
        raise DataError("client message is not a JSON text message (or is larger than 4 MiB)")
    try:
        m = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise DataError(f"client message is not JSON: {e}") from None
    if not isinstance(m, dict) or not isinstance(m.get("op"), str):
        raise DataError("client message has no 'op'")
    op = m["op"]
    if op == "subscribe":
        subs = m.get("subscriptions")
        if not isinstance(subs, list) or len(subs) > MAX_SUBSCRIPTIONS:
            raise DataError("subscribe: 'subscriptions' must be a list")
        out = []
        for s in subs:
            if not isinstance(s, dict):
                raise DataError("subscribe: each subscription is an object {id, channelId}")
            out.append((_ids(s.get("id"), "subscription id"), _ids(s.get("channelId"), "channelId")))
        return op, out
    if op == "unsubscribe":
        ids = m.get("subscriptionIds")
        if not isinstance(ids, list) or len(ids) > MAX_SUBSCRIPTIONS:
            raise DataError("unsubscribe: 'subscriptionIds' must be a list")
        return op, [_ids(i, "subscription id") for i in ids]
    return op, None
