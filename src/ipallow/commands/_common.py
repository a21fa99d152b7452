"""Helpers shared by the operator commands (validate, filter, export, stats, diff).

Not a command: ``register`` is a no-op because ``ipallow.cli`` registers every
module of this package.
"""

from __future__ import annotations

import os
import sys

import ipallow
from ipallow import _output
from ipallow.errors import Problem
from ipallow.commands import EXIT_OK, LIST_ENV, UsageError
from ipallow.commands._progress import Progress

# argparse and typing are imported where they are used, not here: `ipallow export` reads its
# common command lines without argparse (ipallow.cli.parse_arguments), and the two imports are
# ~11 ms of a start-up.  Type checkers read the block below.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ipallow.allowlist import Allowlist

STDIN_NAME = "<stdin>"


def register(subparsers) -> None:  # noqa: ARG001 - see the module docstring
    """Nothing: this module is a helper, not a command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str, *, help: str,
               description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand parser with the shared look: examples and exit codes in the epilog."""
    import argparse
    return subparsers.add_parser(name, help=help, description=description, epilog=examples,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)


def stops_quietly_on_closed_output(handler):
    """Decorate a handler: when the reader of stdout goes away (``| head``), stop quietly.

    The reader chose to stop; that is not an error of ours.  Exit 0 with no
    message (Python would otherwise print a traceback or 'Broken pipe').  stdout
    is pointed at /dev/null so the interpreter's final flush cannot fail again.
    """
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_OK
    # What functools.wraps copies, without importing functools (~0.5 ms of a start-up).
    for name in ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__"):
        setattr(wrapper, name, getattr(handler, name))
    wrapper.__dict__.update(handler.__dict__)
    wrapper.__wrapped__ = handler
    return wrapper


def display_name(path: str) -> str:
    return STDIN_NAME if path == "-" else path


AT_HELP = ("for a registry (CSV with an id column, or JSON Lines): use the registrations that count "
           "at TIME (ISO 8601, no offset = UTC; default: now). A registration counts when its status "
           "is active and valid_from <= TIME < expires_at")


def parse_at_argument(text: str) -> float:
    """argparse type of --at: ISO 8601 (no offset = UTC) -> POSIX seconds; a usage error otherwise."""
    import argparse
    from ipallow.registry import _parse_time_text
    try:
        return _parse_time_text(text).timestamp()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None



LIST_FORMAT_HELP = ("read the list as this format instead of recognising it: txt (one entry a line), "
                    "csv (a plain CSV list: every row counts), jsonl or registry-csv (a registry), "
                    "snapshot. Default: recognised by content (snapshot magic, a first '{', a CSV "
                    "header with an id or a cidr/network/ip column), then by name")


def add_list_format_argument(parser: argparse.ArgumentParser) -> None:
    from ipallow._formats import FORMATS
    parser.add_argument("--list-format", choices=FORMATS, metavar="FORMAT", help=LIST_FORMAT_HELP)


def add_list_arguments(parser: argparse.ArgumentParser, *, stdin: str = "- for stdin") -> None:
    """--list FILE | --sample, and --list-format, for the commands that ask questions of a list."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", metavar="FILE",
                       help=f"list (one entry a line, or CSV with a cidr column), registry (CSV with "
                            f"an id column, or JSON Lines) or snapshot; {stdin}. Default: "
                            f"${LIST_ENV}; without either the command stops (exit 2)")
    group.add_argument("--sample", action="store_true",
                       help="use the demo registry bundled with ipallow (documentation ranges plus "
                            "3,000 synthetic entries): for trying ipallow out, never for a decision")
    add_list_format_argument(parser)


def chosen_list(args: argparse.Namespace) -> str:
    """The list a command reads: --sample, else --list, else $IPALLOW_LIST, else a UsageError.

    Never the bundled sample unless asked for: a script that forgets its list
    must fail, not get plausible answers from the demo registry.
    """
    if getattr(args, "sample", False):
        return ipallow.SAMPLE_LIST
    if args.list is not None:
        return args.list
    from_env = os.environ.get(LIST_ENV, "")
    if from_env:
        args.list_from_env = from_env        # so that an error can say where the name came from
        return from_env
    raise UsageError(f"no list given: pass --list FILE (a list, registry or snapshot; - for stdin) "
                     f"or set {LIST_ENV}=FILE; --sample uses the bundled demo registry")


POSITIONAL_LIST_HELP = (f"list (one entry a line, or CSV with a cidr column), registry (CSV with an id "
                        f"column, or JSON Lines) or snapshot; - for stdin. Default: ${LIST_ENV}; "
                        f"without either the command stops (exit 2)")


def positional_list(args: argparse.Namespace, given: str | None, *,
                    what: str = "LIST (a list, registry or snapshot; - for stdin)") -> str:
    """The list of a command that names it as a positional: LIST, else $IPALLOW_LIST, else a UsageError.

    The same order as :func:`chosen_list`, for validate, stats, export, compile
    and info, so that one exported variable serves every command.
    """
    if given is not None:
        return given
    from_env = os.environ.get(LIST_ENV, "")
    if from_env:
        args.list_from_env = from_env        # so that an error can say where the name came from
        return from_env
    raise UsageError(f"no list given: pass {what} or set {LIST_ENV}=FILE")


class Source:
    """A loaded list or registry, as the commands use it.

    ``allowlist``: what counts (for a registry: the registrations counting at
    ``at``); ``registry``: the full :class:`~ipallow.Registry`, or None for a
    plain list or snapshot; ``name``: the path as given (``<stdin>`` for -);
    ``format``: as :func:`ipallow.loaders.detect_format` names it; ``raw``:
    the bytes read from stdin (None for a file).
    """

    def __init__(self, allowlist: Allowlist, registry: Any, name: str, at: float | None,
                 format: str = "txt", raw: bytes | None = None) -> None:
        self.allowlist = allowlist
        self._registry = registry
        self.name = name
        self.at = at
        self.format = format
        self.raw = raw

    @property
    def registry(self) -> Any:
        # A registry's snapshot carries its whole registry; decoding it (every record,
        # checked again) costs far more than answering a lookup, so only on demand.
        if self._registry is _IN_SNAPSHOT:
            self._registry = getattr(self.allowlist, "_registry", None)
        return self._registry


_IN_SNAPSHOT = object()      # Source's registry: the snapshot's own, decoded when first asked for


def load_source(path: str, *, list_format: str | None = None, at: float | None = None,
                strict: bool = True, label: str = "loading list") -> Source:
    """Load a list, registry or snapshot (``-``: stdin) with the one loader, :func:`ipallow.loaders.load`.

    A progress timer is shown on a terminal when loading takes over a second.
    """
    from ipallow import loaders
    raw = None
    with Progress(label):
        if path == "-":
            raw = sys.stdin.buffer.read()
            loaded = loaders.load_bytes(raw, STDIN_NAME, format=list_format, strict=strict)
        else:
            loaded = loaders.load(path, format=list_format, strict=strict)
        from ipallow.allowlist import Allowlist      # here: --help and --version need no numpy
        allowlist = Allowlist._from_loaded(loaded, at)
        registry = loaded.registry
        if loaded.format == "snapshot":
            # A registry's snapshot answers for `at` (or now), re-evaluated if need be.
            from ipallow.commands._lifecycle import at_instant
            allowlist = at_instant(allowlist, at, display_name(path))
            registry = _IN_SNAPSHOT
    return Source(allowlist, registry, display_name(path), at, loaded.format, raw)


def load_allowlist(path: str, *, list_format: str | None = None, at: float | None = None,
                   label: str = "loading list") -> Allowlist:
    """The allowlist of :func:`load_source` (what counts)."""
    return load_source(path, list_format=list_format, at=at, label=label).allowlist


def counting_text(source: Source) -> str:
    """What of a source counts, for messages: '2 registrations', or for a registry
    '0 of 3 registrations count at 2026-01-01T00:00:00Z (2 revoked, 1 expired)'."""
    n = len(source.allowlist)
    if source.registry is None:
        return plural(n, "registration")
    from collections import Counter
    from datetime import datetime, timezone
    from ipallow.registry import format_time, to_timestamp
    t = to_timestamp(source.at)
    when = "now" if source.at is None else f"at {format_time(datetime.fromtimestamp(t, timezone.utc))}"
    why = Counter(r.counts_at(t).code for r in source.registry)
    why.pop("active", None)
    detail = f" ({', '.join(f'{k:,} {c}'.replace('_', ' ') for c, k in why.most_common())})" if why else ""
    return f"{n:,} of {len(source.registry):,} registrations count {when}{detail}"


def empty_warning(source: Source) -> str | None:
    """None when something counts; else a sentence saying the list is empty and what that would do."""
    if len(source.allowlist):
        return None
    return (f"nothing to allow: {counting_text(source)}; an export of it would empty the live "
            f"set(s) and deny every address")


def print_json(obj: Any, stream=None) -> None:
    import json                 # here: 4-6 ms of every command's start-up, for --json only
    print(json.dumps(obj, default=str, ensure_ascii=False), file=stream or sys.stdout)


def problem_json(problem: Problem, **extra: Any) -> dict[str, Any]:
    return {"path": problem.path, "line": problem.line, "column": problem.column,
            "message": problem.message, **extra}


def check_output(path: str | None) -> None:
    """Before the work: raise the OSError writing ``path`` would raise (stdout: nothing to check)."""
    if path is not None and path != "-":
        _output.check_writable(path)


class _Stdout:
    """``with`` stdout (or its bytes under it): nothing to open, nothing to close."""

    def __init__(self, binary: bool) -> None:
        self._binary = binary

    def __enter__(self) -> Any:
        return sys.stdout.buffer if self._binary else sys.stdout

    def __exit__(self, exc_type, exc, traceback) -> bool:
        return False


def output_file(path: str | None, *, binary: bool = False) -> Any:
    """``with output_file(path) as out:`` stdout (``None`` or ``-``), else ``path`` written by the
    rules of :mod:`ipallow._output`.

    A regular file is replaced atomically (a failed run never leaves a
    half-written file where nft, ipset or a cron job could pick it up), a
    symlink's target is replaced, a FIFO or device is written through, a
    directory is an error.
    """
    if path is None or path == "-":
        return _Stdout(binary)
    return _output.open_output(path, binary=binary)


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else (plural_form or noun + 's')}"
