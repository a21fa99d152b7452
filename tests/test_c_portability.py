"""The compiled core builds warning-free from the shipped sources, natively and for aarch64.

Gateways run x86-64 and ARM alike, and wheels are cross-built, so the build must not pick its flags
from the machine it runs on: ``setup.py`` is run here exactly as a packager runs it, with the
compiler swapped for Debian's ``aarch64-linux-gnu-gcc`` (and ``-Wall -Wextra`` added), and the
result must be an aarch64 shared object with not one compiler warning.  The sources come from the
tree the tests run in — the unpacked sdist in CI — copied to a scratch directory so the build
writes nothing next to them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"]
WARNING_FLAGS = "-Wall -Wextra"
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}    # e_machine in the ELF header


def machine_of(shared_object: Path) -> int:
    header = shared_object.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{shared_object} is not an ELF file"
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def build(tmp_path: Path, compiler: str) -> tuple[Path, str]:
    """Run ``setup.py build_ext`` on a copy of the sources with ``compiler``; the built
    extension and everything the compiler said."""
    pytest.importorskip("Cython", reason="building the core needs Cython (pip install ipallow[test])")
    if not (ROOT / "src" / "ipallow" / "_trie.pyx").is_file():
        pytest.skip(f"no compiled-core sources under {ROOT} (the tests run without the sdist)")
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "*.html", "__pycache__"))
    for name in SHIPPED:
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, tree / name)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DEBUG", "ARCH", "ANNOTATE", "CFLAGS", "LDFLAGS", "IPALLOW_PORTABLE")}
    env.update(CC=compiler, LDSHARED=f"{compiler} -shared", CFLAGS=WARNING_FLAGS)
    done = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--build-lib", str(tmp_path / "lib"),
         "--build-temp", str(tmp_path / "temp")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    said = done.stdout + done.stderr
    assert done.returncode == 0, f"build with {compiler} failed:\n{said[-6000:]}"
    (built,) = (tmp_path / "lib" / "ipallow").glob("_trie*.so")
    return built, said


def warnings_in(output: str) -> list[str]:
    return [line for line in output.splitlines() if "warning:" in line]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the build check uses gcc on Linux")
def test_native_build_is_warning_free(tmp_path):
    compiler = shutil.which("gcc")
    if compiler is None:
        pytest.skip("gcc is not installed")
    built, said = build(tmp_path, compiler)
    assert warnings_in(said) == [], "\n".join(warnings_in(said))
    import platform
    expected = ELF_MACHINE.get(platform.machine())
    if expected is not None:
        assert machine_of(built) == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the cross build check is Linux-only")
def test_aarch64_cross_build_is_warning_free(tmp_path):
    compiler = shutil.which("aarch64-linux-gnu-gcc")
    if compiler is None:
        pytest.skip("aarch64-linux-gnu-gcc is not installed "
                    "(Debian: apt-get install gcc-aarch64-linux-gnu; CI installs it)")
    built, said = build(tmp_path, compiler)
    assert warnings_in(said) == [], "\n".join(warnings_in(said))
    assert machine_of(built) == ELF_MACHINE["aarch64"], f"{built} is not an aarch64 object"
