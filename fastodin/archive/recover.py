"""Recovery: copy every readable frame of a damaged archive into a new archive, report the loss."""
from __future__ import annotations

from typing import Any, Dict, List, Optional
import os

from ..errors import DataError


class RecoveryReport:
    """What :func:`recover` saved and lost."""

    def __init__(self) -> None:
        self.frames_saved = 0
        self.frames_lost = 0
        self.records_saved = 0
        self.records_lost: Optional[int] = 0
        self.lost: List[Dict[str, Any]] = []


def recover(src: Any, dst: Any) -> RecoveryReport:  # placeholder, replaced below
    raise NotImplementedError
