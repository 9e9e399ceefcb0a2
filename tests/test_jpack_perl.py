"""fastodin.jpack against the REAL Perl tools, where they are built (skipped elsewhere; CI relies on the
golden trees of tests/vectors/jpack).  Build them as /work/shared/tools/perl/README.md says (setup.sh
with the perl-data-jpack and perl-data-fastpack-jpacker snapshots); PERL5LIB defaults to
``~/.cache/fastpack-perl/perl/lib/perl5``.

* Data::JPack's decoder reads our chunks, "none" and raw "deflate" (fastpack-split cannot write
  deflate, so this is the check that our --compress output is what the Perl side reads).
* fastpack-split on seeded random streams with random limits writes what we write (options key
  order aside).
"""
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from test_jpack_golden import assert_same_tree, normalised

from fastodin.jpack import write_tree

HOME = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastpack-perl" / "perl"
LIB = os.environ.get("PERL5LIB") or str(HOME / "lib" / "perl5")
SPLIT = HOME / "bin" / "fastpack-split"
ENV = dict(os.environ, PERL5LIB=LIB)


def _have_perl_jpack() -> bool:
    if shutil.which("perl") is None or not SPLIT.exists():
        return False
    return subprocess.run(["perl", "-MData::JPack", "-MData::FastPack", "-e1"], env=ENV,
                          capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _have_perl_jpack(), reason="Perl Data::JPack / fastpack-split not built here")

DECODE = r'''use Data::JPack qw<jpack_decode_file>; binmode STDOUT; print jpack_decode_file($_) for @ARGV;'''


def random_stream(seed: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray()
    for _ in range(rng.randint(1, 600)):
        n = rng.choice([0, 1, 7, 8, 9, rng.randint(0, 3000)])
        pad = bytes(rng.choice([0, 0xAA]) for _ in range(-n & 7))
        out += struct.pack("<QII", rng.getrandbits(64), rng.randint(0, 5), n) + rng.randbytes(n) + pad
    return bytes(out)


@pytest.mark.parametrize("compress", [False, True])
def test_perl_decodes_our_chunks(tmp_path, compress):
    data = random_stream(3)
    (tmp_path / "s.fastpack").write_bytes(data)
    rep = write_tree(tmp_path / "s.fastpack", tmp_path / "w", message_limit=20, compress=compress)
    assert len(rep.files) > 3
    p = subprocess.run(["perl", "-e", DECODE] + rep.files, env=ENV, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout == normalised(data)


@pytest.mark.parametrize("seed", range(6))
def test_fastpack_split_writes_what_we_write(tmp_path, seed):
    rng = random.Random(seed)
    data = random_stream(100 + seed)
    (tmp_path / "s.fastpack").write_bytes(data)
    ml, bl = rng.choice([0, 1, 3, 40]), rng.choice([0, 16, 100, 5000, 30000])
    args = ["perl", str(SPLIT), "--html_container", "theirs/index.html", "--message_limit", str(ml),
            "--byte_limit", str(bl), "s.fastpack"]              # 0: no limit, for both
    p = subprocess.run(args, cwd=tmp_path, env=ENV, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    write_tree(tmp_path / "s.fastpack", tmp_path / "ours", html_container="theirs/index.html",
               message_limit=ml, byte_limit=bl)
    assert_same_tree(tmp_path / "ours", tmp_path / "theirs")
