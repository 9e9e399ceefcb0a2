"""What the README promises about itself (issue 8 item 23 and the guide's Quick start rule)."""
from __future__ import annotations

import re

from test_cli import REPO

README = (REPO / "README.md").read_text()


def _sections():
    return [m.group(1) for m in re.finditer(r"^## (.+)$", README, re.M)]


def test_quick_start_first_block_is_exactly_two_commands():
    qs = README.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", qs, re.S).group(1)
    assert [l for l in block.splitlines() if l.strip()] == [
        "pip install . && python -m fastodin demo", "pip install -e '.[test]' && python -m pytest"]


def test_overview_of_the_formats_comes_before_the_api_sections():
    secs = _sections()
    over = next(i for i, s in enumerate(secs) if "FastPack" in s and "ODIN" in s and "BURST" in s and "OdinDB" in s)
    assert over < secs.index("FastPack codec") and secs.index("Quick start") < over
    text = README.split("## " + secs[over], 1)[1].split("\n## ", 1)[0]
    for link in ("https://github.com/drclaw1394/perl-data-fastpack", "https://metacpan.org/pod/Data::FastPack",
                 "https://github.com/fvsolutions-dev/odin-stream"):
        assert f"]({link})" in text, link
    for word in ("Data::FastPack", "odin-stream", "COBS", "CRC-16", ".odin", "namespace"):
        assert word in text, word


def test_every_command_says_what_it_is_for():
    from fastodin.cli import commands

    cli = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", cli, re.M))
    assert set(rows) == {m.NAME for m in commands.MODULES}
    assert all(len(v) > 20 for v in rows.values())
