"""deploy/: the systemd service and timer that load the allowlist into nftables.

* ``systemd-analyze verify`` accepts both units, in a scratch root holding the unit files, the
  distribution's own units (targets, slices) and a stand-in at every path an Exec line names;
  a damaged copy of the service is rejected the same way (the check can fail).  The programs'
  paths are checked against this machine where it has them.
* The service's command chain -- its ``ExecStartPre=`` and ``ExecStart=`` lines, read from the
  unit file, with its ``Environment=``, the shipped ``EnvironmentFile`` and ``%S`` expanded --
  runs by hand in a temporary directory, in order, stopping at the first failure as a
  ``Type=oneshot`` service does, with a fake ``nft`` first on PATH that records its arguments.
  A good export is checked and loaded; an export refused by a guard (an empty registry, a
  registry that lost most of its ranges) never reaches nft; an nft that fails leaves the
  reference export of the loss guard as it was.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SERVICE = DEPLOY / "ipallow-nft.service"
TIMER = DEPLOY / "ipallow-nft.timer"
ENV_EXAMPLE = DEPLOY / "nft.env"
STATE = "ipallow-nft"            # StateDirectory=
EXEC_KEYS = ("ExecStartPre", "ExecStart")


def settings(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, in order (no line continuations are used)."""
    found, section = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def exec_lines(path: Path) -> list[str]:
    """The commands systemd starts, in its order: every ExecStartPre=, then every ExecStart=."""
    lines = settings(path)
    return [value for key in EXEC_KEYS for _, k, value in lines if k == key]


def read_environment(unit: Path, env_file_text: str) -> dict[str, str]:
    """Environment= assignments, then the EnvironmentFile's (which win), as systemd reads them."""
    env: dict[str, str] = {}
    for _, key, value in settings(unit):
        if key == "Environment":
            for word in shlex.split(value):
                name, _, val = word.partition("=")
                env[name] = val
    for line in env_file_text.splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            name, _, val = line.partition("=")
            env[name.strip()] = " ".join(shlex.split(val))
    return env


def expand(command: str, env: dict[str, str], state_root: Path) -> list[str]:
    """systemd's expansion of an Exec line, the part the units use: ``%S`` (the state
    directory root), ``${NAME}`` as one word, ``$NAME`` split at whitespace."""
    argv: list[str] = []
    for word in shlex.split(command.replace("%S", str(state_root))):
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:
            argv.extend(env.get(whole.group(1), "").split())
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return argv


# ---------------------------------------------------------------------------------------------
# systemd-analyze verify


def _distribution_units() -> Path | None:
    for candidate in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if (Path(candidate) / "sysinit.target").exists():
            return Path(candidate)
    return None


def _verify(tmp_path: Path, service_text: str) -> subprocess.CompletedProcess:
    """systemd-analyze verify of the service (as given) and the timer, in a scratch root."""
    root = tmp_path / "root"
    shutil.copytree(_distribution_units(), root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / SERVICE.name).write_text(service_text, encoding="utf-8")
    shutil.copy(TIMER, units / TIMER.name)
    for command in exec_lines(SERVICE):
        program = root / shlex.split(command)[0].lstrip("/")
        program.parent.mkdir(parents=True, exist_ok=True)
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o755)
    return subprocess.run([shutil.which("systemd-analyze"), "verify", f"--root={root}",
                           SERVICE.name, TIMER.name], capture_output=True, text=True, timeout=60)


def _complaints(done: subprocess.CompletedProcess) -> list[str]:
    # Only what concerns these units: a container may add notes about the host.
    return [line for line in (done.stdout + done.stderr).splitlines() if "ipallow-nft" in line]


@pytest.fixture
def systemd_analyze():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: the systemd package)")
    if _distribution_units() is None:
        pytest.skip("no distribution unit directory with sysinit.target to verify against")


def test_systemd_analyze_verify_accepts_the_units(tmp_path, systemd_analyze):
    done = _verify(tmp_path, SERVICE.read_text(encoding="utf-8"))
    assert done.returncode == 0 and not _complaints(done), done.stdout + done.stderr


def test_systemd_analyze_verify_rejects_a_damaged_service(tmp_path, systemd_analyze):
    # The control: the same check finds a misspelt value, a program that is not there (verify
    # looks at the first program of each Exec kind; the chain test runs them all) and a setting
    # that contradicts another.
    text = SERVICE.read_text(encoding="utf-8")
    done = _verify(tmp_path, text.replace("ProtectSystem=strict", "ProtectSystem=stric")
                   .replace("ExecStartPre=/bin/touch", "ExecStartPre=/bin/touchx"))
    complaints = "\n".join(_complaints(done))
    assert "protect system value" in complaints and "/bin/touchx is not executable" in complaints, complaints
    done = _verify(tmp_path / "2", text.replace("Type=oneshot", "Type=simple"))
    assert done.returncode != 0, done.stdout + done.stderr     # several ExecStart= need oneshot


def test_the_service_is_hardened_and_reads_the_list_from_its_environment_file():
    service = {(s, k): v for s, k, v in settings(SERVICE)}
    for key, value in {"Type": "oneshot", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
                       "CapabilityBoundingSet": "CAP_NET_ADMIN", "PrivateTmp": "yes", "ProtectHome": "yes",
                       "EnvironmentFile": "/etc/ipallow/nft.env", "StateDirectory": STATE}.items():
        assert service["Service", key] == value, key
    assert "IPALLOW_LIST" in read_environment(SERVICE, ENV_EXAMPLE.read_text(encoding="utf-8"))
    timer = {(s, k): v for s, k, v in settings(TIMER)}
    assert timer["Install", "WantedBy"] == "timers.target"


def test_the_programs_are_where_a_debian_system_has_them():
    # systemd wants absolute paths; /usr/local/bin/ipallow is where `pip install` puts the
    # script (deploy/README.md says to link it there otherwise).
    programs = {Path(shlex.split(command)[0]) for command in exec_lines(SERVICE)}
    assert Path("/usr/local/bin/ipallow") in programs
    checked = set()
    for program in programs - {Path("/usr/local/bin/ipallow")}:
        if shutil.which(program.name, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            continue                  # nft on a machine without nftables
        assert os.access(program, os.X_OK), f"{program.name} is installed here, but not as {program}"
        checked.add(program.name)
    assert {"touch", "mv"} <= checked


# ---------------------------------------------------------------------------------------------
# the command chain, by hand, with a fake nft


FAKE_NFT = """#!/bin/sh
# Records each call (one line of arguments) and a copy of the file it was given.
printf '%s\\n' "$*" >> "$NFT_LOG"
for last; do :; done
cp "$last" "$NFT_LOG.$(wc -l < "$NFT_LOG" | tr -d ' ')"
exit "${NFT_EXIT:-0}"
"""


class Chain:
    """The service's commands, runnable by hand against a registry file in a temporary directory."""

    def __init__(self, tmp_path: Path) -> None:
        ipallow = shutil.which("ipallow", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                 os.environ.get("PATH", "")]))
        if ipallow is None:
            pytest.fail("the ipallow executable is not installed (pip install '.[test]')")
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        nft = self.bin / "nft"
        nft.write_text(FAKE_NFT)
        nft.chmod(nft.stat().st_mode | stat.S_IXUSR)
        self.state_root = tmp_path / "var-lib"
        self.state_root.mkdir()
        self.state = self.state_root / STATE           # StateDirectory= creates it before the start
        self.state.mkdir()
        self.registry = tmp_path / "registry.csv"
        self.log = tmp_path / "nft.log"
        env_text = re.sub(r"(?m)^IPALLOW_LIST=.*$", f"IPALLOW_LIST={self.registry}",
                          ENV_EXAMPLE.read_text(encoding="utf-8"))
        self.env = read_environment(SERVICE, env_text)
        self.path = os.pathsep.join([str(self.bin), str(Path(ipallow).parent), os.environ.get("PATH", "")])

    def run(self, nft_exit: int = 0) -> tuple[list[str], int]:
        """Run the Exec lines in order; stop at the first that fails.  Returns (the programs
        that ran, the failing exit status or 0)."""
        env = {**os.environ, "PATH": self.path, "NFT_LOG": str(self.log), "NFT_EXIT": str(nft_exit)}
        env.pop("IPALLOW_LIST", None)
        ran = []
        for command in exec_lines(SERVICE):
            argv = expand(command, self.env, self.state_root)
            assert argv[0].startswith("/"), f"systemd wants absolute paths: {command}"
            program = shutil.which(Path(argv[0]).name, path=self.path)   # the fake nft comes first
            done = subprocess.run([program, *argv[1:]], env=env, capture_output=True, text=True, timeout=120)
            ran.append(Path(argv[0]).name + (" " + argv[1] if argv[1:] else ""))
            if done.returncode:
                return ran, done.returncode
        return ran, 0

    def nft_calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def applied(self) -> str:
        return (self.state / "applied.nft").read_text()


def write_registry(path: Path, rows: list[tuple[str, str, str]]) -> None:
    path.write_text("id,cidr,status\n" + "".join(f"{i},{c},{s}\n" for i, c, s in rows))


def set_elements(nft_text: str) -> set:
    """The networks of an nft export's 'add element' blocks."""
    return {ipaddress.ip_network(token) for block in re.findall(r"add element [^{]*\{([^}]*)\}", nft_text)
            for token in re.split(r"[\s,]+", block) if token}


ROWS = [(f"P{i:03d}", f"10.{i}.0.0/16", "active") for i in range(40)] + [
    ("V6", "2001:db8::/32", "active"), ("GONE", "192.0.2.0/24", "revoked")]


def test_the_chain_applies_a_good_export_and_never_calls_nft_for_a_refused_one(tmp_path):
    chain = Chain(tmp_path)

    # First run, and the registry is empty of counting records: refused, nft never called.
    write_registry(chain.registry, [("GONE", "192.0.2.0/24", "revoked")])
    ran, status = chain.run()
    assert (ran, status) == ([f"touch {chain.state / 'applied.nft'}", "ipallow export"], 1)
    assert chain.nft_calls() == [] and chain.applied() == ""

    # A good registry: exported, checked, loaded, kept as the reference.
    write_registry(chain.registry, ROWS)
    ran, status = chain.run()
    assert status == 0 and ran[1:] == ["ipallow export", "nft --check", "nft --file", "mv --force"]
    candidate = str(chain.state / "candidate.nft")
    assert chain.nft_calls() == [f"--check --file {candidate}", f"--file {candidate}"]
    loaded = (tmp_path / "nft.log.2").read_text()
    active = [ipaddress.ip_network(c) for _, c, s in ROWS if s == "active"]
    want = {net for version in (4, 6)       # the oracle: ipaddress's own aggregation, per family
            for net in ipaddress.collapse_addresses(n for n in active if n.version == version)}
    assert set_elements(loaded) == want
    assert "add set inet ipallow allowed_v4" in loaded and "add set inet ipallow allowed_v6" in loaded
    assert chain.applied() == loaded and not (chain.state / "candidate.nft").exists()

    # Most ranges gone (a truncated registry): refused by the loss guard, nft not called again.
    write_registry(chain.registry, ROWS[:5])
    ran, status = chain.run()
    assert (ran[1:], status) == (["ipallow export"], 1)
    assert len(chain.nft_calls()) == 2 and chain.applied() == loaded

    # A good export that nft rejects: the chain stops, the loss guard's reference stays.
    write_registry(chain.registry, ROWS + [("NEW", "198.51.100.0/24", "active")])
    ran, status = chain.run(nft_exit=1)
    assert (ran[1:], status) == (["ipallow export", "nft --check"], 1)
    assert len(chain.nft_calls()) == 3 and chain.applied() == loaded


def test_a_real_nft_accepts_the_export(tmp_path):
    """The file the chain loads, checked by the real nft (--check changes nothing)."""
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if nft is None:
        pytest.skip("nft is not installed (Debian: the nftables package)")
    chain = Chain(tmp_path)
    write_registry(chain.registry, ROWS)
    assert chain.run()[1] == 0
    done = subprocess.run([nft, "--check", "--file", str(chain.state / "applied.nft")],
                          capture_output=True, text=True, timeout=60)
    if done.returncode and ("Operation not permitted" in done.stderr or "not supported" in done.stderr):
        pytest.skip(f"nft --check needs CAP_NET_ADMIN and nf_tables here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
