"""``fastodin view`` as a user runs it: a real process on loopback that prints its URL first,
binds 127.0.0.1 unless told otherwise, opens the browser ($BROWSER) unless --no-browser, and stops
cleanly (exit 0) on Ctrl-C or SIGTERM.  Bounded: every wait has a timeout."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

import fastodin

URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/$")


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli") / "rec.fastpack.zst")
    with fastodin.Writer(path) as w:
        w.write_many(np.arange(1000) * 0.01, "p", np.sin(np.arange(1000) * 0.1))
    return path


def _start(*args, env=None):
    e = dict(os.environ, **(env or {}))
    e.setdefault("XDG_CACHE_HOME", e.get("TMPDIR", "/tmp"))
    p = subprocess.Popen([sys.executable, "-m", "fastodin", "view", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=e)
    return p


def _first_line(p, timeout=60):
    got = []

    def read():
        got.append(p.stdout.readline())

    import threading

    th = threading.Thread(target=read, daemon=True)
    th.start()
    th.join(timeout)
    assert got, "no URL printed"
    return got[0].rstrip("\n")


def _get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _stop(p, sig=signal.SIGINT, timeout=30):
    p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("fastodin view did not stop") from None
    return p.returncode, out, err


@pytest.mark.parametrize("sig,name", [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")])
def test_url_first_loopback_and_clean_stop(rec, tmp_path, sig, name):
    p = _start(rec, "--no-browser", "--port", "0", "--cache-dir", str(tmp_path))
    try:
        line = _first_line(p)
        m = URL.match(line)
        assert m, line
        port = int(m.group(1))
        j = _get(line + "api/series?channel=p&field=value&points=10")
        assert sum(j["n"]) == 1000
        # bound to 127.0.0.1 only: another loopback address is refused
        s = socket.socket()
        s.settimeout(5)
        with pytest.raises(OSError):
            s.connect(("127.0.0.2", port))
        s.close()
    finally:
        code, out, err = _stop(p, sig)
    assert code == 0, err
    assert out == ""                            # nothing after the URL on stdout
    assert f"stopped ({name})" in err and "Traceback" not in err
    assert any(n.endswith(".summary") for n in os.listdir(tmp_path))      # the summary was cached


def test_host_option_and_cache_off(rec, tmp_path):
    p = _start(rec, "--no-browser", "--port", "0", "--host", "127.0.0.2", "--no-cache",
               env={"XDG_CACHE_HOME": str(tmp_path)})
    try:
        line = _first_line(p)
        assert re.match(r"^http://127\.0\.0\.2:\d+/$", line), line
        assert _get(line + "api/channels")["channels"][0]["name"] == "p"
    finally:
        code, _out, err = _stop(p)
    assert code == 0, err
    assert not os.path.exists(os.path.join(str(tmp_path), "fastodin"))


def test_opens_the_browser(rec, tmp_path):
    seen = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f"#!/bin/sh\necho \"$1\" > {seen}\n")
    script.chmod(0o755)
    p = _start(rec, "--port", "0", "--no-cache", env={"BROWSER": str(script)})
    try:
        line = _first_line(p)
        end = time.monotonic() + 30
        while not (seen.exists() and seen.read_text().strip()) and time.monotonic() < end:
            time.sleep(0.05)
        assert seen.read_text().strip() == line
    finally:
        code, _o, err = _stop(p)
    assert code == 0, err


def test_several_files_and_log(rec, tmp_path):
    other = str(tmp_path / "two.fastpack.zst")
    with fastodin.Writer(other) as w:
        w.write_many(np.arange(5) * 1.0, "p", np.arange(5.0))
    p = _start(rec, other, "--no-browser", "--port", "0", "--no-cache", "--log")
    try:
        line = _first_line(p)
        names = [c["name"] for c in _get(line + "api/channels")["channels"]]
        assert names == ["rec:p", "two:p"]
    finally:
        code, _o, err = _stop(p)
    assert code == 0 and "GET /api/channels" in err


def test_missing_file_is_exit_3(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fastodin", "view", str(tmp_path / "nope.fastpack.zst"), "--no-browser"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "nope.fastpack.zst" in r.stderr


def test_port_in_use(rec):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = subprocess.run([sys.executable, "-m", "fastodin", "view", rec, "--no-browser", "--port", str(port),
                            "--no-cache"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 3 and r.stdout == ""
        assert "already in use" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    finally:
        s.close()


def test_default_port_taken_falls_back(rec):
    from fastodin.view.server import DEFAULT_PORT

    s = socket.socket()
    try:
        s.bind(("127.0.0.1", DEFAULT_PORT))
        s.listen(1)
    except OSError:
        pass            # someone else has it: the fallback happens all the same
    p = _start(rec, "--no-browser", "--no-cache")
    try:
        line = _first_line(p)
        assert URL.match(line) and not line.endswith(f":{DEFAULT_PORT}/")
    finally:
        code, _o, err = _stop(p)
        s.close()
    assert code == 0 and f"port {DEFAULT_PORT} is taken" in err


def test_bad_arguments_are_usage_errors(rec):
    for args in (["--port", "70000"], ["--port", "x"], []):
        r = subprocess.run([sys.executable, "-m", "fastodin", "view", *([rec] if args else []), *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (args, r.stderr)
    r = subprocess.run([sys.executable, "-m", "fastodin", "view", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--no-browser" in r.stdout and "example:" in r.stdout
