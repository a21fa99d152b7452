"""Every code block in README.md and docs/*.md runs, and says what it does.

The rules, for whoever writes documentation:

* Every fenced block names its kind after the opening fence: ``python``, ``console`` or ``text``.
  A fence without one fails this test (so nothing is left out by accident).
* ``python`` blocks run, in order, in one namespace per Markdown file, with a fresh temporary
  directory as the working directory (a block may write the files the next ones read; the bundled
  sample registry is ``ipallow.SAMPLE_LIST``).  A block that starts with ``>>>`` is a doctest: the
  output shown is compared (``...`` matches anything, whitespace is normalised).  Any other block
  is a script; state its claims with ``assert``.
* ``console`` blocks: each line starting with ``$ `` is a shell command, run by ``bash`` in the
  same directory as the file's python blocks, with the installed ``ipallow`` first on ``PATH`` and
  ``IPALLOW_LIST`` unset.  The lines up to the next command are its expected output (stdout and
  stderr together), compared like a doctest's; with none shown, nothing is compared.  The exit
  status must be 0, unless the command ends with ``# exit N``.
* ``text`` blocks are not run: shown output, file layouts, formats.
* ``<!-- no-run: REASON -->`` on the line just before a fence skips that block; use it only for
  what cannot run here (a long measurement, a systemd unit).
* The README's two Quick start commands install the package, which is what CI itself does before
  the tests: ``test_quick_start_install_steps`` recognises them by their exact text and skips them
  with that reason.  Of the first, the part after ``&&`` (the main job on the bundled sample) runs
  and its output is compared; the second (the test suite) is not run from inside the test suite.
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

INSTALL_MAIN = "python -m pip install . && "
QUICK_START = {
    # exact command text -> what runs in its place (None: nothing)
    INSTALL_MAIN + "ipallow check --sample 203.0.113.9 198.51.100.7 2001:db8::1":
        "ipallow check --sample 203.0.113.9 198.51.100.7 2001:db8::1",
    "python -m pip install '.[test]' && python -m pytest": None,
}
KINDS = ("python", "console", "text")
FENCE = re.compile(r"^(```+)(.*)$")
NO_RUN = re.compile(r"^<!--\s*no-run:\s*(\S.*?)\s*-->$")
EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


class Block:
    def __init__(self, path: Path, line: int, kind: str, text: str, skip: str | None) -> None:
        self.path, self.line, self.kind, self.text, self.skip = path, line, kind, text, skip

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with their kind and any no-run reason."""
    found, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, kind = opening.group(1), opening.group(2).strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), None)
        assert end is not None, f"{path.name}:{i + 1}: fence never closed"
        before = lines[i - 1].strip() if i else ""
        skip = NO_RUN.match(before)
        found.append(Block(path, i + 1, kind, "\n".join(lines[i + 1:end]) + "\n",
                           skip.group(1) if skip else None))
        i = end + 1
    return found


def commands(block: Block) -> list[tuple[str, int, list[str]]]:
    """(command, expected exit status, expected output lines) of a console block."""
    result: list[tuple[str, int, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            command = line[2:]
            status = EXIT.search(command)
            result.append((command, int(status.group(1)) if status else 0, []))
        else:
            assert result, f"{block.where}: output before the first '$ ' command"
            result[-1][2].append(line)
    return result


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("IPALLOW_LIST", None)
    env.pop("IPALLOW_PROGRESS_DELAY", None)
    scripts = Path(sys.executable).parent
    env["PATH"] = os.pathsep.join([str(scripts), env.get("PATH", "")])
    return env


def run_console(block: Block, cwd: Path) -> None:
    for command, status, expected in commands(block):
        if command in QUICK_START:
            command = QUICK_START[command]   # the install step: see test_quick_start_install_steps
            if command is None:
                continue
        assert "pip install" not in command, f"{block.where}: an install command outside Quick start"
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=_environment(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert done.returncode == status, (
            f"{block.where}: `{command}` exited {done.returncode}, not {status}:\n{done.stdout}")
        if expected:
            want = "\n".join(expected).rstrip() + "\n"
            assert CHECKER.check_output(want, done.stdout.rstrip() + "\n", FLAGS), (
                f"{block.where}: `{command}` printed\n{done.stdout}\nnot\n{want}")


def run_python(block: Block, namespace: dict) -> None:
    if block.text.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(block.text, namespace, block.where,
                                                   str(block.path), block.line)
        runner = doctest.DocTestRunner(optionflags=FLAGS)
        report: list[str] = []
        runner.run(test, out=report.append, clear_globs=False)
        assert runner.failures == 0, "".join(report)
    else:
        exec(compile(block.text, block.where, "exec"), namespace)


@pytest.fixture(scope="module")
def ipallow_on_path():
    if shutil.which("ipallow", path=_environment()["PATH"]) is None:
        pytest.fail("the ipallow executable is not installed (pip install '.[test]')")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_block_runs(path, tmp_path, monkeypatch, ipallow_on_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IPALLOW_LIST", raising=False)
    namespace: dict = {"__name__": "__docs__"}
    found = blocks(path)
    for block in found:
        assert block.kind in KINDS, (
            f"{block.where}: fenced block of kind {block.kind!r}; name one of {', '.join(KINDS)}")
        if block.skip or block.kind == "text":
            continue
        if block.kind == "python":
            run_python(block, namespace)
        else:
            run_console(block, tmp_path)


def test_no_run_is_rare():
    """Skipping is for what cannot run here; every skip gives its reason."""
    skipped = [b.where for path in FILES for b in blocks(path) if b.skip]
    assert len(skipped) <= 3, skipped


@pytest.mark.parametrize("command", QUICK_START)
def test_quick_start_install_steps(command):
    """The README's Quick start holds exactly the two commands, verbatim; installing is CI's job."""
    readme = ROOT / "README.md"
    heading = readme.read_text(encoding="utf-8").splitlines().index("## Quick start") + 1
    quick = [c for b in blocks(readme) if b.kind == "console" and b.line > heading
             for c, _, _ in commands(b)][:2]
    assert quick == list(QUICK_START)
    pytest.skip("installs the package, which CI does before running the tests "
                "(the check after && runs in test_every_code_block_runs[README.md])"
                if QUICK_START[command] else
                "installs the test extras and runs this suite: CI's own job, not repeated from inside it")


def test_the_tester_finds_blocks(tmp_path):
    """The parser itself: kinds, no-run reasons, commands, expected output and exit statuses."""
    page = tmp_path / "page.md"
    page.write_text("x\n\n```python\na = 1\n```\n<!-- no-run: too slow -->\n```console\n"
                    "$ false  # exit 1\n$ echo hi\nhi\n```\n```\nplain\n```\n")
    first, second, third = blocks(page)
    assert (first.kind, first.line, first.text, first.skip) == ("python", 3, "a = 1\n", None)
    assert (second.kind, second.skip) == ("console", "too slow")
    assert commands(second) == [("false  # exit 1", 1, []), ("echo hi", 0, ["hi"])]
    assert third.kind == ""
