"""Recovery: copy every readable frame of a damaged or crashed archive into a new archive and
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
from typing import Any, Dict, List, Optional, Union

from .._fmt import plural
from ..errors import DataError
from ..metadata import decode_meta
from ..progress import ProgressCallback
from .reader import Archive
from .writer import DEFAULT_PRESET, PRESETS, Writer

__all__ = ["recover", "RecoveryReport"]


class RecoveryReport:
    """What :func:`recover` saved and lost.

    ``lost``: one dict per lost region: ``frame`` (number or None), ``offset``, ``records``
    (None when unknown), ``t_min``/``t_max`` (None when unknown), ``reason``.
    ``records_lost`` is None when some lost region has no surviving index entry.
    """

    def __init__(self) -> None:
        self.frames_saved = 0
        self.frames_lost = 0
        self.records_saved = 0
        self.records_lost: Optional[int] = 0
        self.lost: List[Dict[str, Any]] = []

    def _lose(self, frame: Optional[int], offset: int, records: Optional[int], t_min: Optional[float],
              t_max: Optional[float], reason: str) -> None:
        self.lost.append({"frame": frame, "offset": offset, "records": records, "t_min": t_min,
                          "t_max": t_max, "reason": reason})
        if records is None:
            self.records_lost = None
        elif self.records_lost is not None:
            self.records_lost += records

    def as_dict(self) -> Dict[str, Any]:
        """JSON-able summary."""
        return {"frames_saved": self.frames_saved, "frames_lost": self.frames_lost,
                "records_saved": self.records_saved, "records_lost": self.records_lost, "lost": self.lost}

    def __str__(self) -> str:
        lost = "unknown" if self.records_lost is None else str(self.records_lost)
        return (f"saved {plural(self.records_saved, 'record')} in {plural(self.frames_saved, 'frame')}; lost {lost} "
                f"{'record' if self.records_lost == 1 else 'records'} in {plural(len(self.lost), 'region')}")


def recover(src: Union[str, "os.PathLike[str]"], dst: Union[str, "os.PathLike[str]"], *,
            preset: Union[str, int, None] = None, progress: Optional[ProgressCallback] = None) -> RecoveryReport:
    """Copy every readable record of ``src`` (archive, crashed archive or raw FastPack) into a new
    archive ``dst``; unreadable frames are skipped and reported, never guessed.

    Names, file tags, stream definitions and layouts are kept (from the index where a frame's data
    is lost).  ``preset``: that of ``src`` when None (a stored preset this version does not know
    falls back to the default); a name this version does not know is a UsageError.
    ``progress(bytes of src done, src size)`` is called before every frame (:mod:`fastodin.progress`).
    Returns a :class:`RecoveryReport`.
    """
    from ..jpack import is_jpack, open_tree

    rep = RecoveryReport()
    ar = open_tree(src) if is_jpack(src) else Archive(src, _lenient=True, raw_time=True)   # times as stored
    sec = ar.time_base.seconds if ar.time_base is not None else (lambda x: x)
    try:
        for d in ar.damage:
            e = d.entry
            if e is not None:
                rep._lose(e.frame_no, e.data_offset, e.data_records, sec(e.t_min), sec(e.t_max), d.reason)
            else:
                rep._lose(None, d.offset, None, None, None, d.reason)   # no index entry: count unknown
            if d.length or e is not None:
                rep.frames_lost += 1
        pre = preset if preset is not None else (ar.file_meta.get("preset") or DEFAULT_PRESET)
        if preset is None and isinstance(pre, str) and pre not in PRESETS:
            pre = DEFAULT_PRESET
        with Writer(dst, preset=pre, time_base=ar.time_base) as w:
            for k, v in ar.tags.items():
                w.set_tag(k, v)
            for e in ar.frames:
                if progress is not None:
                    progress(e.data_offset, ar.size)
                for t, _pos, payload in e.meta:
                    try:
                        m = decode_meta(payload)
                    except DataError:
                        m = None
                    if isinstance(m, dict) and m.get("fastodin") == "file":
                        continue
                    w._groups[0].emit(t, 0, payload)
                try:
                    data = ar.frame_data(e)
                    t, i, o, n = ar.frame_columns(e, data)
                except DataError as exc:
                    rep.frames_lost += 1
                    rep._lose(e.frame_no, e.data_offset, e.data_records, sec(e.t_min), sec(e.t_max), str(exc))
                    continue
                rep.frames_saved += 1
                mv = memoryview(data)
                names = ar.names
                write = w.write
                for tt, ii, oo, nn in zip(t.tolist(), i.tolist(), o.tolist(), n.tolist()):
                    write(tt, names.get(ii, f"#{ii}") if ii else 0, bytes(mv[oo:oo + nn]))
                rep.records_saved += int(t.shape[0])
    finally:
        ar.close()
    return rep
