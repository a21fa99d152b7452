"""Columns in, columns out: classify the address columns of Arrow, pandas, numpy and Dask data.

Flow logs (NetFlow / IPFIX exports, connection logs) arrive as columns of address
text.  The functions here hand those columns to the compiled core without making
a Python object per row wherever the column's memory allows it:

=================================================  ====================================
column                                             how it is read
=================================================  ====================================
``pyarrow`` ``string`` / ``large_string`` /        the offsets and data buffers, in
``binary`` / ``large_binary`` (Array or            place (GIL released), chunk by chunk
ChunkedArray, any offset / slice)
``string_view`` / ``binary_view``                  cast to ``large_string`` first (a copy)
dictionary-encoded strings (Arrow dictionary,      the dictionary once, then a numpy
pandas ``category``)                               ``take`` by the indices
pandas ``str`` / ``string[pyarrow]`` /             its Arrow chunks, in place
``ArrowDtype(pa.string())`` Series
pandas ``object`` / ``string[python]`` Series,     the existing ``str`` objects (C loop)
numpy ``object`` arrays, lists
numpy ``U`` / ``S`` arrays                         in place (``S`` is address *text* here)
integer columns (numpy, pandas incl. nullable      IPv4 addresses as unsigned 32-bit
``Int64``/``UInt32``, Arrow ints)                  integers
=================================================  ====================================

Rows that are not an address never become a silent wrong answer.  Every row is
one of: a registration's match, no match, **null** (None, NaN, ``pd.NA``, an Arrow
null) or **unparseable** (text the strict parser refuses, e.g. ``" 1.2.3.4"``,
``"1.2.3.256"``, ``"fe80::1%eth0"``, ``""``, or a value of no address type).  The
column functions return a ``valid`` mask next to the answer (False for null and
unparseable rows, whose answer is ``False`` / ``-1``); with ``strict=True`` they
raise :class:`BadRowError` naming the first bad row instead.  :func:`match_codes`
gives the four cases as one int32 code per row.

``classify(df, column, allowlist)`` adds ``allowed`` (bool), ``registration``
(int32 registration index, -1 when not allowed) and ``valid`` (bool) columns to a
pandas or Dask DataFrame.

Dask: the allowlist reaches each worker process **once**, never once per
partition (nor once per job).  Pass either

* an :class:`~ipallow.Allowlist` -- with a ``dask.distributed`` client,
  :func:`ship` installs it in every worker process as a worker plugin: pickled
  once here (as its snapshot bytes), unpickled once per worker process, kept
  there for any number of jobs, and installed by workers that join later before
  they run a task.  The task graph carries only a token.  The shipment is
  cached per (allowlist, client), so classifying again re-uses it;
  ``Shipment.release()`` (or dropping the allowlist) frees the workers' copies;
* or the path of a snapshot file (``allowlist.save(path)``) on storage every
  worker can read: each worker process memory-maps it once (pages shared by all
  processes of a machine) and caches it.  The plan records the snapshot's
  header checksum, so a file replaced after planning is refused rather than
  mixed in.  Best for very large lists or clusters (no copy goes through the
  scheduler), and the way for Dask's local ``processes`` scheduler, which
  would otherwise pickle the allowlist into every task.

Without a distributed client (Dask's default threaded or the synchronous
scheduler) the allowlist sits in the graph once and every thread shares it.

:func:`worker_stats` (e.g. ``client.run(ipallow.dataframe.worker_stats)``) shows,
per worker process, how many shipped allowlists arrived and how many snapshot
files were mapped.

pandas, pyarrow and dask are optional: each is imported only when a column or a
frame of its kind is handed over (``pip install 'ipallow[dataframe]'``).
"""


from ipallow._columns import NO_MATCH, NULL, UNPARSEABLE, BadRowError, ColumnMatch
from ipallow.dataframe._dask import SNAPSHOT_CACHE_SIZE, Shipment, installed, ship, worker_stats
from ipallow.dataframe._public import classify, contains_many, lookup_many, match_codes, registration_labels

__all__ = [
    "contains_many",
    "lookup_many",
    "match_codes",
    "classify",
    "ship",
    "Shipment",
    "installed",
    "registration_labels",
    "worker_stats",
    "ColumnMatch",
    "BadRowError",
    "NO_MATCH",
    "UNPARSEABLE",
    "NULL",
]

# Public classes report the package users import them from, not the private module.
for _public in (Shipment, ColumnMatch, BadRowError):
    _public.__module__ = __name__
del _public
