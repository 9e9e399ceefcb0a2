"""Issue 8 item 19: a stream written without a namespace (Perl ``encode_fastpack`` without ``$ns``)
reads whole through ``fastodin.open(path, namespace=False)`` and ``--no-namespace`` on the CLI
commands that read recordings -- checked against every golden ``plain_*`` vector of the real Perl
Data::FastPack (the namespace reading takes first records for definitions and loses them)."""
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
import zstandard
from conftest import FASTPACK, fastpack_cases, load_case

import fastodin
from fastodin.errors import UsageError

PLAIN = [c for c in fastpack_cases() if c.startswith("plain_")]


def _want(manifest):
    return [(o["time_hex"], o["id"], o["payload_hex"]) for o in manifest["decode"]["outputs"]]


def _got(records):
    return [(struct.pack("<d", r.time).hex(), r.id, bytes(r.payload).hex()) for r in records]


def test_there_are_plain_vectors():
    assert len(PLAIN) >= 20 and "plain_multi" in PLAIN and "plain_limit" in PLAIN


@pytest.mark.parametrize("case", PLAIN)
def test_plain_vector_reads_whole(case):
    manifest, data = load_case(case)
    want = _want(manifest)
    path = FASTPACK / manifest["file"]
    with fastodin.open(path, namespace=False) as ar:
        assert ar.namespace is False and ar.complete
        assert _got(ar.records()) == want
        assert sorted(_got(ar.records(order="time"))) == sorted(want)
        assert all(r.name is None for r in ar.records())
        assert ar.info()["records"] == len(want)
        for cid in {w[1] for w in want}:
            t, v = ar.read(cid)
            mine = [w for w in want if w[1] == cid]
            assert t.shape[0] == len(mine)
            assert [bytes(x).hex() for x in (v if v.dtype == object else v)] == [w[2] for w in mine]
        assert sum(c[0].shape[0] for c in ar.columns().values()) == len(want)


def test_the_namespace_reading_loses_plain_records():
    manifest, _ = load_case("plain_limit")
    with fastodin.open(FASTPACK / manifest["file"]) as ar:           # the default: named
        assert len(list(ar.records())) < len(_want(manifest))
    with fastodin.open(FASTPACK / manifest["file"], namespace=False) as ar:
        assert len(list(ar.records())) == len(_want(manifest)) == 5


def test_plain_stream_in_zstd_without_index(tmp_path):
    manifest, data = load_case("plain_multi")
    p = tmp_path / "plain.fastpack.zst"
    zc = zstandard.ZstdCompressor()
    p.write_bytes(zc.compress(data[:40]) + zc.compress(data[40:]))   # record boundary at 40 (16 + 24)
    with fastodin.open(p, namespace=False) as ar:
        assert _got(ar.records()) == _want(manifest)


def test_fastodin_archive_refuses_namespace_false(tmp_path):
    p = tmp_path / "a.fastpack.zst"
    with fastodin.Writer(p) as w:
        w.write(0.0, "x", b"1")
    with pytest.raises(UsageError, match="namespace=False"):
        fastodin.open(p, namespace=False)


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fastodin", *map(str, args)], capture_output=True, timeout=60, **kw)


def test_cli_no_namespace(tmp_path):
    manifest, data = load_case("plain_multi")
    path = FASTPACK / manifest["file"]
    want = _want(manifest)
    r = _cli("cat", path, "--no-namespace", "--format", "hex")
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.decode().splitlines()]
    assert [(row[1], row[3]) for row in rows] == [(f"#{w[1]}", w[2]) for w in want]
    r = _cli("info", path, "--no-namespace", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["records"] == len(want)
    r = _cli("verify", path, "--no-namespace")
    assert r.returncode == 0 and b"SOUND" in r.stdout
    r = _cli("replay", path, "--no-namespace", "--stdout", "--format", "fastpack", "--speed", "0", "-q")
    assert r.returncode == 0 and r.stdout == data            # the plain stream, byte for byte
    r = _cli("export", path, "-o", tmp_path / "x.npz", "--npz", "--no-namespace")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "x.npz") as z:
        assert z["id_7/time"].tolist() == [1234.5678]
    r = _cli("convert", path, tmp_path / "c.fastpack.zst", "--no-namespace")
    assert r.returncode == 0, r.stderr
    with fastodin.open(tmp_path / "c.fastpack.zst") as ar:   # ids became channel names
        assert sorted((r.name, bytes(r.payload).hex()) for r in ar.records()) == sorted((str(w[1]), w[2]) for w in want)
    r = _cli("info", tmp_path / "c.fastpack.zst", "--no-namespace")
    assert r.returncode == 2 and b"namespace" in r.stderr and len(r.stderr.splitlines()) == 1
