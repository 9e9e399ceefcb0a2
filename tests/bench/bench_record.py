"""Benchmark: ``fastodin record --udp`` on loopback, sustained, zero loss required.

Run by hand: ``python tests/bench/bench_record.py [--seconds 10] [--rate 50000]``.

A sender process replays packets of the simulated benchmark device (two sets of 164 and 320 bytes,
packed f32/u32/u16 structs, plus identifiers) over UDP to 127.0.0.1 at a fixed packet rate; the
recorder is the real command line (``python -m fastodin record``) in its own process.  After the
sender finishes, the recorder gets SIGTERM, drains the socket and closes the archive; the archive
is then opened and every packet compared byte for byte with what was sent.

Baseline, same run, same offered load: a bare ``recv_into`` loop that only counts datagrams
(no mapping, no compression, no file): the ceiling of a Python receiver on this machine.
Then the offered rate is raised step by step to find the highest zero-loss rate of the recorder.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SENDER = r"""
import socket, sys, time, pickle
port, rate, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
pk = pickle.load(open(path, "rb"))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
s.connect(("127.0.0.1", port))
send = s.send
t0 = time.perf_counter()
step = 64
n = len(pk)
for i in range(0, n, step):
    for p in pk[i:i + step]:
        while True:
            try:
                send(p)
                break
            except BlockingIOError:
                time.sleep(0)
            except ConnectionRefusedError:
                pass
    due = t0 + (i + step) / rate
    d = due - time.perf_counter()
    if d > 0:
        time.sleep(d)
el = time.perf_counter() - t0
print(n, el, flush=True)
"""

BARE = r"""
import socket, sys, select, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)
except OSError:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
s.bind(("127.0.0.1", 0)); s.setblocking(False)
print(s.getsockname()[1], flush=True)
buf = bytearray(65536); mv = memoryview(buf); n = 0; nb = 0
stop = False
import signal
def h(*a):
    global stop
    stop = True
signal.signal(signal.SIGTERM, h)
r = s.recv_into
while True:
    try:
        k = r(mv); n += 1; nb += k
    except BlockingIOError:
        if stop:
            break
        select.select([s], [], [], 0.1)
print(n, nb, flush=True)
"""


def packets(n: int):
    from fastodin.odin.simulator import Simulator, benchmark_device

    sets, events, types = benchmark_device()
    return Simulator(sets, events, types, seed=7).packets(n=n)


def run_sender(port: int, rate: float, pkl: str) -> tuple:
    p = subprocess.run([sys.executable, "-c", SENDER, str(port), str(rate), pkl], capture_output=True, text=True,
                       timeout=600)
    if p.returncode:
        raise RuntimeError(p.stderr)
    n, el = p.stdout.split()
    return int(n), float(el)


def run_recorder(pk, rate: float, pkl: str, workdir: str, check: bool = True) -> dict:
    out = os.path.join(workdir, f"bench-{int(rate)}.fastpack.zst")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rec = subprocess.Popen([sys.executable, "-m", "fastodin", "record", "-o", out, "--udp", "127.0.0.1:0"],
                           stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    line = rec.stderr.readline()
    m = re.search(r"UDP [\d.]+:(\d+)", line)
    if not m:
        rec.kill()
        raise RuntimeError("recorder did not start: " + line + rec.stderr.read())
    port = int(m.group(1))
    n, el = run_sender(port, rate, pkl)
    time.sleep(0.2)
    rec.send_signal(signal.SIGTERM)
    so, se = rec.communicate(timeout=300)
    from fastodin.archive.reader import open_archive

    with open_archive(out) as ar:
        info = ar.info()
        got = sum(c["count"] for name, c in info["channels"].items() if name.startswith("odin/"))
        same = None
        if check:
            from fastodin.cli.sources import odin_records
            from fastodin.odin.replay import iter_packets

            back = list(iter_packets(odin_records(ar)))
            same = back == pk[:n]
    size = os.path.getsize(out)
    os.unlink(out)
    return {"sent": n, "send_s": el, "offered": n / el, "got": got, "identical": same, "size": size,
            "summary": so.strip()}


def run_bare(rate: float, pkl: str) -> dict:
    b = subprocess.Popen([sys.executable, "-c", BARE], stdout=subprocess.PIPE, text=True)
    port = int(b.stdout.readline())
    n, el = run_sender(port, rate, pkl)
    time.sleep(0.2)
    b.send_signal(signal.SIGTERM)
    out, _ = b.communicate(timeout=60)
    got = int(out.split()[0])
    return {"sent": n, "send_s": el, "offered": n / el, "got": got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=50_000.0)
    ap.add_argument("--steps", default="75000,100000,150000", help="extra offered rates (3 s each) to probe")
    a = ap.parse_args()
    import pickle

    wd = tempfile.mkdtemp(prefix="bench_record_")
    n = int(a.seconds * a.rate)
    t0 = time.perf_counter()
    pk = packets(n)
    pkl = os.path.join(wd, "pk.pickle")
    with open(pkl, "wb") as f:
        pickle.dump(pk, f, protocol=pickle.HIGHEST_PROTOCOL)
    avg = sum(map(len, pk)) / len(pk)
    print(f"workload: {n} packets of the simulated benchmark device (avg {avg:.0f} B), generated in "
          f"{time.perf_counter() - t0:.1f} s; UDP on 127.0.0.1; 2-core machine")
    rows = []
    r = run_recorder(pk, a.rate, pkl, wd)
    bare = run_bare(a.rate, pkl)
    rows.append((f"fastodin record @ {a.rate:,.0f}/s x {a.seconds:g} s", r))
    rows.append((f"bare recv_into loop (baseline) @ same load", bare))
    probe = []
    for s in [float(x) for x in a.steps.split(",") if x]:
        m = int(s * 3)
        pk2 = pk[:m] if m <= len(pk) else packets(m)
        pkl2 = os.path.join(wd, f"pk{int(s)}.pickle")
        with open(pkl2, "wb") as f:
            pickle.dump(pk2, f, protocol=pickle.HIGHEST_PROTOCOL)
        rr = run_recorder(pk2, s, pkl2, wd, check=True)
        bb = run_bare(s, pkl2)
        probe.append((s, rr, bb))
    print()
    print(f"{'run':48s} {'sent':>9s} {'offered/s':>10s} {'received':>9s} {'lost':>6s} {'byte-exact':>10s}")
    for name, x in rows:
        lost = x["sent"] - x["got"]
        ident = "" if x.get("identical") is None else ("yes" if x["identical"] else "NO")
        print(f"{name:48s} {x['sent']:9d} {x['offered']:10,.0f} {x['got']:9d} {lost:6d} {ident:>10s}")
    for s, rr, bb in probe:
        for name, x in ((f"fastodin record @ {s:,.0f}/s x 3 s", rr), (f"bare recv_into @ {s:,.0f}/s x 3 s", bb)):
            lost = x["sent"] - x["got"]
            ident = "" if x.get("identical") is None else ("yes" if x["identical"] else "NO")
            print(f"{name:48s} {x['sent']:9d} {x['offered']:10,.0f} {x['got']:9d} {lost:6d} {ident:>10s}")
    ok = r["got"] == r["sent"] and r["identical"]
    ratio = (r["got"] / r["send_s"]) / max(bare["got"] / bare["send_s"], 1e-9)
    print()
    print(f"sustained: {r['got'] / r['send_s']:,.0f} packets/s for {r['send_s']:.1f} s, "
          f"{'ZERO LOSS, byte-exact' if ok else 'LOSS OR MISMATCH'}; ratio to bare recv baseline at the same load: "
          f"{ratio:.2f}; archive {r['size'] / 1e6:.1f} MB")
    best = max([r["offered"] if ok else 0.0] + [rr["offered"] for s, rr, _ in probe
                                              if rr["got"] == rr["sent"] and rr["identical"]])
    print(f"highest zero-loss rate actually delivered by the sender (it shares the 2 cores with the recorder): "
          f"{best:,.0f} packets/s")
    print(f"recorder said: {r['summary']}")


if __name__ == "__main__":
    main()
