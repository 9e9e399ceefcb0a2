"""Recordings the dataset tests read: plain archives with typed, plain and raw channels, ODIN captures,
and ODIN captures whose set has another definition.  Deterministic; times of file k start at k*1000 s."""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np

import fastodin
from fastodin.odin import OdinToFastPack, Simulator, WriterSink
from fastodin.odin.simulator import SimEntry, SimSet

IMU = np.dtype([("x", "<f8"), ("acc", "<f4", (3,)), ("n", "<u2")])
N_IMU = 120_000          # ~4.8 MB of frames per file: 5 frames
N_TEMP = 3_000
N_CAM = 30


def write_runs(d: os.PathLike, n_files: int = 4, n_imu: int = N_IMU, overwrite: bool = False) -> List[str]:
    """``run{k}.fastpack.zst``: imu (layout, 1 kHz), temp (plain float64, 10 Hz), cam (6,000-byte
    raw payloads: frames of their own), a note channel of varying sizes; tag site lab/field, k."""
    paths = []
    for k in range(n_files):
        rng = np.random.default_rng(k)
        p = os.path.join(d, f"run{k}.fastpack.zst")
        with fastodin.Writer(p, overwrite=overwrite) as w:
            w.set_tag("site", "lab" if k % 2 else "field")
            w.set_tag("k", k)
            a = np.zeros(n_imu, IMU)
            a["x"] = rng.normal(k, 1.0, n_imu)
            a["acc"] = rng.random((n_imu, 3), dtype=np.float32)
            a["n"] = np.arange(n_imu) % 1000
            w.write_many(k * 1000 + np.arange(n_imu) * 1e-3, "imu", a)
            w.write_many(k * 1000 + np.arange(N_TEMP) * 0.1, "temp", rng.normal(20, 1, N_TEMP))
            cam = np.zeros((N_CAM, 6000), np.uint8)
            cam[:, 0] = np.arange(N_CAM)
            cam[:, 1] = k
            w.write_many(k * 1000 + np.arange(N_CAM) * 1.0, "cam", cam)
            for i in range(5):
                w.write(k * 1000 + i * 0.5, "note", b"n" * (i + 1))
        paths.append(p)
    return paths


def _capture(path: str, sims: List[Simulator], duration: float = 2.0, tags: Optional[dict] = None) -> str:
    with fastodin.Writer(path) as w:
        for k, v in (tags or {}).items():
            w.set_tag(k, v)
        conv = OdinToFastPack(WriterSink(w))
        for sim in sims:
            conv.add_many(sim.packets(duration=duration))
        conv.close()
    return path


def write_odin(d: os.PathLike, n_files: int = 3, tags: Optional[dict] = None) -> List[str]:
    """``odin{k}.fastpack.zst``: the default simulated device, file k starting at k*1000 s."""
    return [_capture(os.path.join(d, f"odin{k}.fastpack.zst"),
                     [Simulator(seed=k, start_ticks=k * 1_000_000_000, identifier_interval=0.5)], tags=tags)
            for k in range(n_files)]


def custom_set(value_type: str) -> SimSet:
    """One set whose first entry's type changes with ``value_type`` (same global ids: same set id)."""
    return SimSet((SimEntry(0x0A010000, "probe.value", value_type), SimEntry(0x0A020000, "probe.count", "u16")),
                  rate=50.0)


def write_custom(path: str, value_type: str, start_ticks: int = 0) -> str:
    return _capture(path, [Simulator(sets=[custom_set(value_type)], events=[], types=[], seed=1,
                                     start_ticks=start_ticks)])


def write_changing(path: str) -> str:
    """One capture whose set changes its definition halfway (f32 -> f64 value)."""
    return _capture(path, [Simulator(sets=[custom_set("f32")], events=[], types=[], seed=1),
                           Simulator(sets=[custom_set("f64")], events=[], types=[], seed=2,
                                     start_ticks=5_000_000)])


def custom_channel(value_type: str = "f32") -> str:
    from fastodin.odin import set_channel
    from fastodin.odin.crc import set_id

    return set_channel(set_id([0x0A010000, 0x0A020000]))
