import json
from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"
FASTPACK = VECTORS / "fastpack"
ODIN = VECTORS / "odin"


def fastpack_cases():
    """Every case listed in the golden index; a missing file is a failure, not a skip."""
    index = json.loads((FASTPACK / "index.json").read_text())
    return [v["name"] for v in index["vectors"]]


def load_case(name):
    manifest = json.loads((FASTPACK / f"{name}.json").read_text())
    data = (FASTPACK / manifest["file"]).read_bytes()
    return manifest, data


@pytest.fixture
def vectors_dir():
    return VECTORS
