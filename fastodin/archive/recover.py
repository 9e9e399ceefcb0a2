"""Recovery: copy every readable record of a damaged or crashed archive into a new archive and
report what was lost (frames, records, time ranges).

>>> import os, tempfile
>>> from fastodin.archive.writer import Writer
>>> d = tempfile.mkdtemp()
>>> with Writer(os.path.join(d, "a.fastpack.zst")) as w:
...     w.write(1.0, "x", b"abc")
>>> rep = recover(os.path.join(d, "a.fastpack.zst"), os.path.join(d, "b.fastpack.zst"))
>>> rep.records_saved, rep.records_lost
(1, 0)
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

from .._fmt import plural
from ..errors import DataError, UsageError
from ..metadata import decode_meta
from ..progress import ProgressCallback
from .index import FrameEntry
from .lock import replace_unless_live
from .reader import Archive, check_random_access
from .writer import DEFAULT_PRESET, PRESETS, Writer

__all__ = ["recover", "RecoveryReport"]


class RecoveryReport:
    """What :func:`recover` saved and lost.

    ``lost``: one dict per lost region: ``frame`` (number or None), ``offset``, ``records``
    (exact, from the frame's index entry; None when unknown), ``at_least`` (records certainly
    lost: ``records`` when known, else the records the damage cut), ``t_min``/``t_max`` (None
    when unknown), ``reason``.  ``records_lost`` is exact, or None when some lost region has no
    surviving index entry; ``records_lost_min`` is always a number ("at least").
    ``records_salvaged``: records saved from the decodable start of torn or damaged frames
    (included in ``records_saved``).
    """

    def __init__(self) -> None:
        self.frames_saved = 0
        self.frames_lost = 0
        self.records_saved = 0
        self.records_salvaged = 0
        self.records_lost: Optional[int] = 0
        self.records_lost_min = 0
        self.lost: List[Dict[str, Any]] = []

    def _lose(self, frame: Optional[int], offset: int, records: Optional[int], at_least: int,
              t_min: Optional[float], t_max: Optional[float], reason: str) -> None:
        self.lost.append({"frame": frame, "offset": offset, "records": records, "at_least": at_least,
                          "t_min": t_min, "t_max": t_max, "reason": reason})
        self.records_lost_min += at_least
        if records is None:
            self.records_lost = None
        elif self.records_lost is not None:
            self.records_lost += records

    def as_dict(self) -> Dict[str, Any]:
        """JSON-able summary."""
        return {"frames_saved": self.frames_saved, "frames_lost": self.frames_lost,
                "records_saved": self.records_saved, "records_lost": self.records_lost, "lost": self.lost}

    def __str__(self) -> str:
        n = self.records_lost if self.records_lost is not None else self.records_lost_min
        lost = plural(n, "record")
        if self.records_lost is None:
            lost = f"at least {lost}" if n else "an unknown number of records"
        return (f"saved {plural(self.records_saved, 'record')} in {plural(self.frames_saved, 'frame')}; lost {lost} "
                f"in {plural(len(self.lost), 'region')}")


def recover(src: Union[str, "os.PathLike[str]"], dst: Union[str, "os.PathLike[str]"], *,
            preset: Union[str, int, None] = None, progress: Optional[ProgressCallback] = None,
            overwrite: bool = False) -> RecoveryReport:
    """Copy every readable record of ``src`` (archive, crashed or damaged archive, foreign zstd
    stream or raw FastPack) into a new archive ``dst``; unreadable parts are skipped and
    reported, never guessed.

    No index is trusted: every frame is decoded, so a frame an index entry hides is found; the
    whole records at the start of a torn or damaged frame are saved.  Names, file tags, stream
    definitions and layouts are kept (from the index where a frame's data is lost).  ``preset``:
    that of ``src`` when None (a stored preset this version does not know falls back to the
    default); a name this version does not know is a UsageError.  ``progress(bytes of src done,
    src size)`` is called before every frame (:mod:`fastodin.progress`).  ``dst`` is written as
    ``dst + ".part"`` and renamed when complete, so an interrupted run never leaves a ``dst`` that
    looks finished; an existing ``dst`` is refused unless ``overwrite``.  Returns a
    :class:`RecoveryReport`.
    """
    from ..jpack import is_jpack, open_tree

    dst = os.fspath(dst)
    if os.path.exists(dst) and not overwrite:
        raise UsageError(f"{dst} exists (overwrite=True replaces it)")
    tmp = dst + ".part"
    rep = RecoveryReport()
    check_random_access(os.fspath(src))     # a FIFO: refused, never waited on
    ar = open_tree(src) if is_jpack(src) else Archive(src, _lenient=True, raw_time=True)   # times as stored
    try:
        if os.path.exists(tmp):
            os.unlink(tmp)        # left by an interrupted run
        _copy(ar, tmp, preset, rep, progress)
        replace_unless_live(tmp, dst)     # never over a recording still being written
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        ar.close()
    return rep


def _copy(ar: Archive, out: str, preset: Union[str, int, None], rep: RecoveryReport,
          progress: Optional[ProgressCallback]) -> None:
    """Write every frame of ``ar`` (and the metadata its lost frames' index entries keep) to ``out``."""
    sec = ar.time_base.seconds if ar.time_base is not None else (lambda x: x)
    for d in ar.damage:
        e = d.entry
        if e is not None:
            rep._lose(e.frame_no, e.data_offset, d.records, d.at_least, sec(e.t_min), sec(e.t_max), d.reason)
        else:
            rep._lose(None, d.offset, d.lost if d.lost is not None else None if d.length else 0, d.at_least,
                      None, None, d.reason)
        if d.length or e is not None:
            rep.frames_lost += 1
        rep.records_salvaged += d.salvaged
    pre = preset if preset is not None else (ar.file_meta.get("preset") or DEFAULT_PRESET)
    if preset is None and isinstance(pre, str) and pre not in PRESETS:
        pre = DEFAULT_PRESET
    # frames and lost frames' entries in file order: metadata goes out where it was; of a lost
    # frame, the metadata records that its index entry keeps and that were not saved from it
    items: List[Tuple[int, int, FrameEntry, int]] = [(e.data_offset, k, e, -1) for k, e in enumerate(ar.frames)]
    items += [(d.entry.data_offset, k, d.entry, d.kept) for k, d in enumerate(ar.damage) if d.entry is not None]
    items.sort(key=lambda x: (x[0], x[3] >= 0, x[1]))
    with Writer(out, preset=pre, time_base=ar.time_base) as w:
        for k, v in ar.tags.items():
            w.set_tag(k, v)
        for _off, _k, e, first in items:
            lost = first >= 0
            if progress is not None and not lost:
                progress(e.data_offset, ar.size)
            for mt, pos, payload in e.meta:
                if pos < first:
                    continue
                try:
                    m = decode_meta(payload)
                except DataError:
                    m = None
                if isinstance(m, dict) and m.get("fastodin") == "file":
                    continue
                w._groups[0].emit(mt, 0, payload)
            if lost:
                continue
            if not e.channels:      # nothing but hidden records (definitions, resets, metadata)
                rep.frames_saved += 1
                continue
            try:
                data = ar.frame_data(e)
                t, i, o, n = ar.frame_columns(e, data)
            except DataError as exc:
                rep.frames_lost += 1
                rep._lose(e.frame_no, e.data_offset, e.data_records, e.data_records, sec(e.t_min), sec(e.t_max),
                          str(exc))
                continue
            rep.frames_saved += 1
            mv = memoryview(data)
            names = ar.names
            write = w.write
            for tt, ii, oo, nn in zip(t.tolist(), i.tolist(), o.tolist(), n.tolist()):
                write(tt, names.get(ii, f"#{ii}") if ii else 0, bytes(mv[oo:oo + nn]))
            rep.records_saved += int(t.shape[0])
