"""Sequence tracking across the u16 wrap and tick unwrapping across the u32 wrap."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from fastodin.odin.sequence import SequenceTracker, TickUnwrapper, sequence_stats, unwrap_ticks


def test_classification_across_wrap():
    t = SequenceTracker()
    got = [t.update(s) for s in (65533, 65534, 65535, 0, 1, 1, 4, 3, 2, 5)]
    assert got == ["first", "ok", "ok", "ok", "ok", "duplicate", "gap", "late", "late", "ok"]
    assert (t.gaps, t.lost, t.duplicates, t.late, t.received) == (1, 0, 1, 2, 10)


def test_gap_across_wrap_counts_lost():
    t = SequenceTracker()
    for s in (65530, 3):
        t.update(s)
    assert (t.gaps, t.lost) == (1, 8)


@settings(max_examples=200)
@given(st.integers(0, 65535), st.lists(st.integers(1, 300), max_size=50))
def test_vectorised_stats_equal_scalar(start, steps):
    seq = [start]
    for d in steps:
        seq.append((seq[-1] + d) & 0xFFFF)
    a = SequenceTracker()
    for s in seq:
        a.update(s)
    b = sequence_stats(np.array(seq, dtype=np.uint16))
    assert a.as_dict() == b.as_dict()


@settings(max_examples=200)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(-1000, 2**31 - 1), max_size=50))
def test_unwrap_matches_true_ticks(start, steps):
    true = [start]
    for d in steps:
        true.append(true[-1] + d)
    raw = np.array([x & 0xFFFFFFFF for x in true], dtype=np.uint32)
    assert unwrap_ticks(raw).tolist() == true
    u = TickUnwrapper()
    assert [u.update(int(x)) for x in raw] == true


def test_unwrap_continues_from_state():
    u = TickUnwrapper()
    u.update(0xFFFFFFFE)
    out = unwrap_ticks(np.array([1, 2], dtype=np.uint32), u)
    assert out.tolist() == [0x100000001, 0x100000002] and u.ticks == 0x100000002


@settings(max_examples=200)
@given(st.lists(st.integers(0, 65535), max_size=6), st.lists(st.lists(st.integers(0, 65535), min_size=1, max_size=5), max_size=6))
def test_vectorised_stats_in_chunks_equal_scalar(prefix, chunks):
    a = SequenceTracker()
    b = SequenceTracker()
    for v in prefix:
        a.update(v)
        b.update(v)
    for c in chunks:
        for v in c:
            a.update(v)
        sequence_stats(np.array(c, dtype=np.uint16), b)
    assert a.as_dict() == b.as_dict() and a.last == b.last
