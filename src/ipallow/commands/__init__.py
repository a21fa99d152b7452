"""One module per ``ipallow`` subcommand.

Each module defines ``register(subparsers)``, which adds its parser and sets
``handler`` (a function of the parsed arguments returning the exit code).
``ipallow.cli`` discovers the modules here, so adding a command is adding a file.
"""

EXIT_OK, EXIT_NEGATIVE, EXIT_ERROR = 0, 1, 2

#: The environment variable naming the list of check, filter and bench when --list is not given.
LIST_ENV = "IPALLOW_LIST"


class UsageError(Exception):
    """A command line that cannot be run as given (exit 2; the message says what to pass)."""
