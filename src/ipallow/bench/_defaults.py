"""The run's defaults and limits (no numpy here: the command's --help quotes them)."""

DEFAULT_QUERIES = 100_000
DEFAULT_SECONDS = 8.0
LATENCY_BATCH = 16          # calls timed between two perf_counter_ns() reads
MAX_EXAMPLES = 1000         # disagreeing queries kept per peer and family (the count is exact)
