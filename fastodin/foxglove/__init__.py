"""Live Foxglove: serve recordings and captures over the Foxglove WebSocket protocol.

``fastodin replay FILE --foxglove PORT`` and ``fastodin record ... --foxglove PORT`` use
:class:`FoxgloveServer` (``websockets`` with our protocol code, spec/foxglove-ws.md); it needs
``pip install 'fastodin[foxglove]'``.
"""
from __future__ import annotations

from .server import FoxgloveServer, need_websockets

__all__ = ["FoxgloveServer", "need_websockets"]
