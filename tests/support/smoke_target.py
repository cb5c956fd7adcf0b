"""A candidate revision stand-in for the deployment hook: a real HTTP server on 127.0.0.1.

Each path answers from a script ("ok", "500", "503-then-ok", "hang", "redirect", "not-json");
only requests carrying the test header reach the "candidate" (others get 404, as the
production target would not be under test). Records what it was asked.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.net import LOOPBACK

HEADER, VALUE = "X-Spotops-Test-Traffic", "dev"


class SmokeTarget:
    def __init__(self) -> None:
        self.behaviour: dict[str, str] = {}
        self.seen: list[tuple[str, str | None]] = []
        # What ``/version`` answers: the build facts of the revision behind the test header.
        self.version: dict[str, Any] = {"git_commit": "abc1234", "version": "1.2.3"}
        self.release = threading.Event()
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with target._lock:
                    target.seen.append((self.path, self.headers.get(HEADER)))
                    tries = sum(1 for path, _ in target.seen if path == self.path)
                behaviour = target.behaviour.get(self.path, "ok")
                if self.headers.get(HEADER) != VALUE:
                    behaviour = "404"
                if behaviour == "hang":
                    target.release.wait(30)
                    return
                if behaviour == "503-then-ok":
                    behaviour = "503" if tries == 1 else "ok"
                status, body, headers = 200, b"<html>ok</html>", {}
                if self.path == "/version" and behaviour == "ok":
                    body = json.dumps(target.version).encode()
                elif behaviour == "not-json":
                    body = b"<html>version</html>"
                elif behaviour == "redirect":
                    status, headers = 301, {"Location": "https://example.com/"}
                elif behaviour.isdigit():
                    status, body = int(behaviour), b"no"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def hook_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The documented hook event, pointed at this server."""
        event["hookDetails"] = {"baseUrl": self.url, "testHeader": HEADER, "testHeaderValue": VALUE}
        return event

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
