"""Every docstring example of fastodin.odin runs and is right."""
from __future__ import annotations

import doctest
import importlib
import os

import pytest

MODULES = ["fastodin.odin", "fastodin.odin.crc", "fastodin.odin.types", "fastodin.odin.packets",
           "fastodin.odin.burst", "fastodin.odin.schema", "fastodin.odin.odindb", "fastodin.odin.sequence",
           "fastodin.odin.stream", "fastodin.odin.table", "fastodin.odin.decode", "fastodin.odin.mapping",
           "fastodin.odin.replay", "fastodin.odin.simulator"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, monkeypatch):
    # examples read golden vectors by their repository-relative path
    monkeypatch.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0
    assert res.attempted > 0
