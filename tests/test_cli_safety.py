"""Operator safety (#12): outputs, the list a command reads, registry formats, empty rollouts.

Every behaviour is driven through the installed ``ipallow`` executable in a
subprocess, in a temporary directory (never the real /dev/null).
"""

from __future__ import annotations

import datetime
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


def test_output_is_fsynced_before_the_rename_and_the_directory_after(tmp_path, plain):
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    target = tmp_path / "allow.nft"
    log = tmp_path / "trace"
    traced = subprocess.run([strace, "-f", "-qq", "-o", str(log), "-e", "trace=openat,fsync,fdatasync,rename,"
                             "renameat,renameat2", IPALLOW, "export", "--format", "nft", "-q", str(plain),
                             "-o", str(target)], capture_output=True, text=True, timeout=120)
    if traced.returncode != 0 and "ptrace" in traced.stderr:
        pytest.skip("ptrace is not permitted here")
    assert traced.returncode == 0, traced.stderr
    calls = [line.split(None, 1)[1] for line in log.read_text().splitlines()]
    temp_open = next(i for i, c in enumerate(calls) if c.startswith("openat(") and "/.ipallow-" in c)
    rename = next(i for i, c in enumerate(calls) if c.startswith("rename") and str(target) in c)
    temp_fd = calls[temp_open].rsplit("= ", 1)[1]
    assert any(c.startswith(f"fsync({temp_fd})") for c in calls[temp_open:rename]), calls[temp_open:]
    dir_open = next((i for i, c in enumerate(calls)
                     if i > rename and f'"{tmp_path}"' in c and "O_DIRECTORY" in c), None)
    assert dir_open is not None, f"the directory is not opened after the rename: {calls[rename:]}"
    dir_fd = calls[dir_open].rsplit("= ", 1)[1]
    assert any(c.startswith(f"fsync({dir_fd})") for c in calls[dir_open:])


def test_output_keeps_owner_and_group_where_permitted(tmp_path, plain):
    if os.geteuid() != 0:
        pytest.skip("giving a file to another owner needs root")
    target = tmp_path / "allow.cidr"
    target.write_text("old\n")
    os.chown(target, 4321, 4322)
    target.chmod(0o664)
    assert run("export", "--format", "cidr", "-q", plain, "-o", target).returncode == 0
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4322, 0o664)


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


@pytest.mark.parametrize("command", [
    ["export", "--format", "cidr", "-q", "LIST", "-o", "OUT"],
    ["compile", "LIST", "-o", "OUT"],
    ["merge", "LIST", "LIST", "-o", "OUT"],
])
@pytest.mark.parametrize("where", ["a directory", "in a missing directory"])
def test_a_bad_output_is_refused_before_the_list_is_read(tmp_path, command, where):
    (tmp_path / "adir").mkdir()
    out = tmp_path / "adir" if where == "a directory" else tmp_path / "missing" / "out"
    never_read = tmp_path / "never-read.txt"      # missing: reading it first would name it
    args = [str(never_read) if a == "LIST" else str(out) if a == "OUT" else a for a in command]
    result = run(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert str(out) in result.stderr and str(never_read) not in result.stderr, result.stderr


def test_output_name_ending_in_a_slash_must_be_a_directory(tmp_path, plain):
    # As cp and install: 'FILE/' names a directory; writing a file called FILE instead is a surprise.
    existing = tmp_path / "allow.cidr"
    existing.write_text("old\n")
    for name in (f"{existing}/", f"{tmp_path / 'new.cidr'}/"):
        result = run("export", "--format", "cidr", "--force", plain, "-o", name)
        assert result.returncode == 2, result.stderr
        assert f"Not a directory: {name}" in result.stderr
    assert existing.read_text() == "old\n" and not (tmp_path / "new.cidr").exists()
    assert leftovers(tmp_path) == []
    with pytest.raises(NotADirectoryError):
        ipallow.Allowlist(["192.0.2.0/24"]).save(f"{existing}/")
    assert existing.read_text() == "old\n"


def test_output_in_a_missing_directory_names_the_output_not_a_temporary_file(tmp_path, plain):
    target = tmp_path / "no-such-dir" / "allow.cidr"
    result = run("export", "--format", "cidr", plain, "-o", target)
    assert result.returncode == 2
    assert f"No such file or directory: {target}" in result.stderr and ".ipallow-" not in result.stderr


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
    assert len(ipallow.allowlist.loads(piped.stdout)) == 3
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
    assert "192.0.2.1" in ipallow.allowlist.loads(received[0])
    assert leftovers(tmp_path) == []


SAVE_SCRIPT = ("import pathlib, sys, ipallow\n"
               "al = ipallow.Allowlist(['192.0.2.0/24', '2001:db8::/32'])\n"
               "target = sys.argv[1]\n"
               "al.save(pathlib.Path(target) if sys.argv[2] == 'path' else target)\n")


def test_allowlist_save_dash_writes_the_snapshot_to_stdout(tmp_path):
    import sys
    result = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, "-", "str"], capture_output=True,
                            cwd=tmp_path, timeout=60, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []                # no file named "-"
    loaded = ipallow.allowlist.loads(result.stdout)
    assert "192.0.2.1" in loaded and "2001:db8::1" in loaded and "198.51.100.1" not in loaded


@pytest.mark.parametrize("target, kind", [("-", "path"), ("./-", "str")])
def test_allowlist_save_a_path_named_dash_is_a_file(tmp_path, target, kind):
    import sys
    result = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, target, kind], capture_output=True,
                            cwd=tmp_path, timeout=60, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert "192.0.2.1" in ipallow.load(tmp_path / "-")


def test_allowlist_save_dash_without_a_binary_stdout_is_a_type_error(tmp_path, monkeypatch):
    import io
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    with pytest.raises(TypeError, match="stdout"):
        ipallow.Allowlist(["192.0.2.0/24"]).save("-")
    assert list(tmp_path.iterdir()) == []


def test_allowlist_save_regular_file_and_character_device(tmp_path):
    al = ipallow.Allowlist(["192.0.2.0/24"])
    regular = tmp_path / "snap.ipallow"
    regular.write_bytes(b"old")
    regular.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(regular, 4321, 4322)
    inode = regular.stat().st_ino
    al.save(regular)
    st = regular.stat()
    assert st.st_ino != inode and stat.S_IMODE(st.st_mode) == 0o640 and "192.0.2.1" in ipallow.load(regular)
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (4321, 4322)
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))     # a null device, here only
    except PermissionError:
        pytest.skip("mknod needs privileges")
    al.save(device)
    assert stat.S_ISCHR(device.lstat().st_mode) and device.lstat().st_rdev == os.makedev(1, 3)
    assert leftovers(tmp_path) == []


# -- no silent list: --list, else $IPALLOW_LIST, else exit 2 (the demo only with --sample) -----

NO_LIST = "no list given: pass --list FILE"


@pytest.mark.parametrize("command", [
    ["check", "203.0.113.9"],
    ["filter"],
    ["filter", "--denied", "-"],
    ["bench", "--queries", "10", "--peers", "none"],
])
def test_no_list_is_a_usage_error_not_the_demo_registry(command):
    result = run(*command, stdin="203.0.113.9\n")
    assert result.returncode == 2
    assert result.stdout == ""
    assert NO_LIST in result.stderr and "IPALLOW_LIST" in result.stderr and "--sample" in result.stderr


def test_list_from_the_environment(tmp_path, plain):
    result = run("check", "192.0.2.7", env={"IPALLOW_LIST": str(plain)})
    assert result.returncode == 0 and result.stdout.split()[:3] == ["192.0.2.7", "allowed", "192.0.2.0/24"]
    # the demo registry allows 203.0.113.9; this list does not
    assert run("check", "203.0.113.9", env={"IPALLOW_LIST": str(plain)}).returncode == 1
    filtered = run("filter", "-q", stdin="192.0.2.7\n203.0.113.9\n", env={"IPALLOW_LIST": str(plain)})
    assert filtered.returncode == 0 and filtered.stdout == "192.0.2.7\n"


def test_a_list_named_by_the_environment_that_is_missing_says_where_the_name_came_from(tmp_path):
    # From cron, nothing on the command line names the file: the message must.
    missing = tmp_path / "gone.csv"
    result = run("check", "192.0.2.7", env={"IPALLOW_LIST": str(missing)})
    assert result.returncode == 2 and result.stdout == ""
    assert f"No such file or directory: {missing} (named by IPALLOW_LIST)" in result.stderr
    filtered = run("filter", stdin="192.0.2.7\n", env={"IPALLOW_LIST": str(missing)})
    assert filtered.returncode == 2 and f"{missing} (named by IPALLOW_LIST)" in filtered.stderr


def test_explicit_choices_beat_the_environment(tmp_path, plain):
    other = tmp_path / "other.txt"
    other.write_text("203.0.113.0/24\n")
    env = {"IPALLOW_LIST": str(plain)}
    assert run("check", "--list", other, "203.0.113.9", env=env).returncode == 0
    assert run("check", "--sample", "203.0.113.9", env=env).returncode == 0
    assert run("check", "203.0.113.9", env={"IPALLOW_LIST": ""}).returncode == 2     # empty = unset
    both = run("check", "--list", other, "--sample", "203.0.113.9")
    assert both.returncode == 2 and "not allowed with" in both.stderr


# Every command that reads ONE list: the positional LIST, else $IPALLOW_LIST, else exit 2.
ONE_LIST_COMMANDS = {
    "validate": ["validate"],
    "stats": ["stats", "--json"],
    "export": ["export", "--format", "cidr", "-q"],
    "compile": ["compile", "--json", "-o", "OUT"],
    "info": ["info", "--json"],
}


def one_list_command(name, tmp_path):
    return [str(tmp_path / "out.ipallow") if a == "OUT" else a for a in ONE_LIST_COMMANDS[name]]


@pytest.mark.parametrize("name", sorted(ONE_LIST_COMMANDS))
def test_one_list_commands_without_a_list_stop_with_the_how_to(tmp_path, name):
    result = run(*one_list_command(name, tmp_path), stdin="")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "no list given: pass" in result.stderr and "IPALLOW_LIST=FILE" in result.stderr
    assert "the following arguments are required" not in result.stderr


@pytest.mark.parametrize("name", sorted(ONE_LIST_COMMANDS))
def test_one_list_commands_read_the_list_from_the_environment(tmp_path, plain, name):
    snapshot = tmp_path / "plain.ipallow"
    assert run("compile", plain, "-o", snapshot).returncode == 0
    listed = snapshot if name == "info" else plain
    command = one_list_command(name, tmp_path)
    from_env = run(*command, env={"IPALLOW_LIST": str(listed)})
    given = run(*command, listed)
    assert from_env.returncode == given.returncode == 0, from_env.stderr
    if name not in ("compile", "info"):          # these two print a timestamp or timings
        assert from_env.stdout == given.stdout
    # a positional LIST beats the environment
    other = tmp_path / "other.txt"
    other.write_text("this is not a list\n")
    env = {"IPALLOW_LIST": str(other)}
    assert run(*command, listed, env=env).returncode == 0
    assert run(*command, env=env).returncode != 0


def test_one_list_commands_name_the_environment_for_a_missing_file(tmp_path):
    missing = tmp_path / "gone.txt"
    for name in ONE_LIST_COMMANDS:
        result = run(*one_list_command(name, tmp_path), env={"IPALLOW_LIST": str(missing)})
        assert result.returncode == 2, name
        assert f"{missing} (named by IPALLOW_LIST)" in result.stderr, (name, result.stderr)


def test_compile_from_mmdb_needs_no_list_and_ignores_the_environment(tmp_path, plain):
    mmdb = tmp_path / "plain.mmdb"
    made = run("export", "--format", "mmdb", "-q", plain, "-o", mmdb)
    if made.returncode != 0:
        pytest.skip(f"no MaxMind DB writer: {made.stderr}")
    out = tmp_path / "from-mmdb.ipallow"
    result = run("compile", "--from-mmdb", mmdb, "-o", out, env={"IPALLOW_LIST": str(tmp_path / "gone")})
    assert result.returncode == 0, result.stderr
    assert len(ipallow.load(out)) > 0
    both = run("compile", plain, "--from-mmdb", mmdb, "-o", out)
    assert both.returncode == 2 and "either LIST or --from-mmdb" in both.stderr


@pytest.mark.parametrize("name", sorted(ONE_LIST_COMMANDS))
def test_one_list_commands_help_names_the_environment(name):
    result = run(ONE_LIST_COMMANDS[name][0], "--help")
    assert result.returncode == 0 and "IPALLOW_LIST" in result.stdout


def test_sample_is_the_bundled_demo_registry():
    result = run("check", "--sample", "203.0.113.9")
    assert result.returncode == 0
    assert result.stdout.split() == ["203.0.113.9", "allowed", "203.0.113.0/24", "PTA-0003", "Indus",
                                     "Call", "Center"]
    filtered = run("filter", "--sample", "-q", stdin="203.0.113.9\n8.8.8.8\n")
    assert filtered.returncode == 0 and filtered.stdout == "203.0.113.9\n"


# -- one loader: registries recognised by content, --list-format, stdin for every format --------

@pytest.fixture
def sources(tmp_path):
    """The same registrations in every format, under telling names and under a name that says nothing."""
    files = {}
    for kind, text in (("registry-csv", REGISTRY_CSV), ("jsonl", REGISTRY_JSONL),
                       ("csv", "cidr,owner\n192.0.2.0/24,Acme\n198.51.100.0/24,Acme\n"),
                       ("txt", "# registered\n192.0.2.0/24\n198.51.100.0/24\n")):
        suffix = {"registry-csv": ".csv", "jsonl": ".jsonl", "csv": ".csv", "txt": ".txt"}[kind]
        files[kind] = tmp_path / f"{kind}{suffix}"
        files[kind].write_text(text)
        files[kind + " unnamed"] = tmp_path / f"{kind}-export.dat"
        files[kind + " unnamed"].write_text(text)
    snap = tmp_path / "list.ipallow"
    ipallow.Allowlist(["192.0.2.0/24", "198.51.100.0/24"]).save(snap)
    files["snapshot"] = snap
    files["snapshot unnamed"] = tmp_path / "snapshot-export.dat"
    files["snapshot unnamed"].write_bytes(snap.read_bytes())
    return files


def networks(allowlist) -> list[str]:
    return sorted(str(n) for entry in allowlist for n in entry.networks)


KINDS = ["registry-csv", "jsonl", "csv", "txt", "snapshot"]


@pytest.mark.parametrize("kind", KINDS + [k + " unnamed" for k in KINDS])
def test_every_format_is_recognised_by_every_command(tmp_path, sources, kind):
    path = sources[kind]
    # A1 (active) is allowed, A2 (revoked, in the registries) is not.
    check = run("check", "--list", path, "192.0.2.7", "198.51.100.1", "203.0.113.9")
    assert check.returncode == 1, check.stderr
    assert [line.split()[1] for line in check.stdout.splitlines()] == ["allowed", "allowed", "denied"]
    assert networks(ipallow.Allowlist.from_file(path)) == ["192.0.2.0/24", "198.51.100.0/24"]
    if kind.endswith("unnamed"):
        return      # the rest reads through the same loader: once per format is enough
    compiled = tmp_path / "out.ipallow"
    result = run("compile", path, "-o", compiled)
    assert result.returncode == 0, result.stderr
    assert networks(ipallow.load(compiled)) == ["192.0.2.0/24", "198.51.100.0/24"]
    exported = run("export", "--format", "cidr", "-q", path)
    assert exported.returncode == 0 and exported.stdout == "192.0.2.0/24\n198.51.100.0/24\n"
    assert run("validate", path).returncode == 0
    assert run("stats", path).returncode == 0
    assert run("diff", sources["txt"], path).returncode == 0      # the same coverage


@pytest.mark.parametrize("kind", KINDS)
def test_every_format_reads_from_stdin(sources, kind):
    data = sources[kind].read_bytes()
    result = subprocess.run([IPALLOW, "check", "--list", "-", "192.0.2.7", "203.0.113.9"], input=data,
                            capture_output=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert [line.split()[1] for line in result.stdout.decode().splitlines()] == ["allowed", "denied"]
    exported = subprocess.run([IPALLOW, "export", "--format", "cidr", "-q", "-"], input=data,
                              capture_output=True, timeout=60)
    assert exported.returncode == 0 and exported.stdout == b"192.0.2.0/24\n198.51.100.0/24\n"


@pytest.mark.parametrize("kind", ["registry-csv", "snapshot"])
def test_list_from_a_fifo(tmp_path, sources, kind):
    fifo = tmp_path / "list.fifo"
    os.mkfifo(fifo)
    data = sources[kind].read_bytes()
    writer = threading.Thread(target=lambda: fifo.write_bytes(data), daemon=True)
    writer.start()
    result = run("check", "--list", fifo, "192.0.2.7", "203.0.113.9", timeout=30)
    writer.join(10)
    assert result.returncode == 1, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["allowed", "denied"]


def test_diff_help_example_csv_registry_on_stdin(tmp_path):
    # ipallow diff --help: curl -s https://registry.example/export.csv | ipallow diff --summary current.csv -
    old = tmp_path / "current.csv"
    old.write_text(REGISTRY_CSV)
    new = REGISTRY_CSV.replace("A2,203.0.113.0/24,Bolan,revoked", "A2,203.0.113.0/24,Bolan,active")
    result = run("diff", "--summary", old, "-", stdin=new)
    assert result.returncode == 1, result.stderr
    assert "registrations: 0 added, 0 removed, 1 changed, 1 unchanged" in result.stdout
    assert "coverage IPv4: +256 addresses" in result.stdout


def test_list_format_overrides_recognition(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text("id,cidr,status\nA1,192.0.2.0/24,active\nA2,203.0.113.0/24,revoked\n")
    # as a registry (recognised by its id column): the revoked record does not count
    assert run("check", "--list", path, "203.0.113.9").returncode == 1
    # as a plain CSV list, on request: every row counts
    plain_csv = run("check", "--list", path, "--list-format", "csv", "203.0.113.9")
    assert plain_csv.returncode == 0 and "allowed" in plain_csv.stdout
    as_text = run("check", "--list", path, "--list-format", "txt", "203.0.113.9")
    assert as_text.returncode == 2 and f"{path}:1:1: invalid network 'id,cidr,status'" in as_text.stderr
    not_a_snapshot = run("stats", "--list-format", "snapshot", path)
    assert not_a_snapshot.returncode == 2 and "not a usable ipallow snapshot" in not_a_snapshot.stderr
    unknown = run("check", "--list", path, "--list-format", "yaml", "203.0.113.9")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


def test_csv_without_a_known_header_says_what_it_needs(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("address,owner\n192.0.2.0/24,x\n")
    result = run("validate", path)
    assert result.returncode == 1
    assert f"{path}:1:1: error: no network column in header" in result.stdout
    assert "an id column (a registry)" in result.stdout


def test_text_list_with_a_comma_in_a_comment_stays_text(tmp_path):
    path = tmp_path / "list"
    path.write_text("# id, cidr and owner live elsewhere\n192.0.2.0/24\n")
    assert run("check", "--list", path, "192.0.2.1").returncode == 0


def test_allowlist_from_file_reads_registries(tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text(REGISTRY_CSV)
    al = ipallow.Allowlist.from_file(path)
    assert al.lookup("192.0.2.7").data.id == "A1" and "203.0.113.9" not in al
    later = tmp_path / "later.csv"
    later.write_text("id,cidr,valid_from\nL1,203.0.113.0/24,2999-01-01\n")
    assert "203.0.113.9" not in ipallow.Allowlist.from_file(later)                # not valid yet
    assert "203.0.113.9" in ipallow.Allowlist.from_file(later, at=datetime.date(2999, 6, 1))
    jsonl = tmp_path / "reg"
    jsonl.write_text(REGISTRY_JSONL)
    assert ipallow.Allowlist.from_file(jsonl).lookup("198.51.100.1").data.owner == "Acme"
    with pytest.raises(ValueError, match="format must be one of"):
        ipallow.Allowlist.from_file(path, format="yaml")


# -- guards: an export that would empty or gut the live set is refused -------------------------

ALL_REVOKED = "id,networks,status\nA1,192.0.2.0/24,revoked\nA2,2001:db8::/32,suspended\n"


@pytest.mark.parametrize("fmt", ["nft", "ipset", "cidr"])
@pytest.mark.parametrize("content, counts", [
    ("# nothing registered yet\n", "0 registrations"),
    (ALL_REVOKED, "0 of 2 registrations count now (1 revoked, 1 suspended)"),
])
def test_export_refuses_an_empty_result(tmp_path, fmt, content, counts):
    listing = tmp_path / "list.txt"        # what it is is told by content: a registry here too
    listing.write_text(content)
    live = tmp_path / "allow.out"
    live.write_text("the live export\n")
    for output in ([[], ["-o", live]] if fmt == "nft" else [[]]):     # -o: the same code for every format
        result = run("export", "--format", fmt, listing, *output)
        assert result.returncode == 1
        assert result.stdout == "" and live.read_text() == "the live export\n"
        assert "refused, nothing written" in result.stderr and counts in result.stderr
        assert "--allow-empty" in result.stderr
    allowed = run("export", "--format", fmt, "--allow-empty", listing)
    assert allowed.returncode == 0, allowed.stderr
    if fmt == "nft":
        assert "flush set inet ipallow allowed_v4" in allowed.stdout and "add element" not in allowed.stdout
    assert run("export", "--format", fmt, "--force", listing).returncode == 0


def test_export_empty_family_is_refused(tmp_path, plain):
    v4_only = tmp_path / "v4.txt"
    v4_only.write_text("192.0.2.0/24\n")
    result = run("export", "--format", "nft", "--family", "ip6", v4_only)
    assert result.returncode == 1 and "the IPv6 export" in result.stderr
    assert run("export", "--format", "nft", "--family", "ip", v4_only).returncode == 0


def test_export_refused_json_summary(tmp_path):
    listing = tmp_path / "reg.csv"
    listing.write_text(ALL_REVOKED)
    result = run("export", "--format", "nft", "--json", listing)
    assert result.returncode == 1
    summary = json.loads(result.stderr.splitlines()[0])
    assert summary["written"] is False and summary["registrations"] == 0
    assert summary["cidrs"] == {"ipv4": 0, "ipv6": 0} and "empty" in summary["refused"]


def _write_list(path, cidrs):
    path.write_text("".join(c + "\n" for c in cidrs))
    return path


@pytest.mark.parametrize("fmt", ["nft", "ipset", "cidr"])
def test_export_refuses_losing_more_than_max_loss_of_the_previous_export(tmp_path, fmt):
    full = _write_list(tmp_path / "full.txt", [f"10.{i}.0.0/16" for i in range(8)] + ["2001:db8::/32"])
    previous = tmp_path / f"previous.{fmt}"
    assert run("export", "--format", fmt, "-q", full, "-o", previous).returncode == 0
    # 5 of 8 /16s gone: 62.5% of the IPv4 addresses
    cut = _write_list(tmp_path / "cut.txt", [f"10.{i}.0.0/16" for i in range(3)] + ["2001:db8::/32"])
    refused = run("export", "--format", fmt, "--previous", previous, cut)
    assert refused.returncode == 1 and refused.stdout == ""
    assert (f"IPv4 would lose 327,680 of the 524,288 addresses allowed by {previous} (62.5%, "
            f"more than --max-loss 50%)") in refused.stderr
    assert run("export", "--format", fmt, "--previous", previous, "--max-loss", "70", cut).returncode == 0
    assert run("export", "--format", fmt, "--previous", previous, "--force", cut).returncode == 0
    # 4 of 8 gone is 50%: not more than the default
    half = _write_list(tmp_path / "half.txt", [f"10.{i}.0.0/16" for i in range(4)] + ["2001:db8::/32"])
    assert run("export", "--format", fmt, "--previous", previous, half).returncode == 0
    # IPv6 is checked on its own: its loss is not drowned by, nor drowns, IPv4
    no_v6 = _write_list(tmp_path / "no6.txt", [f"10.{i}.0.0/16" for i in range(8)])
    lost6 = run("export", "--format", fmt, "--previous", previous, no_v6)
    assert lost6.returncode == 1 and "IPv6 would lose" in lost6.stderr
    # moved, not lost: a different but equally large range is still a loss of the old addresses
    moved = _write_list(tmp_path / "moved.txt", [f"10.{i}.0.0/16" for i in range(8, 16)] + ["2001:db8::/32"])
    assert run("export", "--format", fmt, "--previous", previous, moved).returncode == 1


def test_export_compares_with_the_output_it_replaces(tmp_path):
    full = _write_list(tmp_path / "full.txt", [f"10.{i}.0.0/16" for i in range(8)])
    cut = _write_list(tmp_path / "cut.txt", ["10.0.0.0/16"])
    live = tmp_path / "allow.nft"
    assert run("export", "--format", "nft", "-q", full, "-o", live).returncode == 0
    before = live.read_text()
    refused = run("export", "--format", "nft", cut, "-o", live)
    assert refused.returncode == 1 and f"allowed by {live}" in refused.stderr
    assert live.read_text() == before
    # through a symlink too
    link = tmp_path / "link.nft"
    link.symlink_to(live)
    assert run("export", "--format", "nft", cut, "-o", link).returncode == 1
    assert run("export", "--format", "nft", "--force", "-q", cut, "-o", link).returncode == 0
    assert "10.1.0.0/16" not in live.read_text() and link.is_symlink()


def test_export_output_that_is_not_an_export_is_replaced_with_a_note(tmp_path, plain):
    other = tmp_path / "notes.txt"
    other.write_text("table inet filter {\n}\n")
    result = run("export", "--format", "cidr", plain, "-o", other)
    assert result.returncode == 0, result.stderr
    assert f"not compared with {other}: it does not read as an earlier export" in result.stderr
    assert other.read_text().startswith("192.0.2.0/24\n")


def test_export_unreadable_previous_is_an_error(tmp_path, plain):
    bad = tmp_path / "previous.nft"
    bad.write_text("add element inet ipallow allowed_v4 {\n\t10.0.0.0/33,\n}\n")
    result = run("export", "--format", "nft", "--previous", bad, plain)
    assert result.returncode == 2 and f"{bad}:2:11: invalid network '10.0.0.0/33': prefix length" in result.stderr
    missing = run("export", "--format", "nft", "--previous", tmp_path / "absent.nft", plain)
    assert missing.returncode == 2 and "absent.nft" in missing.stderr


@pytest.mark.parametrize("value", ["-1", "101", "half"])
def test_export_max_loss_must_be_a_percentage(plain, value):
    result = run("export", "--format", "nft", "--max-loss", value, plain)
    assert result.returncode == 2 and "--max-loss" in result.stderr


# -- validate: an empty list is a warning ----------------------------------------------------

@pytest.mark.parametrize("content, counts", [
    ("", "0 registrations"),
    ("# nothing yet\n", "0 registrations"),
    (ALL_REVOKED, "0 of 2 registrations count now (1 revoked, 1 suspended)"),
])
def test_validate_warns_on_an_empty_list(tmp_path, content, counts):
    path = tmp_path / "list.txt"
    path.write_text(content)
    result = run("validate", path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"{path}: warning: nothing to allow: {counts}")
    assert "1 warning (empty" in result.stderr
    assert run("validate", "--strict", path).returncode == 1
    as_json = json.loads(run("validate", "--json", path).stdout)
    assert as_json["valid"] is True and as_json["warnings"][0]["kind"] == "empty"


def test_validate_a_snapshot(tmp_path):
    snap = tmp_path / "list.ipallow"
    ipallow.Allowlist(["10.0.0.0/8", "10.1.0.0/16"]).save(snap)
    result = run("validate", snap)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"{snap}: warning: 10.1.0.0/16 lies inside 10.0.0.0/8 (registration #0); "
                             f"lookups return the longer prefix\n")
