"""``fastodin demo``: real work on a fresh machine, no hardware, no arguments.

Codec path (used until the archive and ODIN simulator are available): synthesise 5 named
channels of two f64 at 1 kHz plus id-0 metadata, encode them with :class:`fastodin.codec.Encoder`
(namespace on), write a raw ``.fastpack`` file, read it back with :class:`fastodin.codec.Decoder`
fed 32 KiB chunks and with :func:`fastodin.columns.channel_array`, check every count and value,
and print a summary.

>>> import io, tempfile, os
>>> d = tempfile.mkdtemp(); out = io.StringIO()
>>> codec_demo(os.path.join(d, "x.fastpack"), seconds=0.01, out=out)
0
>>> "verified" in out.getvalue()
True
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, TextIO

import numpy as np

from ._util import EXIT_DATA, EXIT_IO, EXIT_OK, CliError, human_bytes, human_rate, table

__all__ = ["codec_demo", "default_demo_path", "CHANNELS"]

#: name -> (frequency Hz, amplitude) of the synthetic signals; every record is two f64 (value, derivative).
CHANNELS: Dict[str, tuple] = {
    "imu.accel_x": (1.3, 9.81),
    "imu.accel_y": (0.7, 2.0),
    "imu.gyro_z": (2.1, 0.5),
    "motor.current": (5.0, 12.0),
    "motor.speed": (0.25, 3000.0),
}
RATE_HZ = 1000.0
CHUNK = 32 * 1024


def default_demo_path(name: str) -> str:
    """``name`` in the current directory, or in the temp directory when the cwd is not writable.

    >>> os.path.basename(default_demo_path("demo.fastpack"))
    'demo.fastpack'
    """
    cwd = os.getcwd()
    if os.access(cwd, os.W_OK):
        return os.path.join(cwd, name)
    return os.path.join(tempfile.gettempdir(), name)


def _signals(seconds: float) -> Dict[str, tuple]:
    n = max(int(round(seconds * RATE_HZ)), 1)
    t = np.arange(n, dtype=np.float64) / RATE_HZ
    out = {}
    for k, (name, (f, a)) in enumerate(CHANNELS.items()):
        # channels are sampled 1/5 ms apart so the merged stream is strictly time-ordered
        tk = t + k / (RATE_HZ * len(CHANNELS))
        w = 2 * math.pi * f
        vals = np.empty((n, 2), np.float64)
        vals[:, 0] = a * np.sin(w * tk)
        vals[:, 1] = a * w * np.cos(w * tk)
        out[name] = (tk, vals)
    return out


def codec_demo(path: str, seconds: float = 5.0, out: Optional[TextIO] = None) -> int:
    """Run the codec demo into ``path``; print the summary to ``out`` (stdout); return the exit code."""
    out = sys.stdout if out is None else out
    from ..codec import Decoder, Encoder
    from ..columns import channel_array, decode_columns

    sig = _signals(seconds)
    names = list(sig)
    n = len(next(iter(sig.values()))[0])
    # interleave: record j of channel k at time t_j + k/5000
    order = [(sig[name][0][j], name, sig[name][1][j]) for j in range(n) for name in names]
    meta = {
        "fastodin_demo": 1,
        "source": "synthetic (fastodin demo, codec path)",
        "channels": {name: {"payload": "2 x f64 (value, derivative)", "rate_hz": RATE_HZ} for name in names},
        "created_unix": time.time(),
    }

    # -- encode ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    enc = Encoder(namespace=True)
    enc.add_meta(0.0, meta)
    add = enc.add
    for t, name, v in order:
        add(float(t), name, v.tobytes())
    data = enc.take()
    t_enc = time.perf_counter() - t0
    n_data = len(order)

    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_IO) from None

    # -- decode with the streaming Decoder, 32 KiB chunks, from the file ------------------------
    t0 = time.perf_counter()
    dec = Decoder(namespace=True)
    counts: Dict[str, int] = {name: 0 for name in names}
    first: Dict[str, float] = {}
    last: Dict[str, float] = {}
    metas: List[Any] = []
    times: Dict[str, list] = {name: [] for name in names}
    parts: Dict[str, list] = {name: [] for name in names}
    try:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                dec.feed(chunk)
                for r in dec:
                    nm = r.name
                    if nm is None:
                        metas.append(r.meta())
                        continue
                    times[nm].append(r.time)
                    parts[nm].append(r.payload)
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}", EXIT_IO) from None
    t_dec = time.perf_counter() - t0
    leftover = dec.buffered
    mismatches = 0
    for nm in names:
        tk, vals = sig[nm]
        counts[nm] = len(times[nm])
        if counts[nm]:
            first[nm], last[nm] = times[nm][0], times[nm][-1]
        got_t = np.array(times[nm], np.float64)
        got_v = np.frombuffer(b"".join(parts[nm]), np.float64).reshape(-1, 2)
        if got_t.shape != tk.shape or got_v.shape != vals.shape:
            continue  # reported as a count problem below
        mismatches += int(((got_t.view(np.uint64) != tk.view(np.uint64))
                           | (got_v.view(np.uint64) != vals.view(np.uint64)).any(axis=1)).sum())
    del parts

    # -- columnar fast path -------------------------------------------------------------------
    with open(path, "rb") as f:
        raw = f.read()
    t0 = time.perf_counter()
    cols = decode_columns(raw)
    t_cols = time.perf_counter() - t0
    t0 = time.perf_counter()
    col_ok = True
    for name in names:
        v, tt = channel_array(raw, name, ("<f8", 2))
        tk, vals = sig[name]
        if not (np.array_equal(v, vals) and np.array_equal(tt, tk)):
            col_ok = False
    t_chan = time.perf_counter() - t0

    # -- report -----------------------------------------------------------------------------------
    problems = []
    if mismatches:
        problems.append(f"{mismatches} records decoded with different times/values")
    for name in names:
        if counts[name] != n:
            problems.append(f"channel {name}: {counts[name]} records decoded, {n} written")
    if len(metas) != 1 or not isinstance(metas[0], dict) or metas[0].get("fastodin_demo") != 1:
        problems.append("id-0 metadata did not round-trip")
    if leftover:
        problems.append(f"{leftover} bytes left undecoded at the end")
    # decode_columns sees every record: 1 meta + 5 definitions + data
    if cols.count != n_data + 1 + len(names):
        problems.append(f"decode_columns found {cols.count} records, expected {n_data + 1 + len(names)}")
    if not col_ok:
        problems.append("channel_array values/times differ from what was written")

    size = len(data)
    print(f"fastodin demo (codec path): {len(names)} channels x {n} records at {RATE_HZ:g} Hz "
          f"+ id-0 metadata -> {path}", file=out)
    rows = []
    for name in names:
        c = counts[name]
        span = last.get(name, 0.0) - first.get(name, 0.0)
        rate = (c - 1) / span if c > 1 and span > 0 else float("nan")
        rows.append([name, c, f"{first.get(name, float('nan')):.4f}", f"{last.get(name, float('nan')):.4f}",
                     f"{rate:.1f}", "2 x f64", human_bytes(c * 32)])
    print(table(rows, ["channel", "records", "first s", "last s", "rate Hz", "payload", "bytes"],
                right=[1, 2, 3, 4, 6]), file=out)
    total = n_data + 1 + len(names)
    print(f"file: {human_bytes(size)} ({size} bytes), {total} records "
          f"({n_data} data, {len(names)} name definitions, 1 metadata)", file=out)
    perf = [
        ["Encoder.add (names on)", n_data, f"{t_enc * 1e3:.1f} ms", human_rate(n_data / max(t_enc, 1e-9)) + " rec/s"],
        ["Decoder, 32 KiB chunks, names", n_data, f"{t_dec * 1e3:.1f} ms", human_rate(n_data / max(t_dec, 1e-9)) + " rec/s"],
        ["decode_columns", total, f"{t_cols * 1e3:.1f} ms", human_rate(total / max(t_cols, 1e-9)) + " rec/s"],
        [f"channel_array x {len(names)}", total * len(names), f"{t_chan * 1e3:.1f} ms",
         human_rate(total * len(names) / max(t_chan, 1e-9)) + " rec/s"],
    ]
    print(table(perf, ["path", "records", "time", "rate"], right=[1, 2, 3]), file=out)
    if problems:
        for p in problems:
            print(f"FAILED: {p}", file=out)
        return EXIT_DATA
    print(f"verified: all {n_data} records, times and values bit-exact through Decoder and channel_array",
          file=out)
    return EXIT_OK


# -- the ODIN path: simulator -> archive -> info -> decoded rows ----------------------------------

def _fmt_val(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (bytes, bytearray)):
        s = bytes(v).rstrip(b"\0")
        try:
            return repr(s.decode("ascii"))
        except UnicodeDecodeError:
            return s.hex()
    return str(v)


def print_rows(res: Any, out: TextIO, limit: int = 3, max_cols: int = 9) -> None:
    """A few decoded rows of every set (and events) of a :func:`fastodin.odin.decode` result."""
    for sid in sorted(res):
        tab = res[sid]
        rows = tab.rows(limit)
        if not rows:
            continue
        cols = [c for c in rows[0] if c not in ("timestamp", "ticks")]
        shown = cols[:max_cols]
        more = len(cols) - len(shown)
        print(f"set 0x{sid:04X}: {len(tab)} rows, first {len(rows)}"
              + (f" (first {len(shown)} of {len(cols)} columns)" if more else ""), file=out)
        print(table([[_fmt_val(r[c]) for c in shown] for r in rows], shown,
                    right=range(len(shown))), file=out)
    for eid in sorted(getattr(res, "events", {}) or {}):
        ev = res.events[eid]
        if len(ev):
            first = ", ".join(f"{float(t):.4f}s {_fmt_val(p)}" for t, p in list(zip(ev.time, ev.payloads))[:limit])
            print(f"event {eid}: {len(ev)} events; first: {first}", file=out)


def odin_demo(path: str, seconds: float = 5.0, out: Optional[TextIO] = None, seed: int = 1) -> int:
    """Simulated ODIN device -> archive -> ``info`` -> decoded rows, with a replay self-check."""
    out = sys.stdout if out is None else out
    from ..archive.reader import open_archive
    from ..archive.writer import Writer
    from ..odin.decode import decode as odin_decode
    from ..odin.mapping import OdinToFastPack, WriterSink
    from ..odin.replay import iter_packets
    from ..odin.simulator import Simulator
    from .info import info_dict, print_info
    from .sources import odin_records

    sim = Simulator(seed=seed, loss=0.002)
    t0 = time.perf_counter()
    packets = sim.packets(duration=seconds)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        w = Writer(path)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_IO) from None
    with w:
        w.set_tag("source", "fastodin demo: simulated ODIN device")
        w.set_tag("seconds", seconds)
        conv = OdinToFastPack(WriterSink(w))
        conv.add_many(packets)
        conv.close()
    t_rec = time.perf_counter() - t0
    print(f"fastodin demo: simulated ODIN device, {seconds:g} s of recorded time, {len(packets)} packets "
          f"-> {path}", file=out)
    print(f"  simulate {t_sim * 1e3:.0f} ms, map + compress + write {t_rec * 1e3:.0f} ms "
          f"({human_rate(len(packets) / max(t_rec, 1e-9))} packets/s)", file=out)
    print("", file=out)
    print(f"$ fastodin info {path}", file=out)
    with open_archive(path) as ar:
        d = info_dict(ar)
        print_info(d, out)
        t0 = time.perf_counter()
        res = odin_decode(odin_records(ar))
        t_dec = time.perf_counter() - t0
        print("", file=out)
        print(f"decoded rows (fastodin.odin.decode, {t_dec * 1e3:.0f} ms):", file=out)
        print_rows(res, out)
        back = list(iter_packets(odin_records(ar)))
    print("", file=out)
    if back != packets:
        same = sum(1 for a, b in zip(back, packets) if a == b)
        print(f"FAILED: replay gave {len(back)} packets, {same} identical to the {len(packets)} recorded", file=out)
        return EXIT_DATA
    print(f"verified: replaying the archive gives back all {len(packets)} packets byte for byte, in order", file=out)
    print(f"next: fastodin cat {path} --channel 'odin/set/*' | head;  fastodin replay {path} --stdout --format burst",
          file=out)
    return EXIT_OK


# -- the subcommand ------------------------------------------------------------------------------
NAME = "demo"
HELP = "record a simulated device into a file, then show what is in it (no hardware needed)"
EXAMPLE = "fastodin demo                   # writes ./demo.fastpack.zst and shows what is in it\nfastodin demo -o /tmp/d.fastpack.zst --seconds 2"


def add_arguments(p: Any) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: demo.fastpack.zst in the "
                   "current directory, or the temp directory if that is not writable)")
    p.add_argument("--seconds", type=float, default=5.0, metavar="S",
                   help="seconds of recorded time to simulate (default 5)")
    p.add_argument("--codec", action="store_true",
                   help="codec-only demo instead: synthetic channels -> raw .fastpack -> decode and verify")


def _odin_available() -> bool:
    try:
        import fastodin.archive.reader  # noqa: F401
        import fastodin.archive.writer  # noqa: F401
        import fastodin.odin.decode  # noqa: F401
        import fastodin.odin.mapping  # noqa: F401
        import fastodin.odin.simulator  # noqa: F401
    except ImportError:
        return False
    return True


def run(args: Any) -> int:
    if not (args.seconds > 0 and math.isfinite(args.seconds)) or args.seconds > 3600:
        raise CliError("--seconds must be in (0, 3600]", 2)
    if args.codec or not _odin_available():
        path = args.output or default_demo_path("demo.fastpack")
        return codec_demo(path, seconds=args.seconds)
    path = args.output or default_demo_path("demo.fastpack.zst")
    return odin_demo(path, seconds=args.seconds)
