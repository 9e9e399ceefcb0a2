"""The command line, run for real: ``sys.executable -m fastodin ...`` in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastodin.cli import main
from fastodin.cli._util import CliError, parse_hostport, table

REPO = Path(__file__).resolve().parents[1]


def fo(*args: str, cwd=None, input: bytes = None, timeout: float = 120, env=None):
    """Run ``python -m fastodin ARGS``; return CompletedProcess (text stdout/stderr)."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("FASTODIN_DEBUG", None)
    if env:
        e.update(env)
    p = subprocess.run([sys.executable, "-m", "fastodin", *args], cwd=cwd, input=input,
                       capture_output=True, timeout=timeout, env=e)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


def one_line_error(p, code=None):
    """The process failed with exactly one line on stderr and no traceback."""
    assert p.returncode != 0, p.out
    if code is not None:
        assert p.returncode == code, (p.returncode, p.err)
    lines = [l for l in p.err.splitlines() if l.strip()]
    assert len(lines) == 1, p.err
    assert "Traceback" not in p.err
    return lines[0]


# -- demo ------------------------------------------------------------------------------------------

def test_demo_no_arguments_any_cwd(tmp_path):
    p = fo("demo", cwd=tmp_path)
    assert p.returncode == 0, p.err
    assert "verified" in p.out
    out = tmp_path / "demo.fastpack.zst"
    assert out.stat().st_size > 0
    # what info prints, then decoded rows of every set
    assert "odin/set/0x" in p.out and "sequence gaps" in p.out and "decoded rows" in p.out
    from fastodin.archive.reader import open_archive

    with open_archive(out) as ar:
        info = ar.info()
    assert info["format"] == "archive" and info["complete"]
    assert any(n.startswith("odin/set/") for n in info["channels"])
    assert info["time"][1] - info["time"][0] > 4.5  # a few seconds of recorded time


def test_demo_unwritable_output_is_io_error(tmp_path):
    p = fo("demo", "-o", str(tmp_path / "no" / "such" / "dir" / "x.fastpack.zst"))
    line = one_line_error(p, 3)
    assert "no/such/dir" in line


def test_demo_bad_seconds_usage(tmp_path):
    one_line_error(fo("demo", "--seconds", "abc"), 2)
    one_line_error(fo("demo", "--seconds", "-1"), 2)


# -- top level -------------------------------------------------------------------------------------

def test_help_lists_exit_codes_and_commands():
    p = fo("--help")
    assert p.returncode == 0
    assert "exit codes" in p.out and "demo" in p.out


def test_every_subcommand_help_has_example():
    from fastodin.cli import commands

    for mod in commands.MODULES:
        p = fo(mod.NAME, "--help")
        assert p.returncode == 0, (mod.NAME, p.err)
        assert "example:" in p.out and f"fastodin {mod.NAME}" in p.out, mod.NAME


def test_no_command_is_usage_error():
    p = fo()
    assert p.returncode == 2


def test_unknown_command_one_line():
    one_line_error(fo("frobnicate"), 2)


def test_main_in_process_returns_code(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "a.fastpack.zst"), "--seconds", "0.2"]) == 0
    assert "verified" in capsys.readouterr().out


def test_debug_shows_traceback(tmp_path):
    p = fo("demo", "--debug", "-o", str(tmp_path / "no" / "x.fastpack.zst"))
    assert p.returncode == 3
    assert "Traceback" in p.err


# -- helpers ---------------------------------------------------------------------------------------

def test_parse_hostport():
    assert parse_hostport("localhost:80") == ("localhost", 80)
    assert parse_hostport("9") == ("127.0.0.1", 9)
    for bad in ("host:x", "host:70000", "[::1]5"):
        with pytest.raises(CliError) as ei:
            parse_hostport(bad)
        assert ei.value.code == 2


def test_table_alignment():
    t = table([["a", 10], ["bbb", 2]], ["k", "v"], right=[1]).splitlines()
    assert t == ["k     v", "a    10", "bbb   2"]
