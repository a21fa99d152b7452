"""Helpers shared by the operator commands (validate, filter, export, stats, diff).

Not a command: ``register`` is a no-op because ``ipallow.cli`` registers every
module of this package.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
from typing import Any, Iterator

import ipallow
from ipallow import Allowlist, ParseError, Problem
from ipallow.commands import EXIT_OK
from ipallow.commands._progress import Progress
from ipallow.registry import is_registry_file, looks_like_csv

STDIN_NAME = "<stdin>"


def register(subparsers) -> None:  # noqa: ARG001 - see the module docstring
    """Nothing: this module is a helper, not a command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str, *, help: str,
               description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand parser with the shared look: examples and exit codes in the epilog."""
    return subparsers.add_parser(name, help=help, description=description, epilog=examples,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def stops_quietly_on_closed_output(handler):
    """Decorate a handler: when the reader of stdout goes away (``| head``), stop quietly.

    The reader chose to stop; that is not an error of ours.  Exit 0 with no
    message (Python would otherwise print a traceback or 'Broken pipe').  stdout
    is pointed at /dev/null so the interpreter's final flush cannot fail again.
    """
    @functools.wraps(handler)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_OK
    return wrapper


def display_name(path: str) -> str:
    return STDIN_NAME if path == "-" else path


def _read_head(path: str, size: int = 65536) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


@contextlib.contextmanager
def list_path(path: str) -> Iterator[str]:
    """A file name the loaders can read: ``path`` itself, or stdin copied to a temporary file.

    Problems found in a stdin copy are reported as ``<stdin>:line:col``.
    """
    if path != "-":
        yield path
        return
    raw = sys.stdin.buffer.read()
    head = raw[:65536].lstrip(b"\xef\xbb\xbf").lstrip()
    suffix = ".jsonl" if head.startswith(b"{") else ".csv" if looks_like_csv(head) else ".txt"
    with tempfile.TemporaryDirectory(prefix="ipallow-") as tmp:
        name = os.path.join(tmp, "stdin" + suffix)
        with open(name, "wb") as handle:
            handle.write(raw)
        try:
            yield name
        except ParseError as exc:
            raise ParseError([p._replace(path=STDIN_NAME) if p.path == name else p
                              for p in exc.problems]) from None


AT_HELP = ("for a registry (CSV with an id column, or JSON Lines): use the registrations that count "
           "at TIME (ISO 8601, no offset = UTC; default: now). A registration counts when its status "
           "is active and valid_from <= TIME < expires_at")


def parse_at_argument(text: str) -> float:
    """argparse type of --at: ISO 8601 (no offset = UTC) -> POSIX seconds; a usage error otherwise."""
    from ipallow.registry import _parse_time_text
    try:
        return _parse_time_text(text).timestamp()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Source:
    """A loaded list or registry, as the commands use it.

    ``allowlist``: what counts (for a registry: the registrations counting at
    ``at``); ``registry``: the full :class:`~ipallow.Registry`, or None for a
    plain list; ``name``: the path as given (``<stdin>`` for -).
    """

    def __init__(self, allowlist: Allowlist, registry: Any, name: str, at: float | None) -> None:
        self.allowlist = allowlist
        self.registry = registry
        self.name = name
        self.at = at


def load_source(path: str | None, *, at: float | None = None, label: str = "loading list") -> Source:
    """Load a plain list or a registry (see :func:`ipallow.registry.is_registry_file`); None is the bundled sample.

    A progress timer is shown on a terminal when loading takes over a second.
    """
    path = path or ipallow.SAMPLE_LIST
    with list_path(path) as name, Progress(label):
        if is_registry_file(name, _read_head(name)):
            from ipallow.registry import load_registry
            registry = load_registry(name)
            allowlist = Allowlist.from_registry(registry, at=at)
            return Source(allowlist, registry, display_name(path), at)
        # A registry's snapshot answers for `at` (or now), re-evaluated if need be.
        from ipallow.commands._lifecycle import at_instant
        allowlist = at_instant(Allowlist.from_file(name), at, display_name(path))
        return Source(allowlist, getattr(allowlist, "_registry", None), display_name(path), at)


def load_allowlist(path: str | None, *, at: float | None = None, label: str = "loading list") -> Allowlist:
    """The allowlist of :func:`load_source` (what counts)."""
    return load_source(path, at=at, label=label).allowlist


def print_json(obj: Any, stream=None) -> None:
    print(json.dumps(obj, default=str, ensure_ascii=False), file=stream or sys.stdout)


def problem_json(problem: Problem, **extra: Any) -> dict[str, Any]:
    return {"path": problem.path, "line": problem.line, "column": problem.column,
            "message": problem.message, **extra}


@contextlib.contextmanager
def output_file(path: str | None, *, binary: bool = False) -> Iterator[Any]:
    """stdout, or ``path`` written atomically (a temporary file renamed over it on success).

    A failed run never leaves a half-written file where a loader (nft, ipset, a
    cron job) could pick it up.
    """
    if path is None or path == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ipallow-", dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as handle:
            yield handle
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else (plural_form or noun + 's')}"
