"""The ``ipallow`` command: argument parsing and dispatch only.

Each subcommand lives in ``ipallow/commands/<name>.py``.  Exit codes (every
command): 0 ok / all allowed, 1 a negative verdict (a denied address, a
validation error), 2 usage, input or I/O error.
"""

from __future__ import annotations

import gc
import os
import sys

import ipallow
from ipallow import commands
from ipallow.errors import ParseError, SnapshotError
from ipallow.commands import EXIT_ERROR, LIST_ENV, UsageError

TYPE_CHECKING = False           # typing's import is 2 ms of a start-up: only type checkers read this
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

#: Commands of a module named otherwise (the rest: one module each, named as the command).
MODULE_OF = {"merge": "setops", "common": "setops", "except": "setops"}


def command_names() -> list[str]:
    """Every subcommand: one module each in ipallow/commands (helpers start with '_'), except the
    commands of MODULE_OF, which share a module.

    Read from the directory: pkgutil.iter_modules would cost a start-up its import of inspect.
    """
    modules = set()
    for folder in commands.__path__:
        for entry in os.scandir(folder):
            stem, dot, suffix = entry.name.partition(".")
            if dot and suffix == "py" and stem.isidentifier() and not stem.startswith("_"):
                modules.add(stem)
    return sorted((modules - set(MODULE_OF.values())) | set(MODULE_OF))


def build_parser(only: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with every subcommand or ``only`` those (each one's module is imported)."""
    import argparse
    parser = argparse.ArgumentParser(
        prog="ipallow",
        description="Is this IP address inside a registered range, and which registration covers it?",
        epilog="exit status: 0 ok, 1 negative verdict (denied / invalid), 2 usage or I/O error. "
               "'ipallow COMMAND --help' shows examples.")
    parser.add_argument("--version", action="version", version=f"ipallow {ipallow.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in dict.fromkeys(MODULE_OF.get(name, name) for name in (command_names() if only is None else only)):
        ipallow._import_module(f"ipallow.commands.{module}").register(subparsers)
    return parser


def _commands_needed(argv: Sequence[str]) -> list[str] | None:
    """Which command modules parsing ``argv`` needs: a script calling `ipallow check` per
    address should not pay for importing every command (and numpy) to print a version."""
    if list(argv) == ["--version"]:
        return []
    for arg in argv:
        if arg.startswith("-"):
            if arg in ("-h", "--help"):
                return None          # the top-level help lists every command
            continue
        return [arg] if arg in command_names() else None
    return None


#: The commands whose module reads its commonest command lines without argparse.
QUICK_COMMANDS = ("export",)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The parsed command line.

    A command module may read its commonest forms itself (``quick_arguments(argv)``, None
    for any other form): argparse's import and first use (gettext, locale, shutil) cost
    ~9 ms, a third of an ``ipallow export`` of 100k CIDRs.  Whatever it does not take,
    argparse parses (and reports), so the two never disagree about what a command line
    means; tests hold every form a module reads to argparse's answer.
    """
    if argv and argv[0] in QUICK_COMMANDS:
        args = ipallow._import_module(f"ipallow.commands.{argv[0]}").quick_arguments(argv[1:])
        if args is not None:
            return args
    return build_parser(_commands_needed(argv)).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run(parse_arguments(argv))


def run(args: argparse.Namespace) -> int:
    """Run the parsed command: its exit status, its errors said on stderr."""
    try:
        return args.handler(args)
    except (ParseError, SnapshotError, UsageError) as exc:
        print(f"ipallow {args.command}: {exc}", file=sys.stderr)
    except OSError as exc:
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        if where and exc.filename == getattr(args, "list_from_env", None):
            where += f" (named by {LIST_ENV})"      # from cron nothing else shows where it came from
        print(f"ipallow {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"ipallow {args.command}: interrupted", file=sys.stderr)
    return EXIT_ERROR


def console_main() -> int:
    """The ``ipallow`` executable: :func:`main` in a process of its own."""
    # numpy's OpenBLAS starts a thread per core when numpy is imported, and each spins a
    # while waiting for work; no command does linear algebra.  One thread saves ~0.1 s of
    # CPU a command (0.34 -> 0.21 s for a small filter).  The user's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # Reading the command line imports the command's modules: thousands of objects that live
    # until exit, over which the cyclic collector ran pass after pass (~2 ms, a tenth of an
    # `ipallow export` of 100k CIDRs).  No collection until they are all made; then they are
    # frozen (left out of every later pass) and the collector runs as usual for the work.
    gc.disable()
    try:
        args = parse_arguments(sys.argv[1:])
    finally:
        gc.freeze()
        gc.enable()
    status = run(args)
    # The interpreter's exit runs full garbage collections over every object still alive:
    # numpy's modules alone made that ~40 ms of every command's exit (a filter of 1M lines:
    # 45-65 ms of its 0.4 s).  Frozen objects are left out of those collections; the module
    # teardown, the flush of the standard streams and atexit handlers run as before.  What
    # it gives up: objects in reference cycles are not finalized at exit (the kernel drops
    # leases, mappings and descriptors anyway; the commands close their output files).
    gc.freeze()
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console_main())
