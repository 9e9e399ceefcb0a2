"""The hostile-test harness measures what it claims (a test that could not fail would hide regressions)."""
MiB = 1 << 20


def test_peak_rss_sees_a_large_allocation(bounded):
    small = bounded.python("pass")
    big = bounded.python("b = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])")
    assert small.returncode == 0 and big.returncode == 0
    assert small.peak_rss < 100 * MiB
    assert big.peak_rss > 290 * MiB


def test_time_limit_kills_a_hang(bounded):
    r = bounded.python("import time; time.sleep(30)", timeout=1.0)
    assert r.timed_out and r.returncode != 0


def test_cli_runs(bounded):
    r = bounded.cli("--help")
    assert r.returncode == 0 and b"usage" in r.stdout.lower()


def test_peak_rss_is_the_childs_not_pytests(bounded):
    """A forked child starts with its parent's RSS and Linux keeps that figure in its ru_maxrss
    across exec: forked from a big pytest, `python -c pass` measured as big as pytest.  The
    launcher forks the case from a small process instead."""
    hold = bytearray(300 * 1024 * 1024)
    hold[::4096] = b"x" * len(hold[::4096])
    r = bounded.python("pass")
    assert r.returncode == 0 and r.peak_rss < 100 * MiB, r.peak_rss
    del hold
