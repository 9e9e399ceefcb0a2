"""Archives: seekable zstd files of FastPack frames with an index, written by :class:`Writer`,
read by :func:`open_archive` (exported as ``fastodin.open``), repaired by :func:`recover`.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "a.fastpack.zst")
>>> with Writer(path) as w:
...     w.write(0.5, "x", b"12345678")
>>> open_archive(path).read("x", dtype="<u8")[0].tolist()
[0.5]
"""
from .layout import Layout
from .reader import Archive, Damage, open_archive
from .recover import RecoveryReport, recover
from .writer import DEFAULT_PRESET, PRESETS, Stream, Writer, WriterError

__all__ = ["Writer", "Stream", "Layout", "PRESETS", "DEFAULT_PRESET", "WriterError", "open_archive",
           "Archive", "Damage", "recover", "RecoveryReport"]
