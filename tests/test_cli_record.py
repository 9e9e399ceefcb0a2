"""`fastodin record`: the closing summary tells what `info`/`verify` tell (issue 8 item 12), and
`--rotate-size` parts stay within 1.1x of the size asked for, each decoding on its own (item 24)."""
import json
import re
import subprocess
import sys

import pytest

from fastodin.archive.reader import open_archive
from fastodin.cli.verify import verify
from fastodin.odin.burst import burst_encode, burst_encode_many
from fastodin.odin.decode import decode
from fastodin.odin.packets import DATA
from fastodin.odin.simulator import Simulator
from fastodin.cli.sources import odin_records

SUMMARY = re.compile(r"gaps (\d+) \(lost (\d+)\), CRC errors (\d+), bad (\d+);")


def _fo(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fastodin", *map(str, args)], capture_output=True, timeout=300,
                          **kw)


def _damaged_capture(seconds=6.0):
    """BURST bytes of a simulated device with 2 DATA packets dropped and 1 frame with a bad CRC."""
    pk = Simulator(seed=11).packets(duration=seconds)
    data_idx = [i for i, p in enumerate(pk) if p[0] == DATA]
    drop = {data_idx[100], data_idx[len(data_idx) // 2]}
    bad_crc = data_idx[-100]
    frames = []
    for i, p in enumerate(pk):
        if i in drop:
            continue
        f = bytearray(burst_encode(p))
        if i == bad_crc:
            f[3] ^= 0x55          # a payload byte: the CRC no longer matches
        frames.append(bytes(f))
    return b"".join(frames)


def _info_counts(path):
    r = _fo("info", path, "--json")
    d = json.loads(r.stdout)
    st = d["odin"]["stats"]
    tot = d["odin"]["sequence_totals"]
    return {"gaps": tot["gaps"], "lost": tot["lost"], "crc_errors": d["odin"]["crc_errors"],
            "bad": st.get("malformed", 0) + st.get("unknown", 0)}


def _summary(stdout):
    m = SUMMARY.search(stdout.decode())
    assert m, stdout
    return dict(zip(("gaps", "lost", "crc_errors", "bad"), map(int, m.groups())))


def test_the_summary_counts_what_info_and_verify_count(tmp_path):
    out = tmp_path / "cap.fastpack.zst"
    r = _fo("record", "-o", out, "--stdin", input=_damaged_capture())
    assert r.returncode == 0, r.stderr
    said = _summary(r.stdout)
    info = _info_counts(out)
    assert said == info
    assert said["gaps"] >= 2 and said["lost"] >= 2 and said["crc_errors"] == 1
    with open_archive(out) as ar:
        res = verify(ar)
    note = [w for w in res["warnings"] if w.startswith("ODIN capture")][0]
    assert f"sequence gaps {said['gaps']} (lost {said['lost']})" in note and f"CRC errors {said['crc_errors']}" in note


def test_the_summary_of_a_rotated_recording_is_the_sum_of_its_parts(tmp_path):
    out = tmp_path / "rot.fastpack.zst"
    r = _fo("record", "-o", out, "--stdin", "--rotate-size", "64K", input=_damaged_capture(20.0))
    assert r.returncode == 0, r.stderr
    parts = sorted(tmp_path.glob("rot-*.fastpack.zst"))
    assert len(parts) >= 3
    total = {"gaps": 0, "lost": 0, "crc_errors": 0, "bad": 0}
    for p in parts:
        for k, v in _info_counts(p).items():
            total[k] += v
    assert _summary(r.stdout) == total
    assert total["crc_errors"] == 1


@pytest.fixture(scope="module")
def long_capture():
    return burst_encode_many(Simulator(seed=5, loss=0.001).packets(duration=40.0))


@pytest.mark.parametrize("size", ["64K", "256K"])
@pytest.mark.parametrize("fastpack", [False, True], ids=["burst", "fastpack"])
def test_rotate_size_parts_stay_within_a_tenth_of_the_limit(tmp_path, long_capture, size, fastpack):
    limit = int(size[:-1]) << 10
    stream = long_capture
    args = []
    if fastpack:   # the same capture as a raw FastPack stream
        arch = tmp_path / "src.fastpack.zst"
        (tmp_path / "src.burst").write_bytes(long_capture)
        assert _fo("convert", tmp_path / "src.burst", arch).returncode == 0
        raw = tmp_path / "src.fastpack"
        assert _fo("convert", arch, raw).returncode == 0
        stream, args = raw.read_bytes(), ["--fastpack"]
    out = tmp_path / "part.fastpack.zst"
    r = _fo("record", "-o", out, "--stdin", "--rotate-size", size, *args, input=stream)
    assert r.returncode == 0, r.stderr
    parts = sorted(tmp_path.glob("part-*.fastpack.zst"))
    sizes = [p.stat().st_size for p in parts]
    assert len(parts) >= 4, sizes
    assert max(sizes) <= 1.1 * limit, [round(s / limit, 2) for s in sizes]
    assert min(sizes[:-1]) >= 0.8 * limit, [round(s / limit, 2) for s in sizes]   # and they are not tiny
    for p in parts:                  # each part decodes on its own
        with open_archive(p) as ar:
            assert verify(ar)["sound"]
            if not fastpack:
                res = decode(odin_records(ar, channels=["odin/*", 0]))
                assert len(res) == 3 and all(len(t) for t in res.values()), p
            else:
                assert ar.info()["records"] > 0 and ar.tags.get("part") is not None
