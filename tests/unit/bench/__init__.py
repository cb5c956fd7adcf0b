"""The benchmarks' helpers: figures, wrk's report, the table."""
