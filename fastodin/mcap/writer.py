"""Writing MCAP files: chunked, zstd-compressed, with message indexes, statistics and a summary.

:class:`McapWriter` takes messages a batch at a time (numpy arrays of channel ids and times, plus
the payloads as slices of one buffer), orders each batch by ``log_time`` and builds whole chunks
with numpy gathers -- no Python work per message.  The file is what ``mcap info`` and the
reference readers expect (spec/mcap.md §4): ``Magic Header [Chunk MessageIndex…]… [Metadata]…
[Attachment]… DataEnd Schemas Channels Statistics ChunkIndexes AttachmentIndexes MetadataIndexes
SummaryOffsets Footer Magic``.  It is written under ``NAME.part`` and renamed when complete.

>>> import os, tempfile, numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "x.mcap")
>>> w = McapWriter(path)
>>> s = w.add_schema("pt", "jsonschema", b'{"type":"object","properties":{"x":{"type":"number"}}}')
>>> c = w.add_channel("/pt", "json", s)
>>> data = b'{"x":1}{"x":2}'
>>> w.add_messages(c, np.array([10, 20], np.uint64), data, np.array([0, 7]), np.array([7, 7]))
>>> w.close()["messages"]
2
"""
from __future__ import annotations

import collections
import concurrent.futures
import os
import zlib
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import UsageError
from . import _format as F

__all__ = ["McapWriter", "concat_slices", "ragged_rows", "DEFAULT_CHUNK_SIZE"]

#: uncompressed bytes per chunk (the reference writers' default is 1 MiB too)
DEFAULT_CHUNK_SIZE = 1 << 20
#: messages waiting in memory before the writer orders and writes them by itself
_PENDING_LIMIT = 64 << 20


def _library() -> str:
    from .. import __version__

    return f"fastodin {__version__}"



#: message record header, packed: opcode, record length, channel id, sequence, log_time, publish_time
_MSG = np.dtype([("op", "u1"), ("len", "<u8"), ("cid", "<u2"), ("seq", "<u4"), ("log", "<u8"), ("pub", "<u8")])
assert _MSG.itemsize == F.MESSAGE_HEADER.size == 31


def concat_slices(buf: Any, starts: np.ndarray, lens: np.ndarray) -> bytes:
    """``b"".join(buf[s:s + n])`` for every slice (one memcpy per slice).

    >>> concat_slices(b"abcdef", np.array([4, 0]), np.array([2, 3]))
    b'efabc'
    """
    if not lens.shape[0]:
        return b""
    mv = memoryview(buf).cast("B") if not isinstance(buf, np.ndarray) else memoryview(buf.reshape(-1).data)
    starts = starts.astype(np.int64, copy=False)
    ends = starts + lens.astype(np.int64, copy=False)
    return b"".join(map(mv.__getitem__, map(slice, starts.tolist(), ends.tolist())))


#: a part of every row for :func:`ragged_rows`: a literal (with an optional mask of the rows that
#: have it, and an optional (skip) count of leading bytes to drop per row), or slices of a buffer
Part = Tuple[Any, ...]


def ragged_rows(parts: List[Part], n: int, block: int = 1 << 16) -> Tuple[np.ndarray, np.ndarray]:
    """Concatenate, row by row, ``n`` rows made of ``parts``; returns ``(bytes as uint8, row
    lengths)``.  A part is ``("lit", bytes, keep)`` (the literal, in rows where ``keep`` is true or
    ``keep`` is None; ``keep`` may also be an int array of how many leading bytes to drop) or
    ``("buf", u8 array, starts, lens)``.  Vectorised: each block of rows is laid out as a padded
    byte matrix and compacted with one boolean mask (no Python work per row).

    >>> b, n = ragged_rows([("lit", b"<", None), ("buf", np.frombuffer(b"abcd", np.uint8),
    ...                     np.array([0, 2]), np.array([2, 1])), ("lit", b">", None)], 2)
    >>> b.tobytes(), n.tolist()
    (b'<ab><c>', [4, 3])
    """
    widths: List[int] = []
    prepared: List[Any] = []
    for p in parts:
        if p[0] == "lit":
            lit = np.frombuffer(p[1], np.uint8)
            widths.append(lit.shape[0])
            prepared.append(("lit", lit, p[2]))
        else:
            src, st, ln = p[1], p[2].astype(np.int64, copy=False), p[3].astype(np.int64, copy=False)
            w = int(ln.max(initial=0))
            widths.append(w)
            padded = np.concatenate([src.reshape(-1), np.zeros(w, np.uint8)]) if w else src.reshape(-1)
            prepared.append(("buf", padded, st, ln))
    offs = np.cumsum([0] + widths)
    W = int(offs[-1])
    out_parts: List[np.ndarray] = []
    lens = np.zeros(n, np.int64)
    for a in range(0, n, block):
        b = min(n, a + block)
        m = b - a
        full = np.empty((m, W), np.uint8)
        mask = np.zeros((m, W), bool)
        for (kind, *rest), o, w in zip(prepared, offs[:-1].tolist(), widths):
            if not w:
                continue
            if kind == "lit":
                lit, keep = rest
                full[:, o:o + w] = lit
                if keep is None:
                    mask[:, o:o + w] = True
                elif keep.dtype == bool:
                    mask[:, o:o + w] = keep[a:b, None]
                else:
                    mask[:, o:o + w] = np.arange(w) >= keep[a:b, None]
            else:
                padded, st, ln = rest
                win = np.lib.stride_tricks.sliding_window_view(padded, w)
                full[:, o:o + w] = win[st[a:b]]
                mask[:, o:o + w] = np.arange(w) < ln[a:b, None]
        out_parts.append(full[mask])
        lens[a:b] = mask.sum(axis=1)
    out = np.concatenate(out_parts) if len(out_parts) != 1 else out_parts[0]
    return out, lens


class McapWriter:
    """Write one MCAP file.  ``chunk_size``: uncompressed bytes per chunk; ``compression``:
    ``"zstd"`` (default, at ``level``) or ``""``; ``profile``/``library``: the Header fields.
    ``force``: replace an existing file (else :class:`FileExistsError`).

    Use :meth:`add_schema` / :meth:`add_channel` once per schema / channel, then
    :meth:`add_messages` (any number of batches; each batch's messages, and everything added
    before the next :meth:`flush`, are written in ``log_time`` order), :meth:`add_metadata`,
    :meth:`add_attachment`, and :meth:`close` (or :meth:`abort`, which leaves nothing behind).
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 compression: str = "zstd", level: int = 3, profile: str = "", library: Optional[str] = None,
                 force: bool = False, threads: bool = True) -> None:
        if compression not in ("zstd", ""):
            raise UsageError(f"MCAP compression must be 'zstd' or '' (none), not {compression!r}")
        if not isinstance(chunk_size, int) or chunk_size < 1024:
            raise UsageError(f"chunk_size must be an int >= 1024, not {chunk_size!r}")
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not force:
            raise FileExistsError(17, "exists (use force to replace it)", self.path)
        self._tmp = self.path + ".part"
        self._f = open(self._tmp, "wb")
        self._chunk_size = chunk_size
        self._compression = compression
        self._cctx: Any = None
        if compression == "zstd":
            import zstandard

            self._cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
        self._schemas: Dict[Tuple[str, str, bytes], int] = {}
        self._schema_recs: Dict[int, bytes] = {}
        self._channels: Dict[int, Tuple[int, bytes]] = {}   # id -> (schema id, record)
        self._in_data: set = set()                          # schema/channel records already in a chunk
        self._pending: List[Tuple[Any, ...]] = []
        self._pending_bytes = 0
        self._chunk_idx: List[bytes] = []
        self._meta_idx: List[bytes] = []
        self._att_idx: List[bytes] = []
        self._counts: Dict[int, int] = {}
        self._n_messages = 0
        self._n_chunks = 0
        self._n_meta = 0
        self._n_att = 0
        self._t0: Optional[int] = None
        self._t1 = 0
        self._closed = False
        self._pos = 0
        # chunks compress on a helper thread while the next ones are built (written in order)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fastodin-mcap") if threads else None
        self._inflight: "collections.deque[Any]" = collections.deque()
        self._write(F.MAGIC + F.record(F.Op.HEADER, F.header_body(profile, library or _library())))

    # ---- definitions ----------------------------------------------------------------------------
    def add_schema(self, name: str, encoding: str, data: bytes) -> int:
        """A schema id (the same id for an identical schema)."""
        key = (name, encoding, bytes(data))
        sid = self._schemas.get(key)
        if sid is None:
            sid = len(self._schemas) + 1
            if sid > 0xFFFF:
                raise UsageError("an MCAP file holds at most 65535 schemas")
            self._schemas[key] = sid
            self._schema_recs[sid] = F.record(F.Op.SCHEMA, F.schema_body(sid, name, encoding, key[2]))
        return sid

    def add_channel(self, topic: str, message_encoding: str, schema_id: int = 0,
                    metadata: Optional[Dict[str, str]] = None) -> int:
        """A new channel id (1, 2, …); ``schema_id`` 0 = schemaless."""
        cid = len(self._channels) + 1
        if cid > 0xFFFF:
            raise UsageError("an MCAP file holds at most 65535 channels")
        if schema_id and schema_id not in self._schema_recs:
            raise UsageError(f"unknown schema id {schema_id}")
        body = F.channel_body(cid, schema_id, topic, message_encoding, dict(metadata or {}))
        self._channels[cid] = (schema_id, F.record(F.Op.CHANNEL, body))
        self._counts[cid] = 0
        return cid

    # ---- messages -------------------------------------------------------------------------------
    def add_messages(self, channel: Union[int, np.ndarray], log_time: np.ndarray, buf: Any, starts: np.ndarray,
                     lens: np.ndarray, publish_time: Optional[np.ndarray] = None,
                     sequence: Optional[np.ndarray] = None) -> None:
        """Messages ``buf[starts[k]:starts[k] + lens[k]]`` at ``log_time[k]`` (u64 ns) on
        ``channel`` (an id, or one id per message).  ``publish_time`` defaults to the log time,
        ``sequence`` to 0."""
        self._check()
        log = np.asarray(log_time, np.uint64).reshape(-1)
        n = log.shape[0]
        if not n:
            return
        cids = np.full(n, channel, np.uint16) if np.ndim(channel) == 0 else np.asarray(channel, np.uint16)
        for c in np.unique(cids).tolist():
            if c not in self._channels:
                raise UsageError(f"unknown channel id {c}")
        starts = np.asarray(starts, np.int64)
        lens = np.asarray(lens, np.int64)
        if cids.shape[0] != n or starts.shape[0] != n or lens.shape[0] != n:
            raise UsageError("add_messages: one channel, start and length per log time")
        pub = log if publish_time is None else np.asarray(publish_time, np.uint64)
        seq = np.zeros(n, np.uint32) if sequence is None else np.asarray(sequence, np.uint32)
        src = buf if isinstance(buf, np.ndarray) else np.frombuffer(buf, np.uint8)
        self._pending.append((cids, log, pub, seq, src, starts, lens))
        self._pending_bytes += int(lens.sum()) + 31 * n
        if self._pending_bytes >= _PENDING_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Write every pending message, in ``log_time`` order, as whole chunks."""
        if not self._pending:
            return
        self._flush_pending()

    def _flush_pending(self) -> None:
        parts = self._pending
        self._pending = []
        self._pending_bytes = 0
        if len(parts) == 1:
            cids, log, pub, seq, src, starts, lens = parts[0]
        else:
            cids = np.concatenate([p[0] for p in parts])
            log = np.concatenate([p[1] for p in parts])
            pub = np.concatenate([p[2] for p in parts])
            seq = np.concatenate([p[3] for p in parts])
            bases = np.cumsum([0] + [p[4].shape[0] for p in parts[:-1]])
            src = np.concatenate([p[4].reshape(-1) for p in parts])
            starts = np.concatenate([p[5] + b for p, b in zip(parts, bases.tolist())])
            lens = np.concatenate([p[6] for p in parts])
        if log.shape[0] > 1 and bool((log[1:] < log[:-1]).any()):
            order = np.argsort(log, kind="stable")
            cids, log, pub, seq = cids[order], log[order], pub[order], seq[order]
            starts, lens = starts[order], lens[order]
        size = lens + 31
        ends = np.cumsum(size)
        n = log.shape[0]
        a = 0
        while a < n:
            base = int(ends[a - 1]) if a else 0
            b = int(np.searchsorted(ends, base + self._chunk_size, side="left")) + 1
            b = min(max(b, a + 1), n)
            self._chunk(cids[a:b], log[a:b], pub[a:b], seq[a:b], src, starts[a:b], lens[a:b])
            a = b

    def _chunk(self, cids: np.ndarray, log: np.ndarray, pub: np.ndarray, seq: np.ndarray, src: np.ndarray,
               starts: np.ndarray, lens: np.ndarray) -> None:
        n = log.shape[0]
        # schema and channel records of channels that first appear here open the chunk
        head: List[bytes] = []
        uc = np.unique(cids).tolist()
        for c in uc:
            if c not in self._in_data:
                sid, rec = self._channels[c]
                if sid and ("s", sid) not in self._in_data:
                    head.append(self._schema_recs[sid])
                    self._in_data.add(("s", sid))
                head.append(rec)
                self._in_data.add(c)
        prefix = b"".join(head)
        hdr = np.empty(n, _MSG)
        hdr["op"] = F.Op.MESSAGE
        hdr["len"] = lens + 22
        hdr["cid"] = cids
        hdr["seq"] = seq
        hdr["log"] = log
        hdr["pub"] = pub
        hb = hdr.view(np.uint8)
        wmax = int(lens.max(initial=0))
        rec_off = np.cumsum(lens + 31) - (lens + 31)
        if n > 1 and bool((starts[1:] == starts[:-1] + lens[:-1]).all()):
            # payloads back to back (one channel in order): headers scattered between them
            total = int(rec_off[-1] + 31 + lens[-1])
            out = np.empty(total, np.uint8)
            idx = (rec_off[:, None] + np.arange(31)).reshape(-1)
            mask = np.ones(total, bool)
            mask[idx] = False
            out[idx] = hb
            out[mask] = src.reshape(-1)[int(starts[0]):int(starts[0]) + total - 31 * n]
            body = prefix + out.tobytes()
        elif wmax * n <= 4 * int(lens.sum()) + 64 * n:      # similar sizes: one vectorised layout
            recs, _ = ragged_rows([("buf", hb, np.arange(n, dtype=np.int64) * 31, np.full(n, 31, np.int64)),
                                   ("buf", src, starts, lens)], n)
            body = prefix + recs.tobytes()
        else:                                              # a few big payloads: one memcpy each
            mv = memoryview(src.reshape(-1).data)
            hbb = hb.tobytes()
            body = prefix + b"".join(x for k, (s0, l0) in enumerate(zip(starts.tolist(), lens.tolist()))
                                     for x in (hbb[31 * k:31 * k + 31], mv[s0:s0 + l0]))
        rec_off += len(prefix)
        t0, t1 = int(log.min()), int(log.max())
        job = (body, uc, cids, log, rec_off, t0, t1, n)
        if self._pool is None:
            self._emit(job, self._compress(body))
            return
        self._inflight.append((job, self._pool.submit(self._compress, body)))
        while len(self._inflight) > 2:
            j, fut = self._inflight.popleft()
            self._emit(j, fut.result())

    def _compress(self, body: bytes) -> Tuple[int, bytes]:
        """(CRC, compressed records) of one chunk (on the pool thread: zstd and crc32 release the GIL)."""
        return zlib.crc32(body), (self._cctx.compress(body) if self._cctx is not None else body)

    def _drain(self) -> None:
        while self._inflight:
            j, fut = self._inflight.popleft()
            self._emit(j, fut.result())

    def _emit(self, job: Tuple[Any, ...], done: Tuple[int, bytes]) -> None:
        """Write one chunk and its message indexes, in order."""
        body, uc, cids, log, rec_off, t0, t1, n = job
        crc, data = done
        chunk_off = self._pos
        comp = self._compression
        rec = F.record(F.Op.CHUNK, F.chunk_body(t0, t1, len(body), crc, comp, data))
        # message indexes, one per channel (channel order), (log_time, offset) in chunk order
        idx_parts: List[bytes] = []
        offsets: Dict[int, int] = {}
        pos = chunk_off + len(rec)
        pairs = np.empty((n, 2), np.uint64)
        pairs[:, 0] = log
        pairs[:, 1] = rec_off.astype(np.uint64)
        for c in uc:
            sel = pairs[cids == c] if len(uc) > 1 else pairs
            mi = F.record(F.Op.MESSAGE_INDEX, F.message_index_body(c, sel.tobytes()))
            offsets[c] = pos
            pos += len(mi)
            idx_parts.append(mi)
            self._counts[c] += int(sel.shape[0])
        mi_all = b"".join(idx_parts)
        self._write(rec + mi_all)
        self._chunk_idx.append(F.record(F.Op.CHUNK_INDEX, F.chunk_index_body(
            t0, t1, chunk_off, len(rec), offsets, len(mi_all), comp, len(data), len(body))))
        self._n_chunks += 1
        self._n_messages += n
        self._t0 = t0 if self._t0 is None else min(self._t0, t0)
        self._t1 = max(self._t1, t1)

    # ---- other records ------------------------------------------------------------------------------
    def add_metadata(self, name: str, data: Dict[str, str]) -> None:
        """A Metadata record (string keys and values), indexed in the summary."""
        self._check()
        self.flush()
        self._drain()
        rec = F.record(F.Op.METADATA, F.metadata_body(name, data))
        self._meta_idx.append(F.record(F.Op.METADATA_INDEX, F.metadata_index_body(self._pos, len(rec), name)))
        self._write(rec)
        self._n_meta += 1

    def add_attachment(self, log_time: int, create_time: int, name: str, media_type: str, data: bytes) -> None:
        """An Attachment record, indexed in the summary."""
        self._check()
        self.flush()
        self._drain()
        rec = F.record(F.Op.ATTACHMENT, F.attachment_body(log_time, create_time, name, media_type, data))
        self._att_idx.append(F.record(F.Op.ATTACHMENT_INDEX, F.attachment_index_body(
            self._pos, len(rec), log_time, create_time, len(data), name, media_type)))
        self._write(rec)
        self._n_att += 1

    # ---- closing ----------------------------------------------------------------------------------
    def close(self) -> Dict[str, Any]:
        """Write the rest, the summary and the footer; rename the file into place.  Returns
        ``{"messages", "chunks", "channels", "schemas", "metadata", "attachments", "bytes"}``."""
        self._check()
        try:
            self.flush()
            self._drain()
            self._write(F.record(F.Op.DATA_END, F.data_end_body(0)))
            start = self._pos
            groups: List[Tuple[int, List[bytes]]] = [
                (F.Op.SCHEMA, list(self._schema_recs.values())),
                (F.Op.CHANNEL, [r for _s, r in self._channels.values()]),
                (F.Op.STATISTICS, [F.record(F.Op.STATISTICS, F.statistics_body(
                    self._n_messages, len(self._schema_recs), len(self._channels), self._n_att, self._n_meta,
                    self._n_chunks, self._t0 or 0, self._t1, self._counts))]),
                (F.Op.CHUNK_INDEX, self._chunk_idx),
                (F.Op.ATTACHMENT_INDEX, self._att_idx),
                (F.Op.METADATA_INDEX, self._meta_idx),
            ]
            summary: List[bytes] = []
            offsets: List[bytes] = []
            pos = start
            for op, recs in groups:
                if not recs:
                    continue
                blob = b"".join(recs)
                offsets.append(F.record(F.Op.SUMMARY_OFFSET, F.summary_offset_body(op, pos, len(blob))))
                summary.append(blob)
                pos += len(blob)
            so_start = pos
            blob = b"".join(summary) + b"".join(offsets)
            self._write(blob + F.footer_record(blob, start, so_start) + F.MAGIC)
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            os.replace(self._tmp, self.path)
            if self._pool is not None:
                self._pool.shutdown(wait=True)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return {"messages": self._n_messages, "chunks": self._n_chunks, "channels": len(self._channels),
                "schemas": len(self._schema_recs), "metadata": self._n_meta, "attachments": self._n_att,
                "bytes": self._pos}

    def abort(self) -> None:
        """Stop and remove the partial file."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._inflight.clear()
        try:
            self._f.close()
        finally:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "McapWriter":
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if et is None:
            if not self._closed:
                self.close()
        else:
            self.abort()

    def _check(self) -> None:
        if self._closed:
            raise UsageError("the MCAP writer is closed")

    def _write(self, b: bytes) -> None:
        self._f.write(b)
        self._pos += len(b)
