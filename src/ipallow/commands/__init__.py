"""One module per ``ipallow`` subcommand.

Each module defines ``register(subparsers)``, which adds its parser and sets
``handler`` (a function of the parsed arguments returning the exit code).
``ipallow.cli`` discovers the modules here, so adding a command is adding a file.
"""

EXIT_OK, EXIT_NEGATIVE, EXIT_ERROR = 0, 1, 2
