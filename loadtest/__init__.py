"""Load tests with Locust, headless: ``python -m loadtest`` (``make loadtest``).

``locustfile.py`` is the visitor mix, ``target.py`` decides whether a URL may be loaded
without asking, ``summary.py`` reads the results back and checks the thresholds.
"""
