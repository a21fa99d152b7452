"""Reading what a child process wrote to a pseudo-terminal (the progress-line tests share it)."""

from __future__ import annotations

import os


def drain(master: int) -> bytes:
    """Everything written to the terminal whose master end is ``master``, until the child closes it."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:          # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
