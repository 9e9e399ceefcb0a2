"""The optional packages of datasets, imported when first needed, with the extra that installs them.

>>> need("json", "arrow", "a test").__name__
'json'
>>> try:
...     need("no_such_module_xyz", "arrow", "an Arrow stream")
... except ImportError as e:
...     print(e.extra, str(e).split(": ", 1)[1])
arrow pip install 'fastodin[arrow]'
"""
from __future__ import annotations

import importlib
from typing import Any

from ..errors import MissingDependency

__all__ = ["need"]


def need(module: str, extra: str, purpose: str) -> Any:
    """Import ``module`` or raise MissingDependency naming ``pip install 'fastodin[extra]'``
    (the command line exits 4)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pkg = module.split(".")[0]
        raise MissingDependency(f"{purpose} needs the optional package '{pkg}': pip install 'fastodin[{extra}]'",
                                package=pkg, extra=extra) from None
