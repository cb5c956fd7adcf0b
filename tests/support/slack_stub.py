"""A Slack incoming-webhook stand-in: a real HTTP server on 127.0.0.1 answering from a script."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.net import LOOPBACK


class SlackStub:
    """A webhook endpoint answering from a script: "200", ("429", "7"), "500", "400", "hang"."""

    def __init__(self) -> None:
        self.script: deque[Any] = deque()
        self.default: Any = "200"
        # Optional: body -> Slack's error name when Slack would refuse it (answered 400), e.g.
        # tests.support.slack_limits.slack_refusal; checked before the script.
        self.check: Callable[[dict[str, Any]], str | None] | None = None
        self.bodies: list[dict[str, Any]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub._lock:
                    stub.bodies.append(body)
                    behaviour = stub.script.popleft() if stub.script else stub.default
                refusal = stub.check(body) if stub.check is not None else None
                if refusal is not None:
                    behaviour = ("400", refusal)
                if behaviour == "hang":
                    stub.release.wait(10)
                    return
                status, headers, text = 200, {}, "ok"
                if isinstance(behaviour, tuple) and behaviour[0] == "429":
                    status, headers, text = 429, {"Retry-After": behaviour[1]}, "rate_limited"
                elif behaviour == "500":
                    status, text = 500, "internal_error"
                elif behaviour == "400":
                    status, text = 400, "invalid_payload"
                elif isinstance(behaviour, tuple) and behaviour[0] == "400":
                    status, text = 400, behaviour[1]
                payload = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        port = self.server.server_address[1]
        self.url = f"http://{LOOPBACK}:{port}/services/T00000000/B00000000/FAKEwebhookTOKEN"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def texts(self) -> list[str]:
        return [str(body.get("text", "")) for body in self.bodies]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
