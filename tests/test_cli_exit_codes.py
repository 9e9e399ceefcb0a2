"""Exit codes of bad arguments and damaged captures, and export on a full disk (issue 8 item 17)."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest

from fastodin.archive import Writer
from fastodin.odin.burst import burst_encode, burst_encode_many
from fastodin.odin.mapping import OdinToFastPack, WriterSink
from fastodin.odin.simulator import Simulator

from test_cli import REPO, fo, one_line_error
from test_cli_commands import packets_of


@pytest.fixture(scope="module")
def cap(tmp_path_factory):
    d = tmp_path_factory.mktemp("exit")
    pk = Simulator(seed=9).packets(duration=1.0)
    arch = d / "odin.fastpack.zst"
    with Writer(arch) as w:
        c = OdinToFastPack(WriterSink(w))
        c.add_many(pk)
        c.close()
    pcap = d / "cap.pcap"
    assert fo("convert", str(arch), str(pcap)).returncode == 0
    burst = d / "cap.burst"
    burst.write_bytes(burst_encode_many(pk))
    return {"dir": d, "pk": pk, "arch": arch, "pcap": pcap, "burst": burst}


# -- usage errors (2), before any work ----------------------------------------------------------------

@pytest.mark.parametrize("port", ["70000", "-1", "65536", "x"])
def test_bad_port_is_usage(cap, port):
    out = cap["dir"] / f"p{port}.pcap"
    line = one_line_error(fo("convert", str(cap["arch"]), str(out), "--port", port), 2)
    assert "--port" in line and "internal error" not in line and not out.exists()
    one_line_error(fo("convert", str(cap["pcap"]), str(cap["dir"] / "p.fastpack.zst"), "--port", port), 2)


@pytest.mark.parametrize("cps", ["0", "-5", "nan", "inf", "abc"])
def test_bad_counts_per_second_is_usage(cap, cps):
    out = cap["dir"] / "cps.fastpack.zst"
    assert "--counts-per-second" in one_line_error(
        fo("convert", str(cap["burst"]), str(out), "--counts-per-second", cps), 2)
    assert not out.exists()


def test_unknown_preset_is_usage(cap):
    out = cap["dir"] / "r.fastpack.zst"
    line = one_line_error(fo("recover", str(cap["arch"]), str(out), "--preset", "bogus"), 2)
    assert "bogus" in line and "light" in line and not out.exists()
    one_line_error(fo("convert", str(cap["burst"]), str(out), "--preset", "bogus"), 2)
    assert fo("recover", str(cap["arch"]), str(out), "--preset", "Zmedium").returncode == 0   # VRS spelling
    assert fo("recover", str(cap["arch"]), str(cap["dir"] / "r2.fastpack.zst"), "--preset", "7").returncode == 0


def test_recover_library_refuses_an_unknown_preset(cap, tmp_path):
    from fastodin.archive.recover import recover
    from fastodin.errors import UsageError

    with pytest.raises(UsageError):
        recover(cap["arch"], tmp_path / "x.fastpack.zst", preset="bogus")


# -- damaged captures (1, with the counts) ----------------------------------------------------------------

def test_truncated_pcap_is_exit_1_with_counts(cap, tmp_path):
    data = cap["pcap"].read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:3000])
    out = tmp_path / "cut.fastpack.zst"
    p = fo("convert", str(cut), str(out))
    line = one_line_error(p, 1)
    n = len(packets_of(out))                     # OUT holds every whole datagram before the cut
    assert 0 < n < len(cap["pk"]) and packets_of(out) == cap["pk"][:n]
    assert "cut inside a frame" in line and f"after {n} whole frames" in line
    assert f"converted {cut} (pcap)" in p.out and "truncated_tail 1" in p.out


def test_garbage_read_as_burst_is_exit_1_and_no_output(tmp_path):
    rng = np.random.default_rng(1)
    g = tmp_path / "garbage.bin"
    g.write_bytes(bytes(rng.integers(1, 256, 3000, dtype=np.uint8)) + b"\0" + rng.bytes(3000))
    for extra in ([], ["--from", "burst"]):
        out = tmp_path / "g.fastpack.zst"
        line = one_line_error(fo("convert", str(g), str(out), *extra), 1)
        assert "not a BURST capture" in line and "cobs_errors" in line and not out.exists()
    out = tmp_path / "g.fastpack"
    one_line_error(fo("convert", str(g), str(out), "--from", "burst"), 1)
    assert not out.exists() and not (tmp_path / "g.fastpack.part").exists()


def test_burst_damage_after_the_lead_in_is_exit_1(cap, tmp_path):
    pk = cap["pk"]
    frames = [burst_encode(p) for p in pk]
    bad = bytearray(frames[10])
    bad[3] ^= 0x55                                # one frame fails its CRC
    data = b"".join(frames[:10]) + bytes(bad) + b"".join(frames[11:])
    src = tmp_path / "bad.burst"
    src.write_bytes(data)
    out = tmp_path / "bad.fastpack.zst"
    p = fo("convert", str(src), str(out))
    line = one_line_error(p, 1)
    assert "1 BURST frame failed its check (crc_errors 1)" in line
    assert packets_of(out) == pk[:10] + pk[11:]
    # a capture that starts inside a frame (the lead-in) is normal: exit 0, noted
    lead = tmp_path / "lead.burst"
    lead.write_bytes(b"\x13\x37half a frame\x00" + cap["burst"].read_bytes())
    out = tmp_path / "lead.fastpack.zst"
    p = fo("convert", str(lead), str(out))
    assert p.returncode == 0 and p.err == "" and "lead-in" in p.out
    assert packets_of(out) == pk
    # ... but one that ends inside a frame lost that frame
    tail = tmp_path / "tail.burst"
    tail.write_bytes(cap["burst"].read_bytes() + frames[0][:-3])
    out = tmp_path / "tail.fastpack.zst"
    assert "ends inside a frame" in one_line_error(fo("convert", str(tail), str(out)), 1)
    assert packets_of(out) == pk


def test_burst_to_fastpack_streamed_equals_one_shot(cap, tmp_path):
    """BURST input is converted chunk by chunk now: the bytes are those of the one-shot mapping."""
    from fastodin.odin.mapping import convert_packets

    big = tmp_path / "big.burst"
    big.write_bytes(cap["burst"].read_bytes() * 40)       # > 1 MiB: several chunks
    out = tmp_path / "big.fastpack"
    assert fo("convert", str(big), str(out)).returncode == 0
    want, _ = convert_packets(cap["pk"] * 40)
    got = out.read_bytes()
    # the stored report now carries the BURST counters; everything before it is identical
    cut = want.rfind(b'{"odin":"report"')
    assert got[:cut - 16] == want[:cut - 16]
    assert b'"burst":{"frames":' in got[cut - 16:]


# -- export: nothing that looks finished after a failure ----------------------------------------------------

def _export_with_file_size_limit(args, limit, cwd):
    """``fastodin export ARGS`` in a child whose files may not exceed ``limit`` bytes (EFBIG, like a
    full disk: SIGXFSZ ignored so the write fails instead of killing the process)."""
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run([sys.executable, "-m", "fastodin", "export", *args], cwd=cwd, preexec_fn=pre,
                       capture_output=True, timeout=120, env=env)
    p.out, p.err = p.stdout.decode(), p.stderr.decode()
    return p


@pytest.mark.parametrize("fmt", ["--csv", "--npz", "--parquet"])
def test_export_on_a_full_disk_leaves_no_output(cap, tmp_path, fmt):
    if fmt == "--parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / ("out.npz" if fmt == "--npz" else "out")
    p = _export_with_file_size_limit([str(cap["arch"]), "-o", str(out), fmt], 20000, tmp_path)
    line = one_line_error(p, 3)
    assert "too large" in line.lower() or "no space" in line.lower()
    assert not out.exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".out")] == []     # no temporary left either
    # the same export with room enough: complete
    p = fo("export", str(cap["arch"]), "-o", str(out), fmt)
    assert p.returncode == 0, p.err
    assert sorted(n for n in os.listdir(tmp_path)) == [out.name]


def test_export_refuses_an_existing_output_unless_forced(cap, tmp_path):
    d = tmp_path / "csv"
    assert fo("export", str(cap["arch"]), "-o", str(d), "--csv").returncode == 0
    first = sorted(os.listdir(d))
    assert "exists" in one_line_error(fo("export", str(cap["arch"]), "-o", str(d), "--csv"), 3)
    p = fo("export", str(cap["arch"]), "-o", str(d), "--csv", "--channel", "odin/event/*", "--force")
    assert p.returncode == 0, p.err
    assert sorted(os.listdir(d)) == [n for n in first if n.startswith("event_")]   # replaced, not merged
    # a directory that holds other things is never replaced
    (d / "notes.txt").write_text("mine")
    assert "not an export table" in one_line_error(fo("export", str(cap["arch"]), "-o", str(d), "--csv",
                                                      "--force"), 3)
    assert (d / "notes.txt").read_text() == "mine"
    # an existing empty directory is used; an .npz is refused, then replaced with --force
    e = tmp_path / "empty"
    e.mkdir()
    assert fo("export", str(cap["arch"]), "-o", str(e), "--csv").returncode == 0 and os.listdir(e)
    z = tmp_path / "x.npz"
    z.write_bytes(b"old")
    one_line_error(fo("export", str(cap["arch"]), "-o", str(z), "--npz"), 3)
    assert z.read_bytes() == b"old"
    assert fo("export", str(cap["arch"]), "-o", str(z), "--npz", "--force").returncode == 0
    assert np.load(z).files
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(d).st_mode & 0o777 == 0o777 & ~mask           # as mkdir gives, not mkdtemp's 0700
    assert os.stat(z).st_mode & 0o777 == 0o666 & ~mask
