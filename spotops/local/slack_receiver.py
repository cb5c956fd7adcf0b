"""A Slack-compatible incoming webhook on 127.0.0.1 that prints each message readably.

For ``make demo``: the ops functions post Block Kit messages to it exactly as to Slack
(``spotops slack-webhook set`` stores its URL), and it shows what on-call would see: the
header, the facts, the runbook link.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"


def render(message: dict[str, Any]) -> list[str]:
    """The lines a person reads: header first, then each section, the runbook, the footer."""
    lines: list[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        text = (block.get("text") or {}).get("text", "")
        if kind == "header":
            lines.append(text)
        elif kind == "section" and text:
            lines.extend(f"  {line}" for line in text.splitlines())
        elif kind == "context":
            lines.extend(f"  ({e.get('text', '')})" for e in block.get("elements", []))
    return lines or [str(message.get("text", ""))]


class SlackReceiver:
    """The webhook server. ``url`` is its webhook URL; ``messages`` what it received."""

    def __init__(self, printer: Callable[[str], None] = print) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {"text": "(not JSON)"}
                with receiver._lock:
                    receiver.messages.append(body)
                    for line in render(body):
                        printer(f"  slack | {line}")
                payload = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        # Shaped like a real webhook URL; the token is a placeholder.
        self.url = f"http://{LOOPBACK}:{port}/services/T0DEMO/B0DEMO/local-demo"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def texts(self) -> list[str]:
        with self._lock:
            return [str(m.get("text", "")) for m in self.messages]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
