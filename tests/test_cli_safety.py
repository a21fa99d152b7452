"""Operator safety (#12): outputs, the list a command reads, registry formats, empty rollouts.

Every behaviour is driven through the installed ``ipallow`` executable in a
subprocess, in a temporary directory (never the real /dev/null).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading

import pytest

import ipallow

IPALLOW = shutil.which("ipallow")
pytestmark = pytest.mark.skipif(IPALLOW is None, reason="the ipallow executable is not installed")

REGISTRY_CSV = ("id,networks,owner,status\n"
                "A1,192.0.2.0/24;198.51.100.0/24,Acme,active\n"
                "A2,203.0.113.0/24,Bolan,revoked\n")
REGISTRY_JSONL = ('{"id": "A1", "networks": ["192.0.2.0/24", "198.51.100.0/24"], "owner": "Acme"}\n'
                  '{"id": "A2", "networks": "203.0.113.0/24", "owner": "Bolan", "status": "revoked"}\n')


def run(*args, stdin=None, env=None, timeout=60):
    environment = {k: v for k, v in os.environ.items() if k != "IPALLOW_LIST"}
    environment.update(env or {})
    return subprocess.run([IPALLOW, *map(str, args)], capture_output=True, text=True, input=stdin,
                          env=environment, timeout=timeout)


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".ipallow-"))


@pytest.fixture
def plain(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("192.0.2.0/24\n198.51.100.0/25\n2001:db8::/32\n")
    return path


# -- outputs: what -o names decides how it is written ----------------------------------------

def test_output_replaces_a_regular_file_atomically_keeping_its_mode(tmp_path, plain):
    target = tmp_path / "allow.cidr"
    target.write_text("old\n")
    target.chmod(0o640)
    inode = target.stat().st_ino
    result = run("export", "--format", "cidr", "-q", plain, "-o", target)
    assert result.returncode == 0, result.stderr
    assert target.read_text() == "192.0.2.0/24\n198.51.100.0/25\n2001:db8::/32\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode          # a new file renamed over the old one
    assert leftovers(tmp_path) == []


def test_output_new_file_gets_mode_0644(tmp_path, plain):
    target = tmp_path / "new.nft"
    assert run("export", "--format", "nft", "-q", plain, "-o", target).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert "add element inet ipallow allowed_v4" in target.read_text()


def test_output_follows_a_symlink_and_replaces_its_target(tmp_path, plain):
    real = tmp_path / "live" / "allow.cidr"
    real.parent.mkdir()
    real.write_text("stale\n")
    real.chmod(0o600)
    link = tmp_path / "allow-link"
    link.symlink_to(real)
    result = run("export", "--format", "cidr", "-q", plain, "-o", link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("192.0.2.0/24\n")
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == [] and leftovers(real.parent) == []


def test_output_dangling_symlink_creates_its_target(tmp_path, plain):
    link = tmp_path / "link"
    link.symlink_to("made-here.cidr")
    assert run("export", "--format", "cidr", "-q", plain, "-o", link).returncode == 0
    assert link.is_symlink() and (tmp_path / "made-here.cidr").read_text().startswith("192.0.2.0/24")


def test_output_fifo_is_written_through(tmp_path, plain):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    result = run("export", "--format", "cidr", "-q", plain, "-o", fifo, timeout=30)
    reader.join(10)
    assert result.returncode == 0, result.stderr
    assert received == ["192.0.2.0/24\n198.51.100.0/25\n2001:db8::/32\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert leftovers(tmp_path) == []


def test_output_character_device_is_written_through_not_replaced(tmp_path, plain):
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))     # a null device, here only
    except PermissionError:
        pytest.skip("mknod needs privileges")
    result = run("export", "--format", "nft", "-q", plain, "-o", device)
    assert result.returncode == 0, result.stderr
    st = device.lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("points_at", ["/proc/self/fd/1", "/dev/fd/1"])
def test_output_link_to_an_open_descriptor_writes_to_it(tmp_path, plain, points_at):
    # What /dev/stdout is; a link of our own, so that a regression cannot replace the real one.
    stdout = tmp_path / "stdout"
    stdout.symlink_to(points_at)
    result = run("export", "--format", "cidr", "-q", plain, "-o", stdout)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "192.0.2.0/24\n198.51.100.0/25\n2001:db8::/32\n"
    assert stdout.is_symlink() and os.readlink(stdout) == points_at


def test_output_link_to_stdout_appends_to_a_redirected_file(tmp_path, plain):
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    log = tmp_path / "log"
    log.write_text("earlier line\n")
    with open(log, "a") as handle:         # like: ipallow export ... -o /dev/stdout >> log
        result = subprocess.run([IPALLOW, "export", "--format", "cidr", "-q", str(plain), "-o", str(stdout)],
                                stdout=handle, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert log.read_text() == "earlier line\n192.0.2.0/24\n198.51.100.0/25\n2001:db8::/32\n"
    assert stdout.is_symlink()


def test_output_dash_is_stdout(plain):
    result = run("export", "--format", "cidr", "-q", plain, "-o", "-")
    assert result.returncode == 0 and result.stdout.startswith("192.0.2.0/24\n")


def test_output_directory_is_a_usage_error(tmp_path, plain):
    directory = tmp_path / "out"
    directory.mkdir()
    result = run("export", "--format", "cidr", plain, "-o", directory)
    assert result.returncode == 2
    assert "is a directory" in result.stderr and str(directory) in result.stderr
    assert list(directory.iterdir()) == [] and leftovers(tmp_path) == []


def test_compile_snapshot_follows_symlink_and_keeps_mode(tmp_path, plain):
    real = tmp_path / "real.ipallow"
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / "current.ipallow"
    link.symlink_to(real.name)
    result = run("compile", plain, "-o", link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and stat.S_IMODE(real.stat().st_mode) == 0o640
    assert len(ipallow.load(real)) == 3
    assert f"{real.stat().st_size:,} bytes" in result.stdout


def test_compile_to_stdout_and_directory(tmp_path, plain):
    piped = subprocess.run([IPALLOW, "compile", str(plain), "-o", "-"], capture_output=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert len(ipallow.snapshot.loads(piped.stdout)) == 3
    assert b"3 registrations" in piped.stderr          # the report moves to stderr
    assert run("compile", plain, "-o", tmp_path).returncode == 2


def test_allowlist_save_uses_the_same_rules(tmp_path):
    al = ipallow.Allowlist(["192.0.2.0/24"])
    real = tmp_path / "snap.ipallow"
    real.write_bytes(b"old")
    real.chmod(0o600)
    link = tmp_path / "link.ipallow"
    link.symlink_to(real)
    al.save(link)
    assert link.is_symlink() and "192.0.2.1" in ipallow.load(real)
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    with pytest.raises(IsADirectoryError):
        al.save(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    al.save(fifo)
    reader.join(10)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert "192.0.2.1" in ipallow.snapshot.loads(received[0])
    assert leftovers(tmp_path) == []
