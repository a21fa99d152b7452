"""The installed ``ipallow`` executable, driven in a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

IPALLOW = shutil.which("ipallow")
pytestmark = pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")


def run(*args, stdin=None):
    return subprocess.run([IPALLOW, *args], capture_output=True, text=True, input=stdin, timeout=60)


def test_check_bundled_sample_all_allowed():
    result = run("check", "--sample", "203.0.113.9", "2001:db8::1", "::ffff:198.51.100.7")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[:3] == ["203.0.113.9", "allowed", "203.0.113.0/24"]
    assert lines[1].split()[:3] == ["2001:db8::1", "allowed", "2001:db8::/32"]
    assert lines[2].split()[:3] == ["::ffff:198.51.100.7", "allowed", "198.51.100.0/24"]


def test_check_denied_exit_code_one():
    result = run("check", "--sample", "203.0.113.9", "8.8.8.8")
    assert result.returncode == 1
    assert result.stdout.splitlines()[1].split() == ["8.8.8.8", "denied"]


def test_check_bad_address_exit_two_and_message_on_stderr():
    result = run("check", "--sample", "1.2.3.256")
    assert result.returncode == 2
    assert "invalid IP address '1.2.3.256': octet greater than 255 at column 7" in result.stderr


def test_check_json_and_own_list(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("cidr,id,owner\n192.0.2.0/25,PTA-1042,Acme Soft\n")
    result = run("check", "--list", str(path), "--json", "192.0.2.7", "192.0.2.200")
    assert result.returncode == 1
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    # A CSV with an id column is a registry: the match is its Registration record.
    data = first.pop("data")
    assert first == {"address": "192.0.2.7", "verdict": "allowed", "network": "192.0.2.0/25",
                     "registration": 0, "id": "PTA-1042"}
    assert (data["id"], data["owner"], data["status"], data["networks"]) == (
        "PTA-1042", "Acme Soft", "active", ["192.0.2.0/25"])
    assert second == {"address": "192.0.2.200", "verdict": "denied"}
    # Without an id column it is a plain list, whose other columns are the data.
    plain = tmp_path / "plain.csv"
    plain.write_text("cidr,owner\n192.0.2.0/25,Acme Soft\n")
    result = run("check", "--list", str(plain), "--json", "192.0.2.7")
    assert json.loads(result.stdout)["data"] == {"owner": "Acme Soft"}


def test_check_and_explain_agree_on_a_registry(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text("id,cidr,status\nPTA-1,192.0.2.0/24,suspended\nPTA-2,192.0.2.0/25,active\n")
    verdicts = run("check", "--list", str(path), "192.0.2.7", "192.0.2.200")
    assert verdicts.returncode == 1
    assert [line.split()[:2] for line in verdicts.stdout.splitlines()] == [
        ["192.0.2.7", "allowed"], ["192.0.2.200", "denied"]]
    explained = run("check", "--explain", "--list", str(path), "192.0.2.200")
    assert "does not count: suspended" in explained.stdout


def test_check_bad_list_reports_path_line_column(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("10.0.0.0/8\n10.0.0.0/40\n")
    result = run("check", "--list", str(path), "10.1.1.1")
    assert result.returncode == 2
    assert f"{path}:2:10: invalid network '10.0.0.0/40': prefix length out of range" in result.stderr
    assert result.stdout == ""


def test_check_missing_list_is_an_io_error(tmp_path):
    result = run("check", "--list", str(tmp_path / "absent.txt"), "10.1.1.1")
    assert result.returncode == 2
    assert "absent.txt" in result.stderr


def test_usage_errors_exit_two():
    assert run().returncode == 2
    assert run("check").returncode == 2
    help_text = run("check", "--help")
    assert help_text.returncode == 0 and "examples:" in help_text.stdout


def test_module_entry_point_matches():
    result = subprocess.run([sys.executable, "-m", "ipallow.cli", "check", "--sample", "8.8.8.8"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "denied" in result.stdout


def test_the_executable_runs_numpy_with_one_blas_thread_unless_told_otherwise(monkeypatch, capsys):
    """``console_main`` (the ``ipallow`` executable) asks OpenBLAS for one thread: no command
    does linear algebra, and a thread per core spinning at numpy's import costs CPU.  A
    setting of the user's own is kept."""
    import os

    import ipallow
    from ipallow import cli
    monkeypatch.setattr(sys, "argv", ["ipallow", "--version"])
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with pytest.raises(SystemExit) as done:
        cli.console_main()
    assert done.value.code == 0 and os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    with pytest.raises(SystemExit):
        cli.console_main()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
    assert ipallow.__version__ in capsys.readouterr().out
