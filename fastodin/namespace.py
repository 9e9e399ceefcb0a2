"""Named ids: the name <-> id table of a FastPack namespace.

A namespace maps channel names to the integer ids written on the wire.  Ids are allocated
1, 2, 3, ... in order of first use and are never reused until :meth:`Namespace.reset`.
The names ``""`` and ``"0"`` (and the int ``0``) are never looked up: they are id 0, the
metadata channel.  An encoder and a decoder each keep their own namespace.

>>> ns = Namespace()
>>> ns.allocate("imu"), ns.allocate("gps"), ns.id_for("imu"), ns.name_for(2)
(1, 2, 1, 'gps')
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Union

from .errors import UsageError

__all__ = ["Namespace", "is_meta_key", "name_to_bytes", "name_from_bytes"]

Key = Union[str, bytes, int]


def is_meta_key(key: Key) -> bool:
    """True for the keys that mean id 0 (metadata) in namespace mode: ``0``, ``"0"``, ``""``, ``b""``.

    >>> is_meta_key("0"), is_meta_key("temp")
    (True, False)
    """
    return key == 0 or key == "" or key == "0" or key == b"" or key == b"0"


def name_to_bytes(name: str) -> bytes:
    """The UTF-8 bytes written in a definition record (lossless for names read with surrogateescape).

    >>> name_to_bytes("température")
    b'temp\\xc3\\xa9rature'
    """
    return name.encode("utf-8", "surrogateescape")


def name_from_bytes(raw: Union[bytes, memoryview]) -> str:
    """A name from a definition payload: UTF-8, undecodable bytes kept via surrogateescape.

    >>> name_from_bytes(b"x")
    'x'
    """
    return bytes(raw).decode("utf-8", "surrogateescape")


class Namespace:
    """A name <-> id table with the reference's allocation rule (1, 2, 3, ... in order of first use).

    >>> ns = Namespace()
    >>> ns.allocate("a"); ns.reset(); ns.allocate("b")
    1
    1
    """

    __slots__ = ("_by_name", "_by_id", "_next_id")

    def __init__(self) -> None:
        self._by_name: Dict[str, int] = {}
        self._by_id: Dict[int, str] = {}
        self._next_id = 1

    # lookups -------------------------------------------------------------------------------------
    def lookup(self, name: str) -> Optional[int]:
        """The id of ``name``, or None if it is not defined.

        >>> Namespace().lookup("x") is None
        True
        """
        return self._by_name.get(name)

    def id_for(self, name: str) -> int:
        """The id of a defined name (KeyError-free: UsageError if unknown).

        >>> ns = Namespace(); ns.allocate("x"); ns.id_for("x")
        1
        1
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise UsageError(f"name {name!r} is not defined in this namespace") from None

    def name_for(self, id: int) -> Optional[str]:
        """The name bound to ``id``, or None.

        >>> Namespace().name_for(3) is None
        True
        """
        return self._by_id.get(id)

    @property
    def names(self) -> Dict[int, str]:
        """A copy of the id -> name table."""
        return dict(self._by_id)

    @property
    def next_id(self) -> int:
        """The id the next new name will get."""
        return self._next_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    # changes -------------------------------------------------------------------------------------
    def allocate(self, name: str) -> int:
        """Give ``name`` the next free id and return it (encoder side).

        >>> Namespace().allocate("first")
        1
        """
        if is_meta_key(name):
            raise UsageError(f"name {name!r} is reserved for id 0 (metadata) and cannot be allocated")
        if name in self._by_name:
            raise UsageError(f"name {name!r} is already defined as id {self._by_name[name]}")
        id = self._next_id
        if id > 0xFFFFFFFF:
            raise UsageError("namespace is full: all 2**32-1 ids are in use; write a reset first")
        self._next_id = id + 1
        self._by_name[name] = id
        self._by_id[id] = name
        return id

    def define(self, id: int, name: str) -> None:
        """Bind ``id`` to ``name`` as read from a definition record (decoder side).

        >>> ns = Namespace(); ns.define(7, "x"); ns.id_for("x")
        7
        """
        old = self._by_id.get(id)
        if old is not None and self._by_name.get(old) == id:
            del self._by_name[old]
        self._by_id[id] = name
        self._by_name[name] = id
        if id >= self._next_id:
            self._next_id = id + 1

    def reset(self) -> None:
        """Clear the table; the next new name gets id 1 again.

        >>> ns = Namespace(); ns.allocate("a"); ns.reset(); len(ns)
        1
        0
        """
        self._by_name.clear()
        self._by_id.clear()
        self._next_id = 1

    def copy(self) -> "Namespace":
        """An independent copy of this table."""
        ns = Namespace()
        ns._by_name = dict(self._by_name)
        ns._by_id = dict(self._by_id)
        ns._next_id = self._next_id
        return ns

    def __repr__(self) -> str:
        return f"Namespace({self._by_id!r})"
