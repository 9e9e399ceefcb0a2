"""MCAP files both ways: export archives for Foxglove and the MCAP tools, import MCAP into archives.

fastodin reads and writes MCAP with its own numpy codec (:mod:`fastodin.mcap.writer`,
:mod:`fastodin.mcap.reader`; zstd comes with the core); lz4-compressed MCAP chunks need the
``lz4`` package (``pip install 'fastodin[mcap]'``).  The mapping both ways, the time design and
the metadata keys: spec/mcap.md.
"""
from __future__ import annotations

from .writer import McapWriter

__all__ = ["McapWriter"]
