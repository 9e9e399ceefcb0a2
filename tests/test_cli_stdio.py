"""``-`` is standard input / standard output, and ``info``/``verify`` take several files (issue 8
item 15); every case through a real subprocess with pipes."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import numpy as np
import pytest
import zstandard

from fastodin.archive import Writer
from fastodin.archive.reader import open_archive
from fastodin.cli.pcap import read_pcap
from fastodin.odin.burst import burst_decode, burst_encode_many
from fastodin.odin.mapping import OdinToFastPack, WriterSink
from fastodin.odin.simulator import Simulator

from test_cli import REPO, fo, one_line_error
from test_cli_commands import packets_of


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    d = tmp_path_factory.mktemp("stdio")
    pk = Simulator(seed=5).packets(duration=1.0)
    arch = d / "odin.fastpack.zst"
    with Writer(arch) as w:
        c = OdinToFastPack(WriterSink(w))
        c.add_many(pk)
        c.close()
    plain = d / "plain.fastpack.zst"
    with Writer(plain) as w:
        w.write_many(np.arange(300) * 1e-3, "imu", np.arange(600.0).reshape(300, 2))
    raw = d / "plain.fastpack"
    with open(plain, "rb") as f:
        raw.write_bytes(zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read())
    burst = d / "cap.burst"
    burst.write_bytes(burst_encode_many(pk))
    pcap = d / "cap.pcap"
    assert fo("convert", str(arch), str(pcap)).returncode == 0
    return {"dir": d, "pk": pk, "arch": arch, "plain": plain, "raw": raw, "burst": burst, "pcap": pcap}


def _zstd_d(path) -> bytes:
    with open(path, "rb") as f:
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()


# -- - as input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("src", ["arch", "plain", "raw"])
def test_cat_dash_reads_stdin_like_the_file(rec, src):
    data = rec[src].read_bytes()
    for fmt in ("jsonl", "csv", "hex"):
        want = fo("cat", str(rec[src]), "--format", fmt)
        got = fo("cat", "-", "--format", fmt, input=data)
        assert want.returncode == got.returncode == 0, got.err
        assert got.stdout == want.stdout and got.stdout


def test_info_and_verify_dash(rec):
    data = rec["arch"].read_bytes()
    want = json.loads(fo("info", str(rec["arch"]), "--json").out)
    p = fo("info", "-", "--json", input=data)
    assert p.returncode == 0, p.err
    got = json.loads(p.out)
    assert got["path"] == "-" and want["path"] == str(rec["arch"])
    got.pop("path"), want.pop("path")
    assert got == want
    t = fo("info", "-", input=data)
    assert t.returncode == 0 and t.out.startswith("file:     <stdin>  (archive, complete")
    v = fo("verify", "-", input=data)
    assert v.returncode == 0 and v.out.startswith("SOUND: <stdin> (archive")
    # damaged input on stdin: the same verdict as the file
    v = fo("verify", "-", input=data[: len(data) * 2 // 3])
    assert v.returncode == 1 and "NOT SOUND" in v.out


def test_dash_with_nothing_piped_in_is_a_usage_error(rec):
    """stdin a terminal: say so at once instead of waiting for a typed archive."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for args in (["cat", "-"], ["info", "-"], ["convert", "-", str(rec["dir"] / "never.fastpack.zst")]):
        master, slave = pty.openpty()
        try:
            p = subprocess.run([sys.executable, "-m", "fastodin", *args], stdin=slave, capture_output=True,
                               env=env, timeout=30)
        finally:
            os.close(slave)
            os.close(master)
        p.out, p.err = p.stdout.decode(), p.stderr.decode()
        assert "nothing is piped in" in one_line_error(p, 2)
    assert not (rec["dir"] / "never.fastpack.zst").exists()


@pytest.mark.parametrize("src", ["burst", "pcap", "raw", "arch"])
def test_convert_dash_in(rec, src):
    out = rec["dir"] / f"in_{src}.fastpack.zst"
    p = fo("convert", "-", str(out), input=rec[src].read_bytes())
    assert p.returncode == 0, p.err
    assert p.out.startswith("converted <stdin> (")
    if src in ("burst", "pcap", "arch"):
        assert packets_of(out) == rec["pk"]
    else:
        with open_archive(out) as a, open_archive(rec["plain"]) as b:
            assert [(r.time, r.name, bytes(r.payload)) for r in a.records()] == \
                   [(r.time, r.name, bytes(r.payload)) for r in b.records()]
    with open_archive(out) as a:
        if src in ("burst", "pcap"):
            assert a.tags["converted_from"] == "-"


def test_convert_dash_out(rec):
    d = rec["dir"]
    p = fo("convert", str(rec["plain"]), "-", "--to", "fastpack")
    assert p.returncode == 0 and p.stdout == _zstd_d(rec["plain"])        # what zstd -d gives
    assert p.err.startswith("converted ") and "-> <stdout> (fastpack)" in p.err   # the summary: stderr
    p = fo("convert", str(rec["arch"]), "-", "--to", "burst")
    assert p.returncode == 0 and burst_decode(p.stdout) == rec["pk"]
    assert fo("convert", str(rec["arch"]), str(d / "o.burst")).returncode == 0
    assert p.stdout == (d / "o.burst").read_bytes()
    p = fo("convert", str(rec["arch"]), "-", "--to", "pcap", "--port", "9000")
    assert p.returncode == 0 and p.stdout == rec["pcap"].read_bytes()
    assert [x for _, x in read_pcap(p.stdout)[0]] == rec["pk"]
    # a pipe in, a pipe out
    p = fo("convert", "-", "-", "--to", "burst", input=rec["arch"].read_bytes())
    assert p.returncode == 0 and burst_decode(p.stdout) == rec["pk"]
    p = fo("convert", "-", "-", "--to", "pcap", input=rec["burst"].read_bytes())
    assert p.returncode == 0 and [x for _, x in read_pcap(p.stdout)[0]] == rec["pk"]


def test_convert_dash_out_refusals(rec):
    assert "--to" in one_line_error(fo("convert", str(rec["arch"]), "-"), 2)
    assert "seekable" in one_line_error(fo("convert", str(rec["arch"]), "-", "--to", "archive"), 2)
    # stdout a terminal: binary is never written to it
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    master, slave = pty.openpty()
    try:
        p = subprocess.run([sys.executable, "-m", "fastodin", "convert", str(rec["arch"]), "-", "--to", "burst"],
                           stdout=slave, stderr=subprocess.PIPE, env=env, timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert p.returncode == 2 and b"is a terminal" in p.stderr


def test_export_and_recover_dash_in(rec):
    d = rec["dir"]
    p = fo("export", "-", "-o", str(d / "e.npz"), "--npz", input=rec["plain"].read_bytes())
    assert p.returncode == 0, p.err
    assert np.load(d / "e.npz")["imu/time"].shape == (300,)
    data = rec["arch"].read_bytes()
    p = fo("recover", "-", str(d / "r.fastpack.zst"), input=data[: len(data) // 2])
    assert p.returncode == 1 and "saved:" in p.out, p.err
    assert fo("verify", str(d / "r.fastpack.zst")).returncode == 0


# -- several files ------------------------------------------------------------------------------------

def test_info_several_files(rec):
    a, b = str(rec["arch"]), str(rec["plain"])
    p = fo("info", a, b)
    assert p.returncode == 0, p.err
    blocks = p.out.split("\n\nfile:")
    assert len(blocks) == 2 and blocks[0].startswith(f"file:     {a}") and blocks[1].startswith(f"     {b}")
    j = json.loads(fo("info", a, b, "--json").out)
    assert isinstance(j, list) and [x["path"] for x in j] == [a, b]
    assert j[0] == json.loads(fo("info", a, "--json").out)          # one file: the object itself
    # a missing file: one line for it, the others still summarised, exit = the worst
    p = fo("info", a, str(rec["dir"] / "missing.zst"), b, "--json")
    assert p.returncode == 3 and len(p.err.strip().splitlines()) == 1 and "no such file" in p.err
    j = json.loads(p.out)
    assert [x["path"] for x in j] == [a, str(rec["dir"] / "missing.zst"), b] and "error" in j[1]


def test_verify_several_files(rec, tmp_path):
    cut = tmp_path / "cut.fastpack.zst"
    data = rec["arch"].read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    a, b = str(rec["arch"]), str(rec["plain"])
    p = fo("verify", a, b)
    assert p.returncode == 0 and [l.split(":")[0] for l in p.out.splitlines()] == ["SOUND", "SOUND"]
    p = fo("verify", a, str(cut), b)
    assert p.returncode == 1
    states = [l for l in p.out.splitlines() if l.startswith(("SOUND", "NOT SOUND"))]
    assert len(states) == 3 and states[1].startswith("NOT SOUND") and str(cut) in states[1]
    j = json.loads(fo("verify", a, str(cut), "--json").out)
    assert [x["sound"] for x in j] == [True, False]
    p = fo("verify", a, str(tmp_path / "nope"), "--json")
    assert p.returncode == 3 and json.loads(p.out)[1] == {"path": str(tmp_path / "nope"), "sound": False,
                                                          "error": p.err.strip()}
