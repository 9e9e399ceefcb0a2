"""ODIN element types and their numpy dtypes.

Codes are ODIN_element_type_t (the same in 0x03 IDENTIFIER_EXT and 0x04 TYPE_DESCRIPTOR):
0 bool, 1 hex (u8), 2 u8, 3 u16, 4 u32, 5 u64, 6 i8, 7 i16, 8 i32, 9 i64, 10 f32, 11 f64,
12 char, 13 custom (struct described by 0x04).  Codes >= 14 are unknown: kept as raw bytes.

>>> ELEMENT_NAMES[10], element_code("f32"), element_dtype(10)
('f32', 10, dtype('float32'))
>>> entry_dtype(7, 4)            # i16 entry of 4 bytes: an array of 2
dtype(('<i2', (2,)))
>>> entry_dtype(12, 8)           # char entry: an 8-byte string
dtype('S8')
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = [
    "BOOL", "HEX", "U8", "U16", "U32", "U64", "I8", "I16", "I32", "I64", "F32", "F64", "CHAR",
    "CUSTOM", "ELEMENT_NAMES", "ELEMENT_SIZES", "element_code", "element_dtype", "element_size",
    "entry_dtype", "is_known_element", "raw_dtype",
]

BOOL, HEX, U8, U16, U32, U64, I8, I16, I32, I64, F32, F64, CHAR, CUSTOM = range(14)

ELEMENT_NAMES: Dict[int, str] = {
    BOOL: "bool", HEX: "hex", U8: "u8", U16: "u16", U32: "u32", U64: "u64", I8: "i8", I16: "i16",
    I32: "i32", I64: "i64", F32: "f32", F64: "f64", CHAR: "char", CUSTOM: "custom",
}
_CODES = {v: k for k, v in ELEMENT_NAMES.items()}

ELEMENT_SIZES: Dict[int, int] = {
    BOOL: 1, HEX: 1, U8: 1, U16: 2, U32: 4, U64: 8, I8: 1, I16: 2, I32: 4, I64: 8, F32: 4, F64: 8,
    CHAR: 1,
}

_DTYPES: Dict[int, np.dtype] = {
    BOOL: np.dtype("?"), HEX: np.dtype("u1"), U8: np.dtype("u1"), U16: np.dtype("<u2"),
    U32: np.dtype("<u4"), U64: np.dtype("<u8"), I8: np.dtype("i1"), I16: np.dtype("<i2"),
    I32: np.dtype("<i4"), I64: np.dtype("<i8"), F32: np.dtype("<f4"), F64: np.dtype("<f8"),
    CHAR: np.dtype("S1"),
}


def is_known_element(code: int) -> bool:
    """True for codes 0..13.

    >>> is_known_element(14)
    False
    """
    return 0 <= code <= CUSTOM


def element_code(name: str) -> Optional[int]:
    """Code for an element type name (``f32``, ``bool``, ``char``, ...); None if not primitive.

    >>> element_code("u16"), element_code("vec3")
    (3, None)
    """
    return _CODES.get(str(name).lower()) if str(name).lower() != "custom" else None


def element_dtype(code: int) -> np.dtype:
    """numpy dtype of ONE element of a primitive type code (not CUSTOM, not unknown).

    >>> element_dtype(0)
    dtype('bool')
    """
    return _DTYPES[code]


def element_size(code: int) -> Optional[int]:
    """Size in bytes of one element of a primitive code; None for CUSTOM/unknown.

    >>> element_size(11)
    8
    """
    return ELEMENT_SIZES.get(code)


@lru_cache(maxsize=1 << 16)
def raw_dtype(size: int) -> np.dtype:
    """The dtype used for bytes we cannot type: ``V{size}`` (an opaque void of that many bytes;
    one shared object per size: 65,536 raw sets do not hold 65,536 copies).

    >>> raw_dtype(3)
    dtype('V3')
    """
    return np.dtype("V%d" % size)


def entry_dtype(code: int, size: int, custom: Optional[np.dtype] = None) -> Optional[np.dtype]:
    """dtype for one entry of ``size`` bytes in a DATA packet; None when it cannot be typed.

    Primitive: scalar when size == element size, else a sub-array of ``size // element`` items
    (size must be a multiple).  CHAR: ``S{size}``.  CUSTOM: the struct dtype ``custom`` (whose
    itemsize must divide size; several make a sub-array).

    >>> entry_dtype(10, 12)
    dtype(('<f4', (3,)))
    >>> entry_dtype(10, 6) is None
    True
    """
    if size <= 0:
        return None
    if code == CHAR:
        return np.dtype("S%d" % size)
    if code == CUSTOM:
        if custom is None or custom.itemsize <= 0 or size % custom.itemsize:
            return None
        n = size // custom.itemsize
        return custom if n == 1 else np.dtype((custom, (n,)))
    if code not in _DTYPES:
        return None
    base = _DTYPES[code]
    if size % base.itemsize:
        return None
    n = size // base.itemsize
    return base if n == 1 else np.dtype((base, (n,)))


def _natural_layout(fields: "list[Tuple[str, np.dtype]]") -> Tuple[list, int, int]:
    """C natural-alignment offsets for (name, dtype) fields: (offsets, end, alignment)."""
    off = 0
    offsets = []
    max_al = 1
    for _, dt in fields:
        al = dt.base.alignment if dt.subdtype is not None else dt.alignment
        al = max(1, min(al, 8))
        max_al = max(max_al, al)
        off = (off + al - 1) // al * al
        offsets.append(off)
        off += dt.itemsize
    return offsets, off, max_al
