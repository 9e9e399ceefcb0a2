"""Archive (or raw ``.fastpack``) → MCAP: one MCAP channel per fastodin channel (spec/mcap.md §2).

Typed channels (layouts, ODIN sets and events, id-0 metadata) become JSON messages with a JSON
Schema naming every field; raw channels keep their bytes (schemaless, message encoding
``octet-stream``); channels that came from an MCAP file (``fastodin convert IN.mcap``) get their
topic, schema, encoding, metadata and bytes back.  ``log_time`` = ``publish_time`` = the record
time in ns (exact for archives with an integer-nanosecond time base); records whose time MCAP
cannot hold (NaN, ±inf, negative after ``time_offset``) are counted, not written.  The archive is
read in time windows of about :data:`WINDOW_RECORDS` records, so memory stays bounded.

>>> import os, tempfile, numpy as np
>>> from fastodin.archive import Writer
>>> d = tempfile.mkdtemp()
>>> with Writer(os.path.join(d, "a.fastpack.zst")) as w:
...     w.write_many(np.arange(3) * 0.5, "imu", np.ones((3, 2)))
>>> rep = export_mcap(os.path.join(d, "a.fastpack.zst"), os.path.join(d, "a.mcap"))
>>> rep["messages"], rep["channels"]["imu"]["encoding"]
(3, 'json')
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Union

import orjson

from ..errors import UsageError
from .channels import (IMPORT_TAG, META_TOPIC, RAW_ENCODING, Batch, ChannelPlan, OdinSets, Times, raw_tokens,
                       select_channels, time_windows, window_batches)
from .writer import DEFAULT_CHUNK_SIZE, McapWriter

__all__ = ["export_mcap", "IMPORT_TAG", "RAW_ENCODING", "META_TOPIC", "WINDOW_RECORDS"]


#: records read per time window
WINDOW_RECORDS = 1 << 18


def export_mcap(source: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"], *,
                channels: Any = None, start: Optional[float] = None, end: Optional[float] = None,
                time_offset: float = 0.0, force: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE,
                compression: str = "zstd", level: int = 3, window: int = WINDOW_RECORDS) -> Dict[str, Any]:
    """Write the archive ``source`` as the MCAP file ``out``; returns a report (``messages``,
    ``channels`` {name: {topic, encoding, messages}}, ``skipped`` {nan, inf, negative, too_late},
    ``not_finite_values`` (JSON values left out), ``chunks``, ``bytes``).

    ``channels``/``start``/``end`` select as ``Archive.records`` does (seconds); ``time_offset``
    (seconds) is added to every time first, e.g. to make negative times representable."""
    from ..archive.reader import open_archive

    if not isinstance(time_offset, (int, float)) or not abs(time_offset) < 9e9:
        raise UsageError(f"time_offset must be a number of seconds below 9e9 in size, not {time_offset!r}")
    with open_archive(source, raw_time=True) as ar:
        tb = ar.time_base
        raw_start = tb.raw_from_seconds(start) if tb is not None else start
        raw_end = tb.raw_from_seconds(end) if tb is not None else end
        ids = ar.channel_ids(channels)
        plans, tag, att = select_channels(ar, ids)
        times = Times(tb, int(round(time_offset * 1e9)))
        odin = OdinSets(ar) if any(p.kind == "odin-set" for p in plans) else None
        w = McapWriter(out, chunk_size=chunk_size, compression=compression, level=level, force=force,
                       profile=str(tag.get("profile", "")) if tag else "")
        omitted = 0
        seen = 0
        try:
            for lo, hi in time_windows(ar, ids, raw_start, raw_end, window):
                for p, n_read, batches in window_batches(ar, plans, times, odin, lo, hi):
                    seen += n_read
                    for b in batches:
                        cid = _register(w, p, b)
                        w.add_messages(cid, b.ns, b.tokens.buf, b.tokens.starts, b.tokens.lens, sequence=b.sequence,
                                       publish_time=b.publish)
                        p.messages += int(b.ns.shape[0])
                        omitted += b.omitted
                w.flush()
            if att is not None and tag is not None:
                _attachments(w, ar, att, tag["attachments"], raw_start, raw_end)
            _metadata(w, ar, tag)
            summary = w.close()
        except BaseException:
            w.abort()
            raise
        pids = ar.channel_ids([int(p.name) if p.name == "0" else p.name for p in plans]) or set()
        total = sum(c[0] for e in ar.frames for cid, c in e.channels.items() if cid in pids) \
            if start is None and end is None else seen
    skipped = times.report()
    skipped["nan"] += max(0, total - seen)   # NaN times: no time window holds them
    return {"path": os.fspath(out), "messages": summary["messages"], "chunks": summary["chunks"],
            "bytes": summary["bytes"], "skipped": skipped, "not_finite_values": omitted,
            "channels": {p.name: {"topic": p.kw.get("topic", p.name), "encoding": p.encoding or "",
                                  "messages": p.messages} for p in plans}}


def _register(w: McapWriter, p: ChannelPlan, b: Batch) -> int:
    cid = p.ids.get(b.key)
    if cid is None:
        sid = w.add_schema(*b.schema) if b.schema is not None else 0
        cid = p.ids[b.key] = w.add_channel(p.kw.get("topic", p.name), b.encoding, sid, b.metadata)
        p.encoding = p.encoding or b.encoding
    return cid


def _attachments(w: McapWriter, ar: Any, channel: str, info: List[Any], start: Optional[float],
                 end: Optional[float]) -> None:
    """An import's attachments (records of ``channel``, their names and times in the tag)."""
    t, v = ar.read(channel)
    data = raw_tokens(v)
    if len(data) != len(info):
        return
    for k, a in enumerate(info):
        if not isinstance(a, dict):
            continue
        if (start is not None and t[k] < start) or (end is not None and not t[k] < end):
            continue
        w.add_attachment(int(a.get("log_time", 0)), int(a.get("create_time", 0)), str(a.get("name", "")),
                         str(a.get("media_type", "")), data.message(k))


def _metadata(w: McapWriter, ar: Any, tag: Optional[Dict[str, Any]]) -> None:
    """File and stream tags as Metadata records; an import's own metadata records back as they were."""
    from .. import __version__

    restored = set()
    if tag:
        for item in tag.get("metadata") or []:
            if isinstance(item, list) and len(item) == 3 and isinstance(item[1], str) and isinstance(item[2], dict):
                restored.add(item[0])
                w.add_metadata(item[1], {str(k): str(v) for k, v in item[2].items()})
    tags = {k: v for k, v in (ar.tags or {}).items() if k != IMPORT_TAG and k not in restored}
    if tags:
        w.add_metadata("fastodin.tags", {k: v if isinstance(v, str) else orjson.dumps(v).decode()
                                         for k, v in tags.items()})
    for sid, m in sorted((ar.streams or {}).items()):
        st = m.get("tags") or {}
        if st:
            w.add_metadata(f"fastodin.stream/{sid}", {str(k): v if isinstance(v, str) else orjson.dumps(v).decode()
                                                     for k, v in st.items()})
    if not tag:     # (an import's own metadata records went back above, unchanged)
        w.add_metadata("fastodin", {"source": os.path.basename(ar.path), "fastodin": __version__})

