"""What one simulated visitor does: mostly the home page, sometimes the version document, a
monitor's health check, now and then a page that does not exist (a 404 is the right answer
there, not an error). Think time between requests, as people and monitors have.

Run by ``python -m loadtest`` (``make loadtest``), which passes the host and the numbers.
"""

from __future__ import annotations

from locust import HttpUser, between, task

MISSING_PAGE = "/no-such-page"


class Visitor(HttpUser):
    """One visitor; the weights make the mix: 60% home, 20% health, 10% version, 10% 404."""

    wait_time = between(0.5, 2.5)

    @task(6)
    def home(self) -> None:
        self.client.get("/", name="/")

    @task(2)
    def healthz(self) -> None:
        self.client.get("/healthz", name="/healthz")

    @task(1)
    def version(self) -> None:
        self.client.get("/version", name="/version")

    @task(1)
    def missing_page(self) -> None:
        with self.client.get(MISSING_PAGE, name="404", catch_response=True) as response:
            if response.status_code == 404:
                response.success()
            else:
                response.failure(f"expected 404, got {response.status_code}")
