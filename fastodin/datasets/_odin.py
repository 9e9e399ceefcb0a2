"""The definition an ODIN set's DATA channel is typed by, in one file (the dataset's one ODIN rule).

:func:`set_packet_dtype` asks :func:`fastodin.odin.decode` -- the one home of how definitions
are learned (identifier packets, type descriptors, the definitions a recording stores in its
id-0 metadata) -- with the file's id-0 metadata, the set's identifier packets and type
descriptors up to its first DATA record, and that record.  So a dataset types each DATA packet
exactly as ``decode`` does, and decompresses only the frames that hold those records (typically
the first and the last, not the data in between).  Partitions then read the packets
(``Archive.read(..., dtype="u1", frames=...)``) and view them with the returned dtype: a typed
``Archive.read`` of a set looks its definitions up again on every call (every frame with identifier
packets up to the window's end), which a partition of a long capture must not pay.  The values
equal those of a typed ``Archive.read`` (tested); :class:`Schema` takes either.

>>> import fastodin, os, tempfile
>>> from fastodin.odin import Simulator, OdinToFastPack, WriterSink
>>> path = os.path.join(tempfile.mkdtemp(), "o.fastpack.zst")
>>> with fastodin.Writer(path) as w:
...     c = OdinToFastPack(WriterSink(w)); c.add_many(Simulator(seed=1).packets(duration=0.2)); _ = c.close()
>>> with fastodin.open(path) as ar:
...     set_packet_dtype(ar, "odin/set/0x9D05").names[:5]
('type', 'set_id', 'reserved', 'timestamp', 'sequence')
"""
from __future__ import annotations

import math
from itertools import chain, islice
from typing import Any, List

import numpy as np

from ..errors import DataError, SchemaMismatch
from ..metadata import decode_meta
from ._schema import odin_set_id

__all__ = ["set_packet_dtype"]


def set_packet_dtype(ar: Any, channel: str) -> np.dtype:
    """The DATA packet dtype of ODIN set channel ``channel`` in open archive ``ar``, as
    :func:`fastodin.odin.decode` types it.  SchemaMismatch if the file stores more than one
    definition layout for the set (a set that changes inside one file is not one table)."""
    from ..odin import decode
    from ..odin.decode import stored_set_def
    from ..odin.mapping import TYPES_CHANNEL, identifier_channel

    sid = odin_set_id(channel)
    if sid is None:
        raise DataError(f"{ar.path}: {channel!r} is not an ODIN set channel")
    first = list(islice(ar.records(channels=channel), 1))
    if not first:
        raise DataError(f"{ar.path}: {channel} holds no DATA records")
    t0 = first[0].time
    meta = list(ar.records(channels=[0]))
    ident = [n for n in (identifier_channel(sid), TYPES_CHANNEL) if n in ar.ids]
    end = math.nextafter(t0, math.inf) if t0 == t0 else None
    defs = list(ar.records(channels=ident, end=end)) if ident else []
    res = decode(chain(meta, defs, first))
    table = res.get(sid)
    if table is None:
        raise DataError(f"{ar.path}: {channel}: no definition of set 0x{sid:04X} before its first DATA record "
                        f"(fastodin.odin.decode lists it as undefined)")
    layouts: List[Any] = []          # (definition, time first stored), one per distinct layout
    for r in meta:
        try:
            m = decode_meta(r.payload)
        except DataError:
            continue
        if isinstance(m, dict) and m.get("odin") == "set" and m.get("set_id") == sid:
            try:
                d = stored_set_def(m)
            except DataError:
                continue
            if not any(d.same_layout(x) for x, _t in layouts):
                layouts.append((d, r.time))
    if len(layouts) > 1:
        raise SchemaMismatch(f"{ar.path}: the definition of set 0x{sid:04X} changes inside the file "
                             f"({len(layouts)} layouts, from times {', '.join(repr(t) for _d, t in layouts)}); "
                             f"fastodin.odin.decode(path).other_layouts has the earlier ones", channel=channel,
                             schemas={f"layout {k} (from time {t!r})": [ar.path] for k, (_d, t) in enumerate(layouts)})
    return table.records.dtype
