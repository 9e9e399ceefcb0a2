#!/usr/bin/env python3
"""Cross-check fastodin's FastPack codec against the REAL Perl Data::FastPack (run by hand, not in CI).

Not collected by pytest (the file name does not match ``test_*.py``).  Needs the reference built as
/work/shared/tools/perl/README.md says (``setup.sh``) and ``PERL5LIB`` pointing at it; when PERL5LIB
is unset, ``~/.cache/fastpack-perl/perl/lib/perl5`` is tried.  See tests/interop/README.md.

Checks, for seeded random streams in plain and namespace mode (tests/interop/README.md has the table):

* ``encode``: our Encoder -> ``fp_decode.pl`` vs our Decoder (and vs the records written):
  every message (time bits, name/id, payload, meta_ok for id 0) and the leftover.
* ``perl-encode``: JSON lines -> ``fp_encode.pl`` -> bytes must equal our Encoder's, and our
  Decoder must give back the records written.
* ``cut``: the stream cut at a random point -> Perl's messages + leftover vs our Decoder's records +
  ``Decoder.buffered`` (our Decoder is fed in random chunks).
* ``columns``: decode_columns / channel_array vs Perl.
* ``raw-ns`` / ``raw-ns-falsy``: hand-built streams (redefinitions, unknown ids, id-0 payload ``"0"``;
  -falsy: definitions named ``""``/``"0"``) decoded in namespace mode by both decoders ("we return
  exactly what the Perl decoder returns", spec/fastpack.md section 3).
* ``archive``: an archive written by ``fastodin.archive.Writer``, ``zstd -dc`` -> ``fp_decode.pl ns``
  must see exactly the records written.
* ``meta``: odd and random id-0 payloads: Perl decode_meta_payload vs our decode_meta.
* ``open-raw``: a raw ``.fastpack`` file opened with ``fastodin.open()``: ``records()`` and
  ``records(channels=name)`` vs the Perl namespace decoder.

Every mismatch is shrunk to a small op list and printed as a runnable Python repro.

    python tests/interop/perl_crosscheck.py --cases 300 --seed 1
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time as _time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run from a checkout without installing

from fastodin.codec import Decoder, Encoder  # noqa: E402
from fastodin.errors import UsageError  # noqa: E402
from fastodin.metadata import decode_meta, encode_meta  # noqa: E402
from fastodin.namespace import name_to_bytes  # noqa: E402

TOOLS = Path(os.environ.get("FP_PERL_TOOLS", "/work/shared/tools/perl"))
DEFAULT_PERL5LIB = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastpack-perl/perl/lib/perl5"

# An op is one call on our Encoder:
#   ("rec", time_bits, key, payload)   key: int id (plain) / str name, bytes name or 0/"0"/"" (ns)
#   ("reset", time_bits)
#   ("raw", time_bits, id, payload)    (category e only: written with a plain Encoder, decoded with ns)
Op = Tuple[Any, ...]
Line = Tuple[str, str, str, Optional[int]]  # (time_hex, "n:<hex>" | "i:<id>", payload_hex, meta_ok)


# ---------------------------------------------------------------------------------------------
# helpers


def f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def bits_of(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def thex(bits: int) -> str:
    return struct.pack("<Q", bits).hex()


def key_bytes(key: Any) -> bytes:
    return key if isinstance(key, bytes) else name_to_bytes(key)


def is_meta_key(key: Any) -> bool:
    return key in (0, "0", "", b"", b"0") and not isinstance(key, bool)


def meta_ok(payload: bytes) -> Optional[int]:
    """The fp_decode.pl notion: null for an empty payload, 1 if decode_meta gives a defined value."""
    if not payload:
        return None
    try:
        return 0 if decode_meta(payload) is None else 1
    except ValueError:
        return 0


# ---------------------------------------------------------------------------------------------
# the reference tools


class Perl:
    def __init__(self) -> None:
        env = dict(os.environ)
        if not env.get("PERL5LIB") and DEFAULT_PERL5LIB.is_dir():
            env["PERL5LIB"] = str(DEFAULT_PERL5LIB)
        self.env = env
        self.calls = 0

    def available(self) -> Tuple[bool, str]:
        if not shutil.which("perl"):
            return False, "perl is not installed"
        for tool in ("fp_decode.pl", "fp_encode.pl"):
            if not (TOOLS / tool).is_file():
                return False, f"{TOOLS / tool} is missing (set FP_PERL_TOOLS)"
        r = subprocess.run(
            ["perl", "-MData::FastPack", "-MData::FastPack::Meta", "-MCpanel::JSON::XS", "-e1"],
            env=self.env, capture_output=True, text=True,
        )
        if r.returncode:
            return False, "Data::FastPack is not loadable (run setup.sh, export PERL5LIB): " + r.stderr.strip()[:300]
        return True, self.env.get("PERL5LIB", "")

    def decode(self, data: bytes, ns: bool) -> Tuple[List[Line], int]:
        self.calls += 1
        r = subprocess.run(
            ["perl", str(TOOLS / "fp_decode.pl"), "ns" if ns else "plain"],
            input=data, env=self.env, capture_output=True, timeout=120,
        )
        if r.returncode:
            raise RuntimeError(f"fp_decode.pl failed ({r.returncode}): {r.stderr.decode(errors='replace')[:500]}")
        lines = r.stdout.decode().splitlines()
        tail = json.loads(lines[-1])
        out = [tuple(json.loads(ln)) for ln in lines[:-1]]
        return out, int(tail["leftover"])  # type: ignore[return-value]

    def encode(self, jsonl: str, ns: bool) -> bytes:
        self.calls += 1
        r = subprocess.run(
            ["perl", str(TOOLS / "fp_encode.pl"), "ns" if ns else "plain"],
            input=jsonl.encode(), env=self.env, capture_output=True, timeout=120,
        )
        if r.returncode:
            raise RuntimeError(f"fp_encode.pl failed ({r.returncode}): {r.stderr.decode(errors='replace')[:500]}")
        return r.stdout


# ---------------------------------------------------------------------------------------------
# random streams


FUZZ_META_IN_STREAMS = False  # --meta-fuzz-in-streams
CATEGORIES = ["encode", "perl-encode", "cut", "columns", "raw-ns", "raw-ns-falsy", "archive", "meta", "open-raw"]


def rand_time_bits(rng: random.Random) -> int:
    c = rng.random()
    if c < 0.45:
        x = rng.choice([rng.uniform(0, 1e6), rng.uniform(-1e9, 1e9), float(rng.randint(0, 10**6)), rng.random()])
        return bits_of(x)
    if c < 0.55:
        return rng.choice([bits_of(0.0), bits_of(-0.0), bits_of(math.inf), bits_of(-math.inf)])
    if c < 0.70:  # NaN with payload bits (quiet and signalling), either sign
        sign = rng.getrandbits(1) << 63
        frac = rng.choice([1, 1 << 51, (1 << 51) | 1, rng.randint(1, (1 << 52) - 1), (1 << 52) - 1])
        return sign | (0x7FF << 52) | frac
    if c < 0.85:  # subnormals
        sign = rng.getrandbits(1) << 63
        return sign | rng.choice([1, (1 << 52) - 1, rng.randint(1, (1 << 52) - 1)])
    if c < 0.92:
        return rng.choice([0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0x8010000000000000, bits_of(1e-300), bits_of(2.0**60)])
    return rng.getrandbits(64)


_UNI = "éàüßΩж中文日本語한국😀🚀\u00a0\u200b\u0301"
_NUMERIC_LIKE = ["1", "00", "0.0", "0E0", " 0", "0 ", "-0", "+0", "0x0", "00000000", "0\n", "\x000"]


def rand_name_bytes(rng: random.Random) -> bytes:
    c = rng.random()
    if c < 0.35:
        n = rng.randint(1, 16)
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_./-:") for _ in range(n)).encode()
    if c < 0.60:
        n = rng.randint(1, 12)
        return "".join(rng.choice(_UNI + "abc/_ ") for _ in range(n)).encode("utf-8")
    if c < 0.70:
        return rng.choice(_NUMERIC_LIKE).encode()
    if c < 0.78:  # control characters, quotes, NUL
        return bytes(rng.choice(b"\x00\x01\n\t\"\\' {}[]") for _ in range(rng.randint(1, 6))) + b"x"
    if c < 0.86:  # not valid UTF-8 (kept with surrogateescape on our side)
        return rng.choice([b"\xff", b"\x80abc", b"\xc3", b"a\xed\xa0\x80b", bytes(rng.randint(128, 255) for _ in range(4))])
    if c < 0.93:  # long
        return ("long_" * 80)[: rng.randint(40, 300)].encode()
    return rng.randbytes(rng.randint(1, 24))


def rand_payload(rng: random.Random) -> bytes:
    c = rng.random()
    if c < 0.3:
        n = rng.randint(0, 17)
    elif c < 0.4:
        n = 8 * rng.randint(0, 37)
    else:
        n = rng.randint(0, 300)
    if rng.random() < 0.2:
        return bytes([rng.choice(b"0\x00\xff")]) * n
    return rng.randbytes(n)


def rand_json_value(rng: random.Random, depth: int = 0) -> Any:
    c = rng.random()
    if depth < 3 and c < 0.25:
        return {rand_text(rng): rand_json_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    if depth < 3 and c < 0.4:
        return [rand_json_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return rng.choice([
        rng.randint(-(2**63), 2**63 - 1), rng.randint(-1000, 1000), rng.randint(0, 2**64 - 1),
        rng.uniform(-1e6, 1e6), True, False, None, rand_text(rng), 0.0, -0.5, 1e300,
    ])


def rand_text(rng: random.Random) -> str:
    return "".join(rng.choice("abcxyz_ " + _UNI) for _ in range(rng.randint(0, 10)))


_FUZZ_META = [
    b'{"a":1} ', b"[1,2", b'{"a":NaN}', b"\xc0", b"\x05", b"\x93\x01\x02", b"\x81\xa1a\x01\xff", b"\xd4\x01\x02",
    b"\xc1", b'"str"', b"[1] x", b'["\\ud800"]', b'{"a":1,"a":2}', b"\x81\x01\x02", b"\xa2\xff\xfe", b"\xc2",
    b"\x91" * 2000 + b"\xc0", b"[" * 2000 + b"]" * 2000, b"\xc4\x03abc", b"\xcb" + struct.pack(">d", math.nan),
    b"\xd6\xff\x00\x00\x00\x01", b'{"\xff":1}', b"[1e999]", b"[18446744073709551616]", b"[-0]", b"{}", b"[]",
    b"\x80", b"\x90", b"\xa0", b" [1]", b"\n{}", b"00", b"0\x00", b"\x00",
]


def rand_meta(rng: random.Random, ns: bool, fuzz: bool = False) -> bytes:
    """Valid JSON / MessagePack metadata; with ``fuzz`` also odd payloads (category ``meta`` checks those)."""
    c = rng.random() * (1.0 if fuzz else 0.85)
    if c < 0.45:
        obj = {rand_text(rng) or "k": rand_json_value(rng) for _ in range(rng.randint(1, 6))}
        if rng.random() < 0.2:
            obj = [rand_json_value(rng) for _ in range(rng.randint(0, 6))]
        try:
            return encode_meta(obj, "json")
        except UsageError:
            return b'{"fallback":1}'
    if c < 0.85:
        obj = {rand_text(rng): rand_json_value(rng) for _ in range(rng.randint(0, 6))}
        if rng.random() < 0.2:
            obj = [rand_json_value(rng) for _ in range(rng.randint(0, 6))]
        return encode_meta(obj, "msgpack")
    p = rng.choice(_FUZZ_META)
    if p == b"0" and ns:
        return b"00"
    return p


def gen_ops(rng: random.Random, ns: bool, max_records: int) -> List[Op]:
    n = rng.choice([0, 1, 2, rng.randint(0, max_records), rng.randint(0, max_records), rng.randint(0, 6 * max_records)])
    ops: List[Op] = []
    if ns:
        pool: List[bytes] = []
        for _ in range(rng.randint(1, 12)):
            b = rand_name_bytes(rng)
            if b not in pool and b not in (b"", b"0"):
                pool.append(b)
        for _ in range(n):
            c = rng.random()
            t = rand_time_bits(rng)
            if c < 0.05:
                ops.append(("reset", t))
            elif c < 0.07:
                ops.append(("rec", t, rng.choice([0, "0", ""]), b""))  # reset spelled as an id-0 record
            elif c < 0.17:
                ops.append(("rec", t, rng.choice([0, 0, "0", "", b""]), rand_meta(rng, ns, FUZZ_META_IN_STREAMS)))
            else:
                b = rng.choice(pool)
                s = b.decode("utf-8", "surrogateescape")
                ops.append(("rec", t, b if rng.random() < 0.1 else s, rand_payload(rng)))
    else:
        ids = [rng.choice([1, 2, 3, 7, 255, 256, 65535, 65536, 2**31, 2**32 - 1, rng.randint(1, 2**32 - 1)])
               for _ in range(rng.randint(1, 8))]
        for _ in range(n):
            c = rng.random()
            t = rand_time_bits(rng)
            if c < 0.05:
                ops.append(("reset", t))
            elif c < 0.15:
                ops.append(("rec", t, 0, rng.choice([rand_meta(rng, ns, FUZZ_META_IN_STREAMS), b"0", b""])))
            else:
                ops.append(("rec", t, rng.choice(ids), rand_payload(rng)))
    return ops


def gen_raw_ops(rng: random.Random, max_records: int, falsy: bool) -> List[Op]:
    """Hand-built namespace streams: arbitrary ids, definitions of any name, redefinitions, resets.
    ``falsy``: definitions may also carry the names Perl treats as false ("" and "0")."""
    ops: List[Op] = []
    for _ in range(rng.randint(0, max_records)):
        t = rand_time_bits(rng)
        c = rng.random()
        if c < 0.08:
            ops.append(("raw", t, 0, b""))
        elif c < 0.12:
            ops.append(("raw", t, 0, b"0"))
        elif c < 0.2:
            ops.append(("raw", t, 0, rand_meta(rng, False, FUZZ_META_IN_STREAMS)))
        elif c < 0.45:  # looks like a definition: a name payload (incl. the Perl-false "" and "0")
            name = rng.choice([b"", b"0", b"00", b"a", b"b", "é".encode(), b"0.0", rand_name_bytes(rng)])
            if not falsy and name in (b"", b"0"):
                name = b"n" + name
            ops.append(("raw", t, rng.randint(1, 6), name))
        else:
            p = rand_payload(rng)
            if not falsy and p in (b"", b"0"):
                p = b"p" + p  # may land on an undefined id: then it is a definition
            ops.append(("raw", t, rng.randint(1, 6), p))
    return ops


# ---------------------------------------------------------------------------------------------
# our side


def our_encode(ops: Sequence[Op], ns: bool) -> bytes:
    enc = Encoder(namespace=True if ns and not (ops and ops[0][0] == "raw") else None)
    for op in ops:
        if op[0] == "reset":
            enc.reset(f64(op[1]))
        else:
            enc.add(f64(op[1]), op[2], op[3])
    return enc.take()


def expected_lines(ops: Sequence[Op], ns: bool) -> List[Line]:
    """What a decoder must output for ops written by our Encoder (categories a, b, d)."""
    out: List[Line] = []
    for op in ops:
        if op[0] == "reset" or (ns and is_meta_key(op[2]) and op[3] == b""):
            if not ns:
                out.append((thex(op[1]), "i:0", "", None))
            continue
        _, t, key, payload = op
        if ns and not is_meta_key(key):
            out.append((thex(t), "n:" + key_bytes(key).hex(), payload.hex(), None))
        else:
            k = 0 if ns else key
            out.append((thex(t), f"i:{k}", payload.hex(), meta_ok(payload) if k == 0 else None))
    return out


def our_decode(data: bytes, ns: bool, rng: Optional[random.Random] = None) -> Tuple[List[Line], int]:
    """Decode with our Decoder, fed in random chunks (iterating after every feed)."""
    dec = Decoder(namespace=ns)
    out: List[Line] = []
    cuts = [0, len(data)]
    if rng is not None and data:
        cuts += [rng.randint(0, len(data)) for _ in range(rng.choice([0, 1, 3, 10]))]
        if rng.random() < 0.05 and len(data) < 4000:
            cuts += list(range(len(data)))  # a byte at a time
    cuts = sorted(set(cuts))

    def take() -> None:
        for r in dec:
            if ns and r.name is not None:
                key = "n:" + name_to_bytes(r.name).hex()
            else:
                key = f"i:{r.id}"
            p = bytes(r.payload)
            out.append((thex(bits_of(r.time)), key, p.hex(), meta_ok(p) if key == "i:0" else None))

    for a, b in zip(cuts, cuts[1:]):
        dec.feed(data[a:b])
        take()
    take()
    return out, dec.buffered


def perl_lines(lines: List[Line]) -> List[Line]:
    return [(t, k, p, None if m is None else int(m)) for t, k, p, m in lines]


def jsonl_for(ops: Sequence[Op], ns: bool) -> str:
    rows = []
    for op in ops:
        if op[0] == "reset":
            rows.append([thex(op[1]), "i:0", ""])
            continue
        _, t, key, payload = op
        if ns and not is_meta_key(key):
            k = "n:" + key_bytes(key).hex()
        elif ns:
            k = "i:0"
        else:
            k = f"i:{key}"
        rows.append([thex(t), k, payload.hex()])
    return "".join(json.dumps(r) + "\n" for r in rows)


# ---------------------------------------------------------------------------------------------
# comparisons: each returns None (agree) or a short description of the first difference


SELF_TEST = False  # --self-test: corrupt our side on purpose, every comparison must then fail


def diff_lines(what_a: str, a: List[Line], what_b: str, b: List[Line]) -> Optional[str]:
    if SELF_TEST and b:
        b = list(b[:-1]) + [(b[-1][0], b[-1][1], b[-1][2] + "ff", b[-1][3])]
    for i, (x, y) in enumerate(zip(a, b)):
        if tuple(x) != tuple(y):
            kind = "meta_ok only: " if tuple(x[:3]) == tuple(y[:3]) else ""
            return f"{kind}message {i}: {what_a} {list(x)} != {what_b} {list(y)}"
    if len(a) != len(b):
        i = min(len(a), len(b))
        extra = (a[i:] or b[i:])[:2]
        return f"{what_a} has {len(a)} messages, {what_b} {len(b)}; first extra: {[list(e) for e in extra]}"
    return None


def check_encode(perl: Perl, ops: Sequence[Op], ns: bool, rng: random.Random) -> Optional[str]:
    try:
        data = our_encode(ops, ns)
    except UsageError as e:
        return f"our Encoder refused a valid op list: {e}"
    p, pleft = perl.decode(data, ns)
    p = perl_lines(p)
    o, oleft = our_decode(data, ns, rng)
    d = diff_lines("perl", p, "ours", o)
    if d:
        return d
    if pleft != oleft:
        return f"leftover: perl {pleft} != ours {oleft}"
    d = diff_lines("decoded", o, "written", expected_lines(ops, ns))
    if d:
        return d
    return None


def check_perl_encode(perl: Perl, ops: Sequence[Op], ns: bool, rng: random.Random) -> Optional[str]:
    ours = our_encode(ops, ns)
    theirs = perl.encode(jsonl_for(ops, ns), ns)
    if ours != theirs:
        i = next((k for k, (x, y) in enumerate(zip(ours, theirs)) if x != y), min(len(ours), len(theirs)))
        return (f"bytes differ at offset {i} (record at {i - i % 8}..): ours {len(ours)} B "
                f"{ours[max(0, i - 16):i + 24].hex()} / perl {len(theirs)} B {theirs[max(0, i - 16):i + 24].hex()}")
    o, oleft = our_decode(theirs, ns, rng)
    d = diff_lines("ours(perl bytes)", o, "written", expected_lines(ops, ns))
    if d:
        return d
    if oleft:
        return f"our Decoder left {oleft} bytes of the Perl stream"
    return None


def check_cut(perl: Perl, ops: Sequence[Op], ns: bool, rng: random.Random, drop: int) -> Optional[str]:
    data = our_encode(ops, ns)
    cut = data[: max(0, len(data) - drop)]
    p, pleft = perl.decode(cut, ns)
    p = perl_lines(p)
    o, oleft = our_decode(cut, ns, rng)
    d = diff_lines("perl", p, "ours", o)
    if d:
        return f"(cut at {len(cut)} of {len(data)}) " + d
    if pleft != oleft:
        return f"(cut at {len(cut)} of {len(data)}) leftover: perl {pleft} != Decoder.buffered {oleft}"
    return None


def check_raw_ns(perl: Perl, ops: Sequence[Op], ns: bool, rng: random.Random) -> Optional[str]:
    data = our_encode(ops, False)
    p, pleft = perl.decode(data, True)
    p = perl_lines(p)
    o, oleft = our_decode(data, True, rng)
    d = diff_lines("perl", p, "ours", o)
    if d:
        return d
    if pleft != oleft:
        return f"leftover: perl {pleft} != ours {oleft}"
    return compare_channels(data, p, True)


def fixed_sizes(ops: Sequence[Op], rng: random.Random) -> List[Op]:
    """The same ops with one payload size per channel (what channel_array reads)."""
    size: Dict[Any, int] = {}
    out: List[Op] = []
    for op in ops:
        if op[0] != "reset" and not is_meta_key(op[2]):
            k = key_bytes(op[2]) if isinstance(op[2], (str, bytes)) else op[2]
            n = size.setdefault(k, rng.choice([0, 1, 7, 8, 16, 24, rng.randint(0, 64)]))
            op = (op[0], op[1], op[2], rng.randbytes(n))
        out.append(op)
    return out


def compare_channels(data: bytes, perl_msgs: List[Line], ns: bool) -> Optional[str]:
    """channel_array for every channel Perl reports (uniform payload sizes only) vs Perl's messages."""
    import numpy as np
    from fastodin.columns import channel_array

    chans: Dict[str, List[Line]] = {}
    for m in perl_msgs:
        if m[1] != "i:0":
            chans.setdefault(m[1], []).append(m)
    for k, ms in chans.items():
        sizes = {len(m[2]) // 2 for m in ms}
        if len(sizes) != 1:
            continue
        n = sizes.pop()
        if ns:
            ch: Any = bytes.fromhex(k[2:]).decode("utf-8", "surrogateescape")
        else:
            ch = int(k[2:])
        try:
            times, vals = channel_array(data, ch, np.dtype(("u1", (n,))), namespace=ns)
        except Exception as e:
            return f"channel_array({ch!r}, {n}-byte dtype, namespace={ns}) raised {type(e).__name__}: {e}"
        got = [(thex(int(b)), k, bytes(v).hex(), None) for b, v in zip(times.view("<u8"), vals)]
        d = diff_lines(f"perl[{k}]", [tuple(m) for m in ms], f"channel_array[{ch!r}]", got)
        if d:
            return d
    return None


def check_columns(perl: Perl, ops: Sequence[Op], ns: bool, rng: random.Random, drop: int) -> Optional[str]:
    """decode_columns (raw ids) on a cut stream vs Perl plain; channel_array per channel vs Perl."""
    from fastodin.columns import decode_columns

    data = our_encode(ops, ns)
    cut = data[: max(0, len(data) - drop)]
    p, pleft = perl.decode(cut, False)
    c = decode_columns(cut)
    got = []
    for b, i, off, ln in zip(c.time_bits.tolist(), c.id.tolist(), c.offset.tolist(), c.length.tolist()):
        pl = cut[off:off + ln]
        got.append((thex(b), f"i:{i}", pl.hex(), meta_ok(pl) if i == 0 else None))
    d = diff_lines("perl(plain)", perl_lines(p), "decode_columns", got)
    if d:
        return f"(cut at {len(cut)} of {len(data)}) " + d
    if pleft != len(c.leftover):
        return f"(cut at {len(cut)} of {len(data)}) leftover: perl {pleft} != decode_columns {len(c.leftover)}"
    pn, _ = perl.decode(data, ns)
    return compare_channels(data, perl_lines(pn), ns)


# ---------------------------------------------------------------------------------------------
# archives (category d): only once fastodin.archive has a Writer


def archive_writer() -> Optional[Any]:
    try:
        import fastodin.archive as archive  # noqa: F401
    except Exception:
        return None
    w = getattr(archive, "Writer", None)
    if w is None:
        try:
            import fastodin

            w = getattr(fastodin, "Writer", None)
        except Exception:
            w = None
    return w


def archive_ops(ops: Sequence[Op], rng: random.Random) -> List[Op]:
    """Ops the archive Writer takes: no resets, no NaN times (refused), str names, valid metadata
    (not b"", b"0" or the writer's reserved '{"fastodin":' prefix), plus random flushes."""
    out: List[Op] = []
    for op in ops:
        if op[0] == "reset":
            continue
        _, t, key, payload = op
        if f64(t) != f64(t):
            t = rng.choice([bits_of(math.inf), bits_of(-0.0), 1, bits_of(rng.uniform(-10, 10))])
        if is_meta_key(key):
            if payload in (b"", b"0") or payload.startswith(b'{"fastodin":'):
                continue
            key = 0
        elif isinstance(key, bytes):
            key = key.decode("utf-8", "surrogateescape")
        out.append(("rec", t, key, payload))
        if rng.random() < 0.05:
            out.append(("flush",))
    return out


def check_archive(perl: Perl, ops: Sequence[Op], params: Dict[str, int], rng: random.Random) -> Optional[str]:
    """Write the records with our archive Writer (``write(t, name, payload)``, ``write(t, 0, meta)``,
    ``flush()``), ``zstd -dc``, decode with Perl (ns).  The Perl decoder must see every record
    written (per channel the same (time bits, payload) multiset: the Writer may reorder by time
    inside a frame and interleave groups); besides those, only the Writer's own '{"fastodin":'
    metadata, which Perl must decode; nothing left over; our Decoder must agree with Perl exactly."""
    Writer = archive_writer()
    assert Writer is not None
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "x.fastpack.zst"
        with Writer(str(path), **params) as w:
            for op in ops:
                if op[0] == "flush":
                    w.flush()
                else:
                    w.write(f64(op[1]), op[2], op[3])
        r = subprocess.run(["zstd", "-dcq", str(path)], capture_output=True)
        if r.returncode:
            return f"zstd -dc failed: {r.stderr.decode(errors='replace')[:300]}"
        raw = r.stdout
        return _check_archive_stream(perl, raw, path, ops, rng)


def _check_archive_stream(perl: Perl, raw: bytes, path: Path, ops: Sequence[Op], rng: random.Random) -> Optional[str]:
    p, pleft = perl.decode(raw, True)
    p = perl_lines(p)
    if pleft:
        return f"perl leftover {pleft} bytes after the decompressed archive"
    tag = b'{"fastodin":'.hex()
    own = [m for m in p if m[1] == "i:0" and m[2].startswith(tag)]
    bad = [m for m in own if m[3] != 1]
    if bad:
        return f"perl cannot decode the Writer's own metadata: {list(bad[0])}"
    got = sorted(tuple(m) for m in p if not (m[1] == "i:0" and m[2].startswith(tag)))
    if SELF_TEST and got:
        got = got[1:]
    want = sorted(expected_lines([op for op in ops if op[0] == "rec"], True))
    if got != want:
        gs, ws = set(got), set(want)
        missing = sorted(ws - gs)[:2]
        extra = sorted(gs - ws)[:2]
        return (f"perl sees {len(got)} records, {len(want)} written; "
                f"missing e.g. {[list(x) for x in missing]}, unexpected e.g. {[list(x) for x in extra]}")
    o, oleft = our_decode(raw, True, rng)
    d = diff_lines("perl(archive)", p, "ours(archive)", o)
    if d:
        return d
    import fastodin

    for order in ("file", "time"):
        with fastodin.open(str(path)) as a:
            recs = record_lines(a.records(order=order))
        if order == "time":
            ts = [f64(int.from_bytes(bytes.fromhex(r[0]), "little")) for r in recs]
            if any(y < x for x, y in zip(ts, ts[1:])):
                return "fastodin.open(archive).records(order='time') is not in time order"
        mine = sorted(recs)
        if SELF_TEST and mine:
            mine = mine[1:]
        if mine != want:
            gs, ws = set(mine), set(want)
            return (f"fastodin.open(archive).records(order={order!r}) gives {len(mine)} records, "
                    f"{len(want)} written; missing e.g. {[list(x) for x in sorted(ws - gs)[:2]]}, "
                    f"unexpected e.g. {[list(x) for x in sorted(gs - ws)[:2]]}")
    return None


def record_lines(records: Any) -> List[Line]:
    out: List[Line] = []
    for r in records:
        p = bytes(r.payload)
        key = f"i:{r.id}" if r.name is None else "n:" + name_to_bytes(r.name).hex()
        out.append((thex(bits_of(r.time)), key, p.hex(), meta_ok(p) if key == "i:0" else None))
    return out


def check_open_raw(perl: Perl, ops: Sequence[Op], ns: bool, rng: random.Random) -> Optional[str]:
    """A raw .fastpack file opened with fastodin.open(): records() (all, then per channel name)
    must equal what the Perl namespace decoder reads from the same file."""
    import fastodin

    data = our_encode(ops, True)
    p, pleft = perl.decode(data, True)
    p = perl_lines(p)
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "x.fastpack"
        path.write_bytes(data)
        with fastodin.open(str(path)) as a:
            d = diff_lines("perl", p, "fastodin.open(raw).records()", record_lines(a.records()))
            if d:
                return d
            names = sorted({m[1] for m in p if m[1] != "i:0"})
            for k in rng.sample(names, min(3, len(names))):
                name = bytes.fromhex(k[2:]).decode("utf-8", "surrogateescape")
                want = [m for m in p if m[1] == k]
                d = diff_lines(f"perl[{k}]", want, f"records(channels={name!r})",
                               record_lines(a.records(channels=name)))
                if d:
                    return d
    return None


def archive_repro(ops: Sequence[Op], params: Dict[str, int]) -> str:
    lines = [
        "import struct, subprocess",
        "from fastodin.archive import Writer",
        "t = lambda h: struct.unpack('<d', bytes.fromhex(h))[0]",
        f"with Writer('x.fastpack.zst', **{params!r}) as w:",
    ]
    for op in ops:
        if op[0] == "flush":
            lines.append("    w.flush()")
        else:
            lines.append(f"    w.write(t('{thex(op[1])}'), {op[2]!r}, bytes.fromhex('{op[3].hex()}'))")
    lines.append("# then: zstd -dc x.fastpack.zst | perl fp_decode.pl ns  vs  Decoder(namespace=True) on the same bytes"
                 "  vs  fastodin.open('x.fastpack.zst').records(order='file'|'time')  [archive]")
    return "\n".join(lines)


def run_meta_table(perl: Perl, seed: int) -> Tuple[int, List[Mismatch]]:
    """Category ``meta``: every odd payload of _FUZZ_META plus random valid ones, as id-0 records;
    the Perl decoder's decode_meta_payload and our decode_meta must agree on decodability."""
    rng = random.Random(seed)
    payloads = list(_FUZZ_META) + [rand_meta(rng, False) for _ in range(300)]
    data = our_encode([("rec", 0, 0, m) for m in payloads], False)
    p, _ = perl.decode(data, False)
    o, _ = our_decode(data, False)
    out = []
    for m, a, b in zip(payloads, perl_lines(p), o):
        if a[3] != b[3]:
            try:
                v = decode_meta(m)
                try:
                    ours = repr(v)[:80]
                except RecursionError:
                    ours = "a value nested too deep to repr"
            except ValueError as e:
                ours = f"{type(e).__name__}"
            out.append(Mismatch(
                "meta", "plain", seed, f"meta_ok only: payload {m[:24]!r}{'...' if len(m) > 24 else ''}: perl meta_ok={a[3]}, ours={b[3]} (decode_meta -> {ours})",
                f"from fastodin.metadata import decode_meta; decode_meta(bytes.fromhex('{m[:64].hex()}'{' + b' + repr(m[64:]) if len(m) > 64 else ''}))"
                f"   # perl: decode_meta_payload {'ok' if a[3] else 'fails'}"))
    return len(payloads), out


# ---------------------------------------------------------------------------------------------
# shrinking and repro


def shrink(ops: List[Op], fails: Callable[[List[Op]], bool], budget: int = 250) -> List[Op]:
    """Greedy delta debugging: drop chunks of ops while the mismatch persists."""
    cur = list(ops)
    chunk = max(1, len(cur) // 2)
    while chunk >= 1 and budget > 0:
        i = 0
        progressed = False
        while i < len(cur) and budget > 0:
            cand = cur[:i] + cur[i + chunk:]
            budget -= 1
            try:
                bad = fails(cand)
            except Exception:
                bad = False
            if bad:
                cur = cand
                progressed = True
            else:
                i += chunk
        if not progressed:
            chunk //= 2
    return cur


def repro(ops: Sequence[Op], ns: bool, category: str, extra: str = "") -> str:
    raw = bool(ops) and ops[0][0] == "raw"
    lines = [
        "import struct",
        "from fastodin.codec import Encoder, Decoder",
        "t = lambda h: struct.unpack('<d', bytes.fromhex(h))[0]",
        f"enc = Encoder(namespace={bool(ns and not raw)})",
    ]
    for op in ops:
        if op[0] == "reset":
            lines.append(f"enc.reset(t('{thex(op[1])}'))")
        else:
            lines.append(f"enc.add(t('{thex(op[1])}'), {op[2]!r}, bytes.fromhex('{op[3].hex()}'))")
    lines.append("data = enc.take()" + extra)
    dec_ns = True if (ns or raw) else False
    also = {"columns": " / decode_columns(data) / channel_array(data, channel, dtype)",
            "raw-ns": " / channel_array(data, name, dtype)", "raw-ns-falsy": " / channel_array(data, name, dtype)",
            "open-raw": " / open('x.fastpack','wb').write(data); fastodin.open('x.fastpack').records(channels=...)"}
    lines.append(f"# then: perl fp_decode.pl {'ns' if dec_ns else 'plain'} on data  vs  "
                 f"dec = Decoder(namespace={dec_ns}); dec.feed(data); list(dec){also.get(category, '')}  [{category}]")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# driver


@dataclass
class Mismatch:
    category: str
    mode: str
    seed: int
    detail: str
    repro: str


@dataclass
class Stats:
    cases: Dict[str, int] = field(default_factory=dict)
    records: int = 0
    mismatches: List[Mismatch] = field(default_factory=list)


def run_case(perl: Perl, seed: int, cat: str, ns: bool, max_records: int, do_shrink: bool) -> Tuple[int, Optional[Mismatch]]:
    rng = random.Random(seed)
    mode = "ns" if ns else "plain"
    if cat in ("raw-ns", "raw-ns-falsy"):
        ops = gen_raw_ops(rng, max_records * 2, cat == "raw-ns-falsy")
        mode = "ns"
    else:
        ops = gen_ops(rng, ns, max_records)
    drop = 0
    if cat == "encode":
        fn = lambda o: check_encode(perl, o, ns, random.Random(seed + 1))  # noqa: E731
    elif cat == "perl-encode":
        fn = lambda o: check_perl_encode(perl, o, ns, random.Random(seed + 1))  # noqa: E731
    elif cat == "cut":
        full = len(our_encode(ops, ns))
        drop = rng.randint(1, min(full, 64 + rng.choice([0, 300]))) if full else 0
        fn = lambda o: check_cut(perl, o, ns, random.Random(seed + 1), drop)  # noqa: E731
    elif cat == "columns":
        ops = fixed_sizes(ops, rng)
        full = len(our_encode(ops, ns))
        drop = rng.choice([0, rng.randint(0, min(full, 400))]) if full else 0
        fn = lambda o: check_columns(perl, o, ns, random.Random(seed + 1), drop)  # noqa: E731
    elif cat in ("raw-ns", "raw-ns-falsy"):
        fn = lambda o: check_raw_ns(perl, o, True, random.Random(seed + 1))  # noqa: E731
    elif cat == "open-raw":
        if rng.random() < 0.5:
            ops = gen_raw_ops(rng, max_records * 2, False)
        fn = lambda o: check_open_raw(perl, o, True, random.Random(seed + 1))  # noqa: E731
    elif cat == "archive":
        ops = archive_ops(ops, rng)
        params = {"frame_size": rng.choice([1024, 4096, 1 << 20]), "large_payload": rng.choice([64, 256, 4096])}
        fn = lambda o: check_archive(perl, o, params, random.Random(seed + 1))  # noqa: E731
    else:
        raise ValueError(cat)
    try:
        detail = fn(ops)
    except Exception as e:  # a crash on either side is a finding too
        detail = f"exception: {type(e).__name__}: {e}"
    if detail is None:
        return len(ops), None
    small = ops
    if do_shrink:
        def fails(o: List[Op]) -> bool:
            try:
                return fn(o) is not None
            except Exception:
                return True
        small = shrink(ops, fails)
        try:
            detail = fn(small) or detail
        except Exception as e:
            detail = f"exception: {type(e).__name__}: {e}"
    extra = f"[:len(data) - {drop}]  # cut" if cat in ("cut", "columns") and drop else ""
    text = archive_repro(small, params) if cat == "archive" else repro(small, ns, cat, extra)
    return len(ops), Mismatch(cat, mode, seed, detail, text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=200, help="random streams per category and mode (default 200)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--max-records", type=int, default=60)
    ap.add_argument("--only", default=",".join(CATEGORIES), help="comma-separated categories: " + ", ".join(CATEGORIES))
    ap.add_argument("--meta-fuzz-in-streams", action="store_true",
                    help="also put odd id-0 payloads into the random streams (known meta_ok differences then show up everywhere)")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--self-test", action="store_true",
                    help="corrupt our side of every comparison: checks that each category can fail (expect mismatches)")
    ap.add_argument("--show", type=int, default=10, help="repros printed per category/mode")
    args = ap.parse_args(argv)

    global FUZZ_META_IN_STREAMS, SELF_TEST
    FUZZ_META_IN_STREAMS = args.meta_fuzz_in_streams
    SELF_TEST = args.self_test
    perl = Perl()
    ok, why = perl.available()
    if not ok:
        print(f"SKIPPED: {why}", file=sys.stderr)
        return 2
    print(f"reference: Data::FastPack via {TOOLS} (PERL5LIB={why})")

    cats = [c.strip() for c in args.only.split(",") if c.strip()]
    for c in cats:
        if c not in CATEGORIES:
            ap.error(f"unknown category {c!r}; choose from {', '.join(CATEGORIES)}")
    if "archive" in cats and archive_writer() is None:
        print("archive: SKIPPED (fastodin.archive has no Writer yet)")
        cats.remove("archive")
    stats = Stats()
    if "meta" in cats:
        cats.remove("meta")
        n, ms = run_meta_table(perl, args.seed)
        stats.cases["meta/plain"] = n
        stats.mismatches.extend(ms)
    jobs = []
    for cat in cats:
        ci = CATEGORIES.index(cat)
        modes = [True] if cat in ("raw-ns", "raw-ns-falsy", "archive", "open-raw") else [False, True]
        for ns in modes:
            for i in range(args.cases):
                seed = args.seed * 1_000_003 + ci * 100_000 + (50_000 if ns else 0) + i
                jobs.append((cat, ns, seed))

    t0 = _time.time()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = [(cat, ns, ex.submit(run_case, perl, seed, cat, ns, args.max_records, not args.no_shrink))
                for cat, ns, seed in jobs]
        for cat, ns, f in futs:
            n, mm = f.result()
            key = f"{cat}/{'ns' if ns else 'plain'}"
            stats.cases[key] = stats.cases.get(key, 0) + 1
            stats.records += n
            if mm:
                stats.mismatches.append(mm)
    dt = _time.time() - t0

    by: Dict[str, List[Mismatch]] = {}
    for m in stats.mismatches:
        by.setdefault(f"{m.category}/{m.mode}", []).append(m)
    for key, ms in by.items():
        print(f"\n=== {key}: {len(ms)} mismatching case(s) ===")
        seen = set()
        shown = 0
        for m in sorted(ms, key=lambda m: len(m.repro)):
            sig = m.detail.split(":")[0] + m.repro.count("\n").__str__()
            if sig in seen and shown >= 2:
                continue
            seen.add(sig)
            if shown >= args.show:
                break
            shown += 1
            print(f"--- seed {m.seed}: {m.detail}\n{m.repro}\n")

    print("\nsummary")
    print(f"  {'category/mode':<22}{'cases':>7}{'mismatches':>12}")
    for key in stats.cases:
        print(f"  {key:<22}{stats.cases[key]:>7}{len(by.get(key, [])):>12}")
    total = sum(stats.cases.values())
    meta_only = sum(1 for m in stats.mismatches if m.detail.startswith(("meta_ok only", "(cut at")) and "meta_ok only" in m.detail)
    print(f"  of the mismatches, {meta_only} differ only in meta_ok (metadata decodability), "
          f"{len(stats.mismatches) - meta_only} in records/bytes/leftover")
    print(f"  {'total':<22}{total:>7}{len(stats.mismatches):>12}   ({stats.records} ops, "
          f"{perl.calls} Perl runs, {dt:.1f} s)")
    return 1 if stats.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
