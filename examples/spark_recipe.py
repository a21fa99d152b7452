"""Spark recipe: classify an address column with a ``pandas_udf``, the snapshot broadcast once.

    spark-submit examples/spark_recipe.py flows.parquet src_addr registry.ipallow classified.parquet

(``registry.ipallow`` from ``ipallow compile`` or ``Allowlist.save``; ipallow must be
installed on every executor.)  The pieces, to copy into your own job:

* ``broadcast_snapshot`` reads the snapshot file once on the driver and
  broadcasts its bytes with a token; Spark ships a broadcast to each executor
  once, not with every task.
* ``_allowlist`` turns the broadcast into an :class:`ipallow.Allowlist` once per
  Python worker process (``ipallow.allowlist.loads`` serves straight from the
  bytes, nothing is rebuilt) and keeps it for the following batches; Python
  workers are reused between tasks (``spark.python.worker.reuse``, on by
  default).
* the ``pandas_udf`` gets Arrow batches as pandas Series and answers with
  ``ipallow.dataframe.match_codes`` (one C loop a batch), returning a struct of
  ``allowed``, ``registration`` (-1 when not allowed) and ``valid`` (False for
  a null or unparseable address) -- the same columns and meaning as
  ``ipallow.dataframe.classify``.

Alternative to the broadcast when the snapshot is on storage every executor
reads (or distributed with ``SparkContext.addFile`` and found with
``SparkFiles.get``): pass the *path* to ``ipallow.dataframe.match_codes``; each
Python worker process memory-maps it once and caches it.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

import ipallow
from ipallow.dataframe import match_codes
from ipallow.allowlist import loads

RESULT_SCHEMA = "allowed boolean, registration int, valid boolean"

_ALLOWLISTS: dict[str, ipallow.Allowlist] = {}     # per Python worker process: token -> Allowlist


def local_session(cores: int = 2, app: str = "ipallow-recipe"):
    """A local SparkSession with Arrow transfers on (for trying the recipe and for the tests)."""
    from pyspark.sql import SparkSession
    return (SparkSession.builder.master(f"local[{cores}]").appName(app)
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .getOrCreate())


def broadcast_snapshot(spark, snapshot_path: str | Path):
    """Broadcast ``(token, snapshot bytes)``; the token names this snapshot in the worker caches."""
    data = Path(snapshot_path).read_bytes()
    loads(data, str(snapshot_path))                   # validate on the driver: fail before the job
    return spark.sparkContext.broadcast((uuid.uuid4().hex, data))


def _allowlist(broadcast) -> ipallow.Allowlist:
    token, data = broadcast.value
    al = _ALLOWLISTS.get(token)
    if al is None:
        al = _ALLOWLISTS[token] = loads(data, f"<broadcast {token}>")
    return al


def classify_udf(broadcast):
    """The pandas_udf: address Series -> DataFrame(allowed, registration, valid)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf(RESULT_SCHEMA)
    def classify_addresses(addresses: pd.Series) -> pd.DataFrame:
        codes = match_codes(addresses, _allowlist(broadcast))
        return pd.DataFrame({"allowed": codes >= 0,
                             "registration": np.maximum(codes, -1).astype(np.int32),
                             "valid": codes >= -1})

    return classify_addresses


def classify_spark(spark, sdf, column: str, snapshot_path: str | Path):
    """``sdf`` with ``allowed``, ``registration`` and ``valid`` columns for its address ``column``."""
    udf = classify_udf(broadcast_snapshot(spark, snapshot_path))
    return (sdf.withColumn("_ipallow", udf(sdf[column]))
               .select("*", "_ipallow.allowed", "_ipallow.registration", "_ipallow.valid")
               .drop("_ipallow"))


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    source, column, snapshot, target = argv
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.appName("ipallow-classify").getOrCreate()
    try:
        flows = spark.read.parquet(source)
        classified = classify_spark(spark, flows, column, snapshot)
        classified.write.mode("overwrite").parquet(target)
        classified.groupBy("allowed", "valid").count().show()
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
