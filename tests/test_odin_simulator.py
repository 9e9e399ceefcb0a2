"""The simulated device: deterministic, valid packets, loss shows as gaps, benchmark shape."""
from __future__ import annotations

import numpy as np

from fastodin.odin import OdinDB, Simulator, benchmark_device, decode, parse_packet
from fastodin.odin.burst import burst_decode


def test_deterministic_and_parseable():
    a = Simulator(seed=7).packets(duration=0.5)
    b = Simulator(seed=7).packets(duration=0.5)
    assert a == b
    for p in a:
        assert parse_packet(p).to_bytes() == p
    assert Simulator(seed=8).packets(duration=0.5) != a


def test_rates_and_ticks():
    sim = Simulator(seed=1, identifier_interval=0.5)
    r = decode(sim.packets(duration=2.0))
    counts = sorted(len(t) for t in r.values())
    assert counts == [21, 201, 801]  # 10 Hz, 100 Hz, 400 Hz over 2 s (both ends)
    for t in r.values():
        assert np.allclose(np.diff(t["time"]), np.diff(t["time"])[0], atol=2e-6)


def test_loss_shows_as_sequence_gaps():
    r = decode(Simulator(seed=3, loss=0.1).packets(duration=1.0))
    lost = sum(t.sequence_stats.lost for t in r.values())
    assert lost > 0


def test_timestamp_wrap_in_simulation():
    r = decode(Simulator(seed=1, start_ticks=2**32 - 100_000).packets(duration=0.5))
    for t in r.values():
        assert np.all(np.diff(t.ticks) > 0)
        assert t.ticks[-1] > 2**32


def test_odin_db_export_types_0x01_only_stream():
    sim = Simulator(seed=1, self_describing=False)
    pk = sim.packets(duration=0.2)
    assert all(p[0] in (1, 2, 11) for p in pk)
    db = OdinDB.from_dict(sim.odin_db())
    r = decode(pk, odin_db=db)
    full = decode(Simulator(seed=1).packets(duration=0.2))
    for k in r:
        assert r[k].records.dtype == full[k].records.dtype
        assert r[k].records.tobytes() == full[k].records.tobytes()


def test_benchmark_device_shape():
    sets, ev, ty = benchmark_device()
    sim = Simulator(sets, ev, ty, seed=1)
    assert [d.data_size for d in sim.defs] == [164, 320]
    pk = sim.packets(n=4000)
    r = decode(pk)
    sizes = sorted((t.definition.data_size, len(t)) for t in r.values())
    assert [s for s, _ in sizes] == [164, 320]
    n164 = dict(sizes)[164]
    n320 = dict(sizes)[320]
    assert 2.8 < n164 / n320 < 3.2   # ~600 Hz vs ~200 Hz


def test_burst_with_garbage_and_corruption():
    sim = Simulator(seed=2)
    clean = sim.packets(duration=0.3)
    dirty = burst_decode(sim.burst(duration=0.3, garbage=0.1, corrupt=0.05))
    assert 0 < len(dirty) < len(clean)
    assert set(dirty) <= set(clean)


def test_bad_simulator_arguments():
    import pytest
    from fastodin.errors import UsageError
    with pytest.raises(UsageError):
        Simulator(loss=1.0)
    with pytest.raises(UsageError):
        Simulator(counts_per_second=0)
    with pytest.raises(UsageError):
        Simulator().packets()
