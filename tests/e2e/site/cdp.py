"""Drive headless Chromium over the DevTools protocol: load a page, collect what went wrong.

Only what the browser test needs: launch with a throwaway profile, open the page target's
websocket, enable the Page/Runtime/Log domains, navigate, wait for ``load``, then report
console errors, uncaught exceptions and log entries at level error (Chromium reports
Content-Security-Policy violations there, e.g. "Refused to apply inline style ...").
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1024,768",
)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class PageReport:
    """What loading one page produced."""

    url: str
    problems: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    h1: str | None = None
    h1_color: str | None = None
    stylesheets_applied: int = 0


class Chromium:
    """A headless Chromium with one page target, as a context manager."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(
            prefix="spotops-chromium-", ignore_cleanup_errors=True
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        profile = Path(self._profile.name)
        self._process = subprocess.Popen(
            [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the helpers stop with it
        )
        try:
            port = self._devtools_port(profile / "DevToolsActivePort")
            with _NO_PROXY.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                targets = json.load(response)
            page = next(t for t in targets if t["type"] == "page")
            self._ws = self._stack.enter_context(
                connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20, proxy=None)
            )
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        if self._process is not None:
            self._signal_group(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._process.wait(timeout=10)
        self._profile.cleanup()

    def _signal_group(self, signum: int) -> None:
        """Signal the process group chromium leads (we started it with its own session)."""
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _devtools_port(self, marker: Path) -> int:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._process.returncode}")
            if marker.exists() and (text := marker.read_text().strip()):
                return int(text.splitlines()[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a DevTools method; keep the events that arrive meanwhile."""
        assert self._ws is not None
        self._next_id += 1
        call_id = self._next_id
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self._ws.recv(timeout=self.timeout))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for_event(self, method: str) -> dict[str, Any]:
        assert self._ws is not None
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self._ws.recv(timeout=self.timeout))
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(f"no {method} within {self.timeout}s")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def load(self, url: str) -> PageReport:
        """Navigate, wait for ``load``, and report problems plus a few rendering facts."""
        self.events.clear()
        navigation = self.send("Page.navigate", {"url": url})
        if navigation.get("errorText"):
            raise RuntimeError(f"navigation failed: {navigation['errorText']}")
        self.wait_for_event("Page.loadEventFired")
        report = PageReport(url=url)
        report.h1 = self.evaluate("document.querySelector('h1')?.textContent ?? null")
        report.h1_color = self.evaluate(
            "(() => { const h = document.querySelector('h1');"
            " return h ? getComputedStyle(h).color : null; })()"
        )
        report.stylesheets_applied = int(self.evaluate("document.styleSheets.length") or 0)
        # One round trip more, so log entries raised while loading have all arrived.
        self.evaluate("1")
        for problem in _problems(self.events):
            report.problems.append(problem)
            if "Content Security Policy" in problem:
                report.csp_violations.append(problem)
        return report

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


def _problems(events: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            found.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append("exception: " + str(details.get("text", details)))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            found.append(
                f"log[{entry.get('source')}]: {entry.get('text')} ({entry.get('url', '')})"
            )
    return found
