"""The ``ipallow`` command: argument parsing and dispatch only.

Each subcommand lives in ``ipallow/commands/<name>.py``.  Exit codes (every
command): 0 ok / all allowed, 1 a negative verdict (a denied address, a
validation error), 2 usage, input or I/O error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

import ipallow
from ipallow import ParseError, SnapshotError, commands
from ipallow.commands import EXIT_ERROR
from ipallow.commands._common import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipallow",
        description="Is this IP address inside a registered range, and which registration covers it?",
        epilog="exit status: 0 ok, 1 negative verdict (denied / invalid), 2 usage or I/O error. "
               "'ipallow COMMAND --help' shows examples.")
    parser.add_argument("--version", action="version", version=f"ipallow {ipallow.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"ipallow.commands.{module}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ParseError, SnapshotError, UsageError) as exc:
        print(f"ipallow {args.command}: {exc}", file=sys.stderr)
    except OSError as exc:
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"ipallow {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"ipallow {args.command}: interrupted", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
