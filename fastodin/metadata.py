"""Id-0 metadata payloads: JSON or MessagePack, decided by the first byte as the reference does.

>>> decode_meta(encode_meta({"a": 1}))
{'a': 1}
>>> decode_meta(encode_meta([1, 2], format="msgpack"))
[1, 2]
"""
from __future__ import annotations

from typing import Any, Union

import msgpack
import orjson

from .errors import MetadataError, UsageError

__all__ = ["encode_meta", "decode_meta", "META_FORMATS"]

META_FORMATS = ("json", "msgpack")

Buffer = Union[bytes, bytearray, memoryview]


def encode_meta(obj: Any, format: str = "json") -> bytes:
    """Encode a metadata object (a map or an array) as a JSON (default) or MessagePack payload.

    >>> encode_meta({"v": 1})
    b'{"v":1}'
    """
    if not isinstance(obj, (dict, list, tuple)):
        raise UsageError(
            f"metadata must be a map or an array (the reference decodes only those), got {type(obj).__name__}"
        )
    if format == "json":
        try:
            return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
        except TypeError as e:
            raise UsageError(f"metadata cannot be encoded as JSON: {e}") from None
    if format == "msgpack":
        try:
            return msgpack.packb(obj, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise UsageError(f"metadata cannot be encoded as MessagePack: {e}") from None
    raise UsageError(f"unknown metadata format {format!r}; expected one of {META_FORMATS}")


class _ExtType(Exception):
    pass


def _no_ext(code: int, data: bytes) -> Any:
    raise _ExtType(code)


def decode_meta(payload: Buffer, *, offset: int | None = None) -> Any:
    """Decode an id-0 payload: first byte ``[`` or ``{`` -> JSON, otherwise MessagePack; empty -> None.

    MessagePack strings that are not valid UTF-8 (the Perl encoder writes Latin-1 bytes for
    non-upgraded strings) are kept losslessly with ``surrogateescape``.  ``offset`` (the record's
    offset in the stream) only enriches the error message.

    >>> decode_meta(b'{"x": [1, 2]}')
    {'x': [1, 2]}
    >>> decode_meta(b"") is None
    True
    """
    data = bytes(payload)
    if not data:
        return None
    where = f" at offset {offset}" if offset is not None else ""
    if data[0] in (0x5B, 0x7B):  # '[' or '{'
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise MetadataError(
                f"id-0 metadata{where} starts like JSON but is not valid JSON: {e}", offset=offset, length=len(data)
            ) from None
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=False, unicode_errors="surrogateescape", ext_hook=_no_ext
        )
    except _ExtType as e:
        raise MetadataError(
            f"id-0 metadata{where} uses MessagePack extension type {e.args[0]}, which the reference cannot "
            "decode",
            offset=offset,
            length=len(data),
        ) from None
    except msgpack.ExtraData as e:
        raise MetadataError(
            f"id-0 metadata{where} is not JSON and not a single MessagePack value "
            f"({len(e.extra)} extra bytes after the first value)",
            offset=offset,
            length=len(data),
        ) from None
    except Exception as e:  # msgpack raises several types (ValueError, FormatError, StackError...)
        raise MetadataError(
            f"id-0 metadata{where} is neither JSON nor MessagePack: {type(e).__name__}: {e}",
            offset=offset,
            length=len(data),
        ) from None
