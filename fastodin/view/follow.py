"""How the viewer learns that a file grew: the :class:`Follower` interface and a stat-polling one.

The viewer asks its follower, a few times a second, for the file as it is now; a follower answers
with a newly opened :class:`~fastodin.Archive` when the file changed since the last answer, else
None.  :class:`StatFollower` reopens the file when its size, mtime or inode change (a killed or
still-running writer leaves a file that opens with every complete frame).  The follow machinery
of ``fastodin follow`` can replace it by implementing the same two methods.

>>> import os, tempfile, fastodin
>>> path = os.path.join(tempfile.mkdtemp(), "g.fastpack.zst")
>>> with fastodin.Writer(path) as w:
...     w.write(0.0, "x", b"12345678")
>>> f = StatFollower(path)
>>> f.open().frames[0].n_records >= 1, f.poll() is None
(True, True)
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional, Tuple

__all__ = ["Follower", "StatFollower"]


class Follower:
    """Interface: ``open()`` the file now (first look), then ``poll()`` -> a newly opened archive
    when the file changed since the last ``open``/``poll``, else None.  Errors while a file is
    being rewritten are the follower's to absorb (answer None, try again at the next poll)."""

    path: str

    def open(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def poll(self) -> Optional[Any]:  # pragma: no cover - interface
        raise NotImplementedError


class StatFollower(Follower):
    """Reopen ``path`` with ``opener`` (``fastodin.open``) when its size, mtime or inode change."""

    def __init__(self, path: str, opener: Optional[Callable[[str], Any]] = None) -> None:
        if opener is None:
            from .. import open as default_opener
            opener = default_opener
        self.path = path
        self._opener: Callable[[str], Any] = opener
        self._seen: Optional[Tuple[int, int, int]] = None
        self._lock = threading.Lock()
        self.last_error: Optional[BaseException] = None

    def _stat(self) -> Tuple[int, int, int]:
        st = os.stat(self.path)
        return st.st_size, st.st_mtime_ns, st.st_ino

    def open(self) -> Any:
        """Open the file (errors propagate: the first look must succeed)."""
        with self._lock:
            seen = self._stat()
            ar = self._opener(self.path)
            self._seen = seen
            return ar

    def poll(self) -> Optional[Any]:
        with self._lock:
            try:
                seen = self._stat()
                if seen == self._seen:
                    return None
                ar = self._opener(self.path)
            except (OSError, ValueError) as exc:   # being replaced or mid-write: next poll
                self.last_error = exc
                return None
            self._seen = seen
            self.last_error = None
            return ar
