"""LiveAllowlist: follow a registry file (and the clock) without ever dropping or tearing a lookup.

How it stays correct while it changes (docs/live-reload.md has the whole story):

* **One reference.**  Every answer comes from one immutable
  :class:`~ipallow.Allowlist` reached through one attribute.  A reload
  parses and compiles the new list completely, off to the side, then
  replaces that attribute: a reader sees the old list or the new one, never
  a mixture, and never waits for a build.
* **The file, only when complete.**  A daemon thread polls the file's
  identity (device, inode, size, mtime and ctime in nanoseconds).  A changed
  file is read, and swapped in only once it is *complete*: either it stayed
  exactly the same (identity and content) across ``settle`` seconds, or it
  proves itself complete -- a compiled snapshot whose checksums all verify,
  or a file whose SHA-256 matches the checksum file ``<file>.sha256`` beside
  it.  A writer flushing a half-written export (even one that ends on a line
  boundary and so parses) is therefore never served, whether it writes in
  place, deletes and recreates, or renames.  Content identical to what was
  last read swaps nothing.  A file modified within the last two seconds is
  re-read on the next poll as well, because a timestamp tick can hide a
  same-size rewrite.
* **The clock.**  Each list knows the interval ``[since, until)`` between
  two lifecycle boundaries (``valid_from`` / ``expires_at`` of active
  records) in which it is right.  The thread compiles the *next* list ahead
  of time; a reader that finds the clock past ``until`` switches to the
  prebuilt next list itself, so an expiry takes effect at its instant, not a
  poll later.  If the next list is not ready (boundaries closer together
  than a build, a clock step), the reader keeps answering from the current
  list, counts it in :attr:`LiveAllowlist.stale_answers`, and wakes the
  thread: readers never build.
* **Failures.**  A parse error, a missing, unreadable, empty or truncated
  file, a checksum file that does not match, or a list that lost more than
  ``max_loss`` of its registrations keeps the old list serving, once the file
  has stayed that way for ``settle`` seconds (a file being written is not a
  failure): it sets :attr:`~LiveAllowlist.last_error`, counts in
  :attr:`~LiveAllowlist.failures` and ``consecutive_failures``, is logged on
  the ``ipallow.live`` logger, and is retried when the file changes again.

The package's modules, lowest first, each owning one part::

    _timed    a compiled list and the interval of time in which it is right
    _watch    following the file: identity, complete reads, checksum file, settle
    _poller   the background thread, holding the list only weakly
    _live     LiveAllowlist: answers, reload / check / close, failures, status
"""

from ipallow.live._watch import CHECKSUM_SUFFIX, ReloadRefused
from ipallow.live._live import LiveAllowlist

__all__ = ["LiveAllowlist", "ReloadRefused"]

# Public classes report the package users import them from (reprs, tracebacks, pickles), not
# the private module that defines them.
for _public in (LiveAllowlist, ReloadRefused):
    _public.__module__ = __name__
del _public
