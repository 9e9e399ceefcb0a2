"""A simulated ODIN device: parameter sets at their rates, events, identifier packets re-sent at
an interval, optional loss / garbage / corruption.  Deterministic for a given seed.

The default device has three sets of mixed types (a padded custom struct, arrays, char, bool,
u64, f64) and two events; :func:`benchmark_device` is shaped like a real capture: two sets of 164
and 320 bytes of packed f32/u32/u16 structs at ~600 Hz and ~200 Hz.  Packets are built with
numpy (one structured array per set), so a million packets take a fraction of a second.

>>> sim = Simulator(seed=1)
>>> pk = sim.packets(duration=0.1)
>>> from fastodin.odin.decode import decode
>>> r = decode(pk)
>>> sorted("0x%04X" % k for k in r), len(r.events) > 0
(['0x98A8', '0x9D05', '0xB5A6'], True)
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UsageError
from .burst import burst_encode_many
from .crc import set_id as crc_set_id
from .packets import Event, TypeDef, TypeDescriptor, TypeField
from .schema import EntryDef, SetDef, struct_dtype_from_typedef
from .types import CUSTOM, ELEMENT_NAMES, element_code, entry_dtype

__all__ = ["SimEntry", "SimSet", "SimEvent", "Simulator", "default_device", "benchmark_device"]


@dataclass(frozen=True)
class SimEntry:
    """One parameter: global id, dotted name, element type name (or a custom type name), count.

    >>> SimEntry(0x01010000, "sensors.temperature", "f32").count
    1
    """
    global_id: int
    name: str
    type: str
    count: int = 1


@dataclass(frozen=True)
class SimSet:
    """A parameter set sent at ``rate`` Hz (definition identifier ``od``)."""
    entries: Tuple[SimEntry, ...]
    rate: float
    od: int = 0x0A0B


@dataclass(frozen=True)
class SimEvent:
    """An event id sent at ``rate`` Hz on average (Poisson), payload = ``text`` + a counter."""
    event_id: int
    rate: float
    text: bytes = b"event"


def default_device() -> Tuple[List[SimSet], List[SimEvent], List[TypeDef]]:
    """Three sets of mixed types (incl. a padded struct and arrays) and two events."""
    # struct sample { u8 flags; f32 x; f32 y; u16 code; }  -> C layout: offsets 0,4,8,12, size 16
    sample = TypeDef(0x42, 16, "sample", (TypeField(2, 1, 0, "flags"), TypeField(10, 4, 4, "x"),
                                           TypeField(10, 4, 8, "y"), TypeField(3, 2, 12, "code")))
    vec3 = TypeDef(0x43, 12, "vec3", (TypeField(10, 4, 0, "x"), TypeField(10, 4, 4, "y"), TypeField(10, 4, 8, "z")))
    sensors = SimSet((SimEntry(0x01010000, "sensors.temperature", "f32"),
                      SimEntry(0x01020000, "sensors.pressure", "f32"),
                      SimEntry(0x01030000, "sensors.counter", "u32"),
                      SimEntry(0x01040000, "sensors.offset", "i32"),
                      SimEntry(0x01050000, "sensors.ok", "bool"),
                      SimEntry(0x01060000, "sensors.status", "char", 8),
                      SimEntry(0x02030000, "system.axis", "i16", 2)), rate=100.0)
    imu = SimSet((SimEntry(0x03010000, "imu.accel", "vec3"),
                  SimEntry(0x03020000, "imu.gyro_raw", "f32", 3),
                  SimEntry(0x03030000, "imu.sample", "sample"),
                  SimEntry(0x03040000, "imu.time_us", "u64"),
                  SimEntry(0x03050000, "imu.heading", "f64")), rate=400.0)
    power = SimSet((SimEntry(0x04010000, "power.voltage_mv", "u16"),
                    SimEntry(0x04020000, "power.temp", "i8"),
                    SimEntry(0x04030000, "power.energy", "f64"),
                    SimEntry(0x04040000, "power.flags", "hex")), rate=10.0)
    events = [SimEvent(7, 2.0, b"door-open"), SimEvent(1, 5.0, b"button")]
    return [sensors, imu, power], events, [sample, vec3]


def benchmark_device() -> Tuple[List[SimSet], List[SimEvent], List[TypeDef]]:
    """Two sets: 164 bytes at 600 Hz and 320 bytes at 200 Hz, packed structs of f32/u32/u16.

    >>> sets, ev, ty = benchmark_device()
    >>> [sum(_entry_size(e, {t.name: t for t in ty}) for e in s.entries) for s in sets]
    [164, 320]
    """
    # imu32: 6 x f32, u32, u16, u16 = 32 bytes packed
    imu32 = TypeDef(0x50, 32, "imu32", tuple(
        [TypeField(10, 4, 4 * i, n) for i, n in enumerate(("ax", "ay", "az", "gx", "gy", "gz"))]
        + [TypeField(4, 4, 24, "t_us"), TypeField(3, 2, 28, "status"), TypeField(3, 2, 30, "flags")]))
    # motor: 4 x f32, u32, u16, u16, f32 = 28... make it 32: 5 x f32, u32, u16, u16
    motor = TypeDef(0x51, 32, "motor", tuple(
        [TypeField(10, 4, 4 * i, n) for i, n in enumerate(("pos", "vel", "cur", "temp", "torque"))]
        + [TypeField(4, 4, 20, "err"), TypeField(3, 2, 24, "mode"), TypeField(3, 2, 26, "state"),
           TypeField(10, 4, 28, "volt")]))
    a_entries = [SimEntry(0x10000000 + (i << 16), "fast.imu%d" % i, "imu32") for i in range(4)]
    a_entries += [SimEntry(0x10100000 + (i << 16), "fast.f%d" % i, "f32") for i in range(6)]
    a_entries += [SimEntry(0x10200000, "fast.counter", "u32")]
    a_entries += [SimEntry(0x10300000 + (i << 16), "fast.u%d" % i, "u16") for i in range(4)]
    b_entries = [SimEntry(0x20000000 + (i << 16), "slow.motor%d" % i, "motor") for i in range(10)]
    return ([SimSet(tuple(a_entries), 600.0), SimSet(tuple(b_entries), 200.0)], [], [imu32, motor])


def _entry_size(e: SimEntry, types: Dict[str, TypeDef]) -> int:
    if e.type in types:
        return types[e.type].size * e.count
    c = element_code(e.type)
    if c is None:
        raise UsageError("simulator: unknown type %r" % e.type)
    from .types import ELEMENT_SIZES
    return ELEMENT_SIZES[c] * e.count


class Simulator:
    """Generates the packets of a simulated ODIN device.

    ``sets``/``events``/``types`` default to :func:`default_device`.  ``identifier_interval``:
    seconds between re-sent identifier packets (0x01 plus 0x03/0x04 when ``self_describing``).
    ``loss``: fraction of DATA packets dropped (sequence gaps).  ``start_ticks``: first timestamp
    (set near 2**32 to exercise the wrap).  ``counts_per_second``: tick rate.

    >>> len(Simulator(seed=0).packets(n=50))
    50
    """

    def __init__(self, sets: Optional[Sequence[SimSet]] = None, events: Optional[Sequence[SimEvent]] = None,
                 types: Optional[Sequence[TypeDef]] = None, *, seed: int = 0, counts_per_second: float = 1_000_000.0,
                 identifier_interval: float = 1.0, self_describing: bool = True, loss: float = 0.0,
                 start_ticks: int = 0, jitter: float = 0.0) -> None:
        if sets is None:
            dsets, devents, dtypes = default_device()
            sets = dsets
            events = devents if events is None else events
            types = dtypes if types is None else types
        if not 0.0 <= loss < 1.0:
            raise UsageError("simulator loss must be in [0, 1), got %r" % (loss,))
        if counts_per_second <= 0:
            raise UsageError("counts_per_second must be > 0, got %r" % (counts_per_second,))
        if any(s.rate <= 0 for s in sets) or any(e.rate < 0 for e in (events or [])):
            raise UsageError("set rates must be > 0 and event rates >= 0")
        self.sets = list(sets)
        self.events = list(events or [])
        self.types = {t.name: t for t in (types or [])}
        self.seed = seed
        self.cps = float(counts_per_second)
        self.identifier_interval = identifier_interval
        self.self_describing = self_describing
        self.loss = loss
        self.start_ticks = start_ticks
        self.jitter = jitter
        self.defs: List[SetDef] = [self._setdef(s) for s in self.sets]

    # -- definitions -----------------------------------------------------------------------
    def _setdef(self, s: SimSet) -> SetDef:
        ents = []
        for e in s.entries:
            size = _entry_size(e, self.types)
            if e.type in self.types:
                td = self.types[e.type]
                dt, _ = struct_dtype_from_typedef(td)
                ents.append(EntryDef(e.global_id, size, e.name, CUSTOM, td.type_id, td.name, entry_dtype(CUSTOM, size, dt)))
            else:
                ents.append(EntryDef(e.global_id, size, e.name, element_code(e.type), 0, e.type))
        ids = [e.global_id for e in ents]
        return SetDef(crc_set_id(ids), s.od, tuple(ents), "simulator")

    def odin_db(self) -> Dict[str, Any]:
        """The device's OdinDB as an ``.odin`` export (dict): groups, parameters, arrays, types."""
        groups: Dict[str, List[Dict[str, Any]]] = {}
        for s in self.sets:
            for e in s.entries:
                grp, _, leaf = e.name.rpartition(".")
                node: Dict[str, Any] = {"name": leaf, "description": "", "global_id": e.global_id,
                                        "global_name": e.name, "default_value": None}
                esize = self.types[e.type].size if e.type in self.types else _entry_size(SimEntry(0, "", e.type), self.types)
                if e.type == "char":
                    node.update(type="array", element_type="char", element_size=1, element_count=e.count)
                elif e.count > 1:
                    node.update(type="array", element_type=e.type, element_size=esize, element_count=e.count)
                else:
                    node.update(type="parameter", element_type=e.type, element_size=esize)
                groups.setdefault(grp, []).append(node)
        types = {}
        for t in self.types.values():
            types[t.name] = {"type": "type_definition", "size": t.size, "count": None,
                             "structure": {f.name: {"type": ELEMENT_NAMES[f.element_type], "offset": f.offset}
                                           for f in t.fields}}
        root = {"name": "root", "description": "", "global_id": 0, "global_name": "root", "type": "parameter_group",
                "parameters": [{"name": g, "description": "", "global_id": 0, "global_name": g,
                                "type": "parameter_group", "parameters": ps} for g, ps in groups.items()]}
        return {"name": "simulator", "description": "", "creation_timestamp": 0.0, "configuration_hash": 0,
                "types": types, "root": root}

    def definition_packets(self, d: SetDef) -> List[bytes]:
        """Identifier packets of one set: 0x01, then (self-describing) 0x03 chunks."""
        out = [d.identifier_packet().to_bytes()]
        if self.self_describing:
            out += [p.to_bytes() for p in d.identifier_ext_packets(128)]
        return out

    def type_packets(self) -> List[bytes]:
        """0x04 TYPE_DESCRIPTOR packets for the custom types (one type per packet)."""
        ts = list(self.types.values())
        return [TypeDescriptor(0x0A0B, len(ts), i, (t,)).to_bytes() for i, t in enumerate(ts)]

    # -- data ------------------------------------------------------------------------------
    def _fill(self, rec: np.ndarray, k: np.ndarray, si: int) -> None:
        len(rec)
        kf = k.astype(np.float64)
        for j, name in enumerate(rec.dtype.names[5:]):
            col = rec[name]
            _fill_col(col, kf, k, si * 31 + j)

    def packets(self, n: Optional[int] = None, duration: Optional[float] = None) -> List[bytes]:
        """Packets in send order: either the first ``n`` packets or ``duration`` seconds."""
        if n is None and duration is None:
            raise UsageError("Simulator.packets needs n or duration")
        total_rate = sum(s.rate for s in self.sets) + sum(e.rate for e in self.events)
        if duration is None:
            duration = (n + 16) / max(total_rate * (1.0 - self.loss), 1e-9) * 1.02 + 1.0 / max(total_rate, 1)
        rng = np.random.default_rng(self.seed)
        pyrng = random.Random(self.seed)
        streams: List[Tuple[np.ndarray, List[bytes]]] = []  # (times, packets)
        for si, (s, d) in enumerate(zip(self.sets, self.defs)):
            cnt = int(np.floor(duration * s.rate)) + 1
            k = np.arange(cnt, dtype=np.int64)
            t = k / s.rate + si * 1e-6
            if self.jitter:
                t = t + rng.uniform(0, self.jitter / s.rate, cnt)
            keep = np.ones(cnt, bool)
            if self.loss > 0:
                keep = rng.random(cnt) >= self.loss
            rec = np.zeros(cnt, d.packet_dtype())
            rec["type"] = 2
            rec["set_id"] = d.set_id
            ticks = (self.start_ticks + np.round(t * self.cps).astype(np.int64)) & 0xFFFFFFFF
            rec["timestamp"] = ticks.astype(np.uint32)
            rec["sequence"] = (k & 0xFFFF).astype(np.uint16)
            self._fill(rec, k, si)
            L = d.packet_size
            # select rows on the raw bytes: a structured copy would leave struct padding uninitialised
            raw = rec.view(np.uint8).reshape(cnt, L)
            if not keep.all():
                raw = raw[keep]
            t = t[keep]
            buf = raw.tobytes()
            streams.append((t, [buf[i:i + L] for i in range(0, len(buf), L)]))
        for ev in self.events:
            cnt = int(rng.poisson(ev.rate * duration)) if ev.rate > 0 else 0
            t = np.sort(rng.uniform(0, duration, cnt))
            pk = []
            for i, tt in enumerate(t.tolist()):
                tick = (self.start_ticks + int(round(tt * self.cps))) & 0xFFFFFFFF
                pk.append(Event(ev.event_id, tick, ev.text + (b" #%d" % i)).to_bytes())
            streams.append((t, pk))
        # definitions at t=0 (before anything) and every identifier_interval seconds
        defs_t: List[float] = [-1.0]
        if self.identifier_interval and self.identifier_interval > 0:
            defs_t += np.arange(self.identifier_interval, duration, self.identifier_interval).tolist()
        dpk: List[bytes] = []
        dts: List[float] = []
        for tt in defs_t:
            group = self.type_packets() if self.self_describing else []
            for d in self.defs:
                group += self.definition_packets(d)
            dpk += group
            dts += [tt - 1e-7] * len(group)
        streams.append((np.asarray(dts, dtype=np.float64), dpk))
        times = np.concatenate([s[0] for s in streams]) if streams else np.empty(0)
        src = np.concatenate([np.full(len(s[0]), i, np.int64) for i, s in enumerate(streams)])
        idx = np.concatenate([np.arange(len(s[0]), dtype=np.int64) for s in streams])
        order = np.argsort(times, kind="stable")
        lists = [s[1] for s in streams]
        out = [lists[a][b] for a, b in zip(src[order].tolist(), idx[order].tolist())]
        del pyrng
        if n is not None:
            out = out[:n]
        return out

    def burst(self, n: Optional[int] = None, duration: Optional[float] = None, *, garbage: float = 0.0,
              corrupt: float = 0.0) -> bytes:
        """The same packets BURST-framed; ``garbage``: fraction of frames followed by random junk
        (ending in 0x00), ``corrupt``: fraction of frames with one flipped byte (CRC errors)."""
        pk = self.packets(n=n, duration=duration)
        if not garbage and not corrupt:
            return burst_encode_many(pk)
        rng = random.Random(self.seed + 1)
        from .burst import burst_encode
        parts = []
        for p in pk:
            f = bytearray(burst_encode(p))
            if corrupt and rng.random() < corrupt and len(f) > 2:
                i = rng.randrange(len(f) - 1)
                f[i] = (f[i] ^ (1 << rng.randrange(8))) or 0x55
            parts.append(bytes(f))
            if garbage and rng.random() < garbage:
                parts.append(bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 40))) + b"\0")
        return b"".join(parts)


def _fill_col(col: np.ndarray, kf: np.ndarray, k: np.ndarray, salt: int) -> None:
    dt = col.dtype
    if dt.names is not None:
        for j, nm in enumerate(dt.names):
            _fill_col(col[nm], kf, k, salt * 7 + j + 1)
        return
    if col.ndim > 1:
        flat = col.reshape(len(col), -1)
        for j in range(flat.shape[1]):
            sub = flat[:, j]
            _fill_col(sub, kf, k, salt * 5 + j + 1)
            flat[:, j] = sub
        return
    kind = dt.kind
    if kind == "f":
        col[...] = (np.sin(kf * (0.01 + 0.001 * (salt % 17))) * (10 + salt % 50)).astype(dt)
    elif kind == "b":
        col[...] = ((k + salt) % 3 == 0)
    elif kind in "iu":
        bits = dt.itemsize * 8
        v = (k * (1 + salt % 5) + salt * 1000)
        if kind == "u":
            col[...] = (v % (1 << min(bits, 62))).astype(dt)
        else:
            lim = 1 << (min(bits, 62) - 1)
            col[...] = ((v % (2 * lim)) - lim).astype(dt)
    elif kind == "S":
        n = dt.itemsize
        col[...] = np.array([(b"ok%d" % (i % 100))[:n] for i in range(len(col))], dtype=dt) if len(col) < 4096 else \
            np.full(len(col), b"ok"[:n], dtype=dt)
    else:
        pass
