"""The list of subcommand modules, in ``fastodin --help`` order.

>>> [m.NAME for m in MODULES][:1]
['demo']
"""
from __future__ import annotations

from . import cat, convert, demo, export, info, ls, record, recover, replay, verify, view

MODULES = [demo, info, ls, cat, export, record, replay, convert, verify, recover, view]
