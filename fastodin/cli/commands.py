"""The list of subcommand modules, in ``fastodin --help`` order.

>>> [m.NAME for m in MODULES][:1]
['demo']
"""
from __future__ import annotations

from . import cat, convert, demo, info, record, replay

MODULES = [demo, info, cat, record, replay, convert]
