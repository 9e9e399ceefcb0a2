"""MCAP → archive: each MCAP channel a fastodin channel, message bytes as payloads (spec/mcap.md §5).

Times: the archive declares an integer-nanosecond time base (:mod:`fastodin.timebase`) whose
exact origin is the first message's ``log_time``; each record time is ``log_time − origin`` in ns,
exact while it is below 2**53 ns (104 days), so exporting the archive back gives every
``log_time`` exactly.  Schemas, channel definitions, the Header, metadata records and attachments
are kept in the file tag ``mcap``; each metadata record is also a file tag of its own name; each
attachment is a record of the channel the tag names; a channel whose messages have a
``publish_time`` other than their ``log_time`` or a non-zero ``sequence`` gets a companion channel
(``TOPIC#mcap``: one ``{sequence u32, publish_time u64}`` record per message, in message order).
What cannot be carried (private or unknown records, a cut-off tail, inexact times) is counted in
the report, never dropped silently.

>>> import os, tempfile, numpy as np
>>> from fastodin.mcap.writer import McapWriter
>>> d = tempfile.mkdtemp()
>>> with McapWriter(os.path.join(d, "in.mcap")) as w:
...     c = w.add_channel("/a", "octet-stream")
...     w.add_messages(c, np.array([1_700_000_000_000_000_001], np.uint64), b"hi", np.array([0]), np.array([2]))
>>> rep = import_mcap(os.path.join(d, "in.mcap"), os.path.join(d, "out.fastpack.zst"))
>>> rep["messages"], rep["channels"]
(1, {'/a': '/a'})
"""
from __future__ import annotations

import base64
import os
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ..archive.lock import replace_unless_live
from ..timebase import EXACT_NS_LIMIT, TimeBase
from . import _format as F
from .export import IMPORT_TAG
from .reader import McapReader, MessageBatch

__all__ = ["import_mcap", "ATTACHMENT_CHANNEL", "COMPANION"]

#: channel that holds an MCAP file's attachments (made unique if a topic has that name)
ATTACHMENT_CHANNEL = "mcap/attachments"


def _unique(name: str, used: set, suffix: str) -> str:
    if name and name != "0" and name not in used:
        return name
    k = f"{name}#{suffix}"
    while k in used:
        k += "_"
    return k


class _Import:
    def __init__(self, out: str, preset: str, src: str) -> None:
        self.out = out
        self.preset = preset
        self.src = src
        self.w: Any = None
        self.tb: Optional[TimeBase] = None
        self.names: Dict[int, str] = {}           # MCAP channel id -> archive channel
        self.used: set = set()
        self.tag: Dict[str, Any] = {"version": 1, "profile": "", "library": "", "schemas": {}, "channels": {},
                                    "metadata": [], "attachments": []}
        self.meta_tags: List[Any] = []
        self.companions: set = set()              # MCAP channel ids that get a companion channel
        self.comp_names: Dict[int, str] = {}
        self.messages = 0
        self.inexact = 0
        self.pending_att: List[Any] = []

    def writer(self, first_ns: int) -> Any:
        if self.w is None:
            from ..archive.writer import Writer

            self.tb = TimeBase.from_ns(first_ns)
            self.w = Writer(self.out, preset=self.preset, time_base=self.tb, overwrite=True)   # our temporary
        return self.w

    def channel(self, ch: Any) -> None:
        name = _unique(ch.topic, self.used, str(ch.id))
        self.used.add(name)
        self.names[ch.id] = name
        self.tag["channels"][str(ch.id)] = {"topic": ch.topic, "channel": name, "message_encoding": ch.message_encoding,
                                            "schema_id": ch.schema_id, "metadata": dict(ch.metadata)}
        if ch.id in self.companions:    # sequence and publish_time of every message, in message order
            comp = _unique(f"{name}#mcap", self.used, str(ch.id))
            self.used.add(comp)
            self.comp_names[ch.id] = comp
            self.tag["channels"][str(ch.id)]["companion"] = comp

    def schema(self, s: Any) -> None:
        self.tag["schemas"][str(s.id)] = {"name": s.name, "encoding": s.encoding,
                                          "data": base64.b64encode(s.data).decode("ascii")}

    def messages_of(self, b: MessageBatch) -> None:
        w = self.writer(int(b.log_time[0]))
        assert self.tb is not None
        raw = self.tb.raw_from_ns(b.log_time)
        self.inexact += int((np.abs(raw) >= EXACT_NS_LIMIT).sum())
        cids = b.channel
        u = np.unique(cids)
        src = np.frombuffer(b.buf, np.uint8)
        for c in u.tolist():
            sel = np.flatnonzero(cids == c) if u.shape[0] > 1 else np.arange(len(b))
            name = self.names[c]
            offs, lens = b.offset[sel], b.length[sel]
            L = int(lens[0])
            if sel.shape[0] > 1 and bool((lens == L).all()):
                rows = src[(offs[:, None] + np.arange(L)).reshape(-1)].reshape(-1, L) if L else \
                    np.zeros((sel.shape[0], 0), np.uint8)
                w.write_many(raw[sel], name, rows)
            else:
                write = w.write
                mv = b.buf
                for t, o, n in zip(raw[sel].tolist(), offs.tolist(), lens.tolist()):
                    write(t, name, mv[o:o + n])
            comp = self.comp_names.get(c)
            if comp is not None:
                extra = np.empty(sel.shape[0], COMPANION)
                extra["sequence"] = b.sequence[sel]
                extra["publish_time"] = b.publish_time[sel]
                w.write_many(raw[sel], comp, extra)
            self.messages += int(sel.shape[0])

    def attachment(self, a: Any) -> None:
        self.pending_att.append(a)

    def finish(self) -> None:
        first = int(self.pending_att[0][0]) if self.pending_att else 0
        w = self.writer(first)
        assert self.tb is not None
        if self.pending_att:
            ch = _unique(ATTACHMENT_CHANNEL, self.used, "1")
            self.tag["attachment_channel"] = ch
            for log, create, name, media, data in self.pending_att:
                t = float(self.tb.raw_from_ns(np.array([log], np.uint64))[0])
                w.write(t, ch, data)
                self.tag["attachments"].append({"name": name, "media_type": media, "create_time": create,
                                                "log_time": log})
        for tname, _name, d in self.meta_tags:
            w.set_tag(tname, d)
        w.set_tag(IMPORT_TAG, self.tag)     # last: the file metadata grows once


#: the layout of a companion record: what a message has besides its log time and bytes
COMPANION = np.dtype([("sequence", "<u4"), ("publish_time", "<u8")])


def _needs_companion(r: McapReader) -> set:
    """Channels with a message whose ``publish_time`` differs from its ``log_time`` or whose
    ``sequence`` is not 0 (a first pass; a damaged file is reported by the second)."""
    out: set = set()
    try:
        for kind, b in r.records():
            if kind == "messages":
                m = (b.publish_time != b.log_time) | (b.sequence != 0)
                if m.any():
                    out.update(np.unique(b.channel[m]).tolist())
    except Exception:  # noqa: BLE001 - the import pass raises the error properly
        pass
    return out


def import_mcap(src: Union[str, "os.PathLike[str]"], out: Union[str, "os.PathLike[str]"], *, preset: str = "light",
                force: bool = False, max_chunk_size: int = F.DEFAULT_MAX_CHUNK_SIZE) -> Dict[str, Any]:
    """Convert the MCAP file ``src`` into the archive ``out`` (written as ``out.part``, renamed when
    complete).  Returns ``messages``, ``channels`` {archive channel: topic}, ``schemas``,
    ``metadata`` (names), ``attachments`` (count, carried), ``skipped`` {record kind: count},
    ``inexact_times``, ``truncated`` (None or where the input ends early)."""
    src, out = os.fspath(src), os.fspath(out)
    if os.path.exists(out) and not force:
        raise FileExistsError(17, "exists (use force to replace it)", out)
    tmp = out + ".part"
    r = McapReader(src, max_chunk_size=max_chunk_size)
    job = _Import(tmp, preset, src)
    job.companions = _needs_companion(McapReader(src, max_chunk_size=max_chunk_size))
    try:
        for kind, x in r.records():
            if kind == "messages":
                job.messages_of(x)
            elif kind == "channel":
                job.channel(x)
            elif kind == "schema":
                job.schema(x)
            elif kind == "metadata":
                name, d = x
                tname = _unique(name, job.used | {IMPORT_TAG} | {m[0] for m in job.meta_tags}, str(len(job.meta_tags)))
                job.meta_tags.append((tname, name, d))
                job.tag["metadata"].append([tname, name, d])
            elif kind == "attachment":
                job.attachment(x)
        job.tag["profile"], job.tag["library"] = r.profile, r.library
        job.finish()
        job.w.close()
        replace_unless_live(tmp, out)
    except BaseException:
        if job.w is not None:
            try:
                job.w.close()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
            if os.path.exists(tmp):   # ours (a temporary another import holds is left alone)
                os.unlink(tmp)
        raise
    trunc = None if r.truncated is None else f"at offset {r.truncated[0]}: {r.truncated[1]}"
    return {"messages": job.messages, "channels": {c["channel"]: c["topic"] for c in job.tag["channels"].values()},
            "schemas": len(job.tag["schemas"]), "metadata": [m[1] for m in job.meta_tags],
            "attachments": len(job.pending_att), "skipped": dict(r.skipped), "inexact_times": job.inexact,
            "truncated": trunc, "complete": r.complete}
