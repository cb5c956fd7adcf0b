"""make loadtest: which URLs may be loaded, how results are read and judged."""
