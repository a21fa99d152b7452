"""The background thread of a live list: one round, then sleep until the round says or a wake-up.

It holds its owner only through a weak reference between rounds, so an
abandoned live list is freed by reference counting and its thread ends; a
finalizer stops it too.  What a round does (and how long to sleep after it)
is the owner's business, so this module knows no list, file or clock.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable


def start(owner: Any, one_round: Callable[[Any], float], stop: threading.Event, wake: threading.Event,
          name: str) -> threading.Thread:
    """Start a daemon thread calling ``one_round(owner)`` until ``stop`` is set or ``owner`` is gone.

    ``one_round`` returns the seconds to wait before the next round; setting
    ``wake`` ends the wait early.
    """
    thread = threading.Thread(target=_run, args=(weakref.ref(owner), one_round, stop, wake),
                              name=name, daemon=True)
    weakref.finalize(owner, _stop_thread, stop, wake)
    thread.start()
    return thread


def _stop_thread(stop: threading.Event, wake: threading.Event) -> None:
    stop.set()
    wake.set()


def _run(ref: "weakref.ref[Any]", one_round: Callable[[Any], float], stop: threading.Event,
         wake: threading.Event) -> None:
    while not stop.is_set():
        owner = ref()
        if owner is None:
            return
        wake.clear()
        timeout = one_round(owner)
        del owner
        wake.wait(timeout)
