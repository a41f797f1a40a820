"""A small driver for headless Chromium over the DevTools protocol, for tests that use a web page as a
user would: open it, click on what is written on it, wait for text, take a screenshot.

    with open_browser() as browser:
        browser.goto("http://127.0.0.1:5000/")
        browser.click_text("Experiments")
        browser.wait_for_text("table2", timeout=30)
        browser.screenshot(tmp_path / "page.png")

``--dump-dom`` cannot click; this talks to the browser's page over a websocket (``websocket-client``, the
``test`` extra). :data:`SKIP_REASON` says why a test cannot drive a browser here (no chromium, no
websocket client), or is None.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    import websocket
except ImportError:  # the test extra is not installed
    websocket = None

SKIP_REASON = ("needs Debian's chromium (apt-get install chromium; .ci/run installs it as root)" if CHROMIUM is None
               else "needs websocket-client (pip install -e '.[test]')" if websocket is None else None)


class BrowserError(AssertionError):
    """The page did not show what was waited for (the message says what it showed instead)."""


class Browser:
    """One headless Chromium with one page; use :func:`open_browser`."""

    def __init__(self, width: int = 1600, height: int = 1000) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="cdp-", ignore_cleanup_errors=True)
        self._process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
             f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._next_id = 0
        try:
            port = self._port(Path(self._profile.name) / "DevToolsActivePort")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                pages = [t for t in json.load(answer) if t["type"] == "page"]
            self._ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60,
                                                   suppress_origin=True)
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.close()
            raise

    def _port(self, active_port: Path, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self._process.returncode}")
            try:
                return int(active_port.read_text().split()[0])
            except (OSError, IndexError, ValueError):
                time.sleep(0.1)
        raise RuntimeError(f"chromium wrote no {active_port.name} within {timeout} s")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails'].get('text')} "
                               f"{result['exceptionDetails'].get('exception', {}).get('description', '')}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        """Open ``url`` as if typed into the address bar."""
        self.call("Page.navigate", url=url)
        self.wait_for(lambda: self.evaluate("document.readyState") == "complete", 30, f"{url} to load")

    def url(self) -> str:
        return self.evaluate("location.href")

    def text(self) -> str:
        """What the page shows, as text."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for(self, condition: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"waited {timeout} s for {what}; the page at {self.url()} shows:\n"
                                   f"{self.text()[:1500]}")
            time.sleep(0.25)

    def wait_for_text(self, text: str, timeout: float = 30) -> None:
        self.wait_for(lambda: text in self.text(), timeout, repr(text))

    def click_text(self, text: str, timeout: float = 30, exact: bool = True, within: str = "body") -> None:
        """Click, with the mouse, the innermost visible element whose text is ``text`` (or contains it when not
        ``exact``), among the elements that CSS selector ``within`` matches and their descendants (the first in
        page order), waiting for one to appear."""
        finder = f"""(() => {{
            const want = {json.dumps(text)}, exact = {json.dumps(exact)};
            const roots = [...document.querySelectorAll({json.dumps(within)})];
            const all = new Set(roots.flatMap(root => [root, ...root.querySelectorAll('*')]));
            const hits = [...all].filter(el => {{
                const t = (el.innerText || '').trim();
                if (!(exact ? t === want : t.includes(want))) return false;
                const r = el.getBoundingClientRect();
                return r.width > 0 && r.height > 0;
            }});
            const inner = hits.filter(el => !hits.some(other => other !== el && el.contains(other)));
            if (!inner.length) return null;
            inner[0].scrollIntoView({{block: 'center'}});
            const r = inner[0].getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        }})()"""
        x, y = self.wait_for(lambda: self.evaluate(finder), timeout, f"something to click reading {text!r}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: str | Path, clip: tuple[int, int, int, int] | None = None) -> Path:
        """A PNG of the viewport, or of the ``(x, y, width, height)`` part of the page."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = dict(zip(("x", "y", "width", "height"), clip), scale=1)
        path = Path(path)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "_ws", None) is not None:
                self._ws.close()
        finally:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=20)
            self._profile.cleanup()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_browser(width: int = 1600, height: int = 1000) -> Browser:
    """A fresh headless Chromium (its own empty profile: no stored preferences), as a context manager."""
    if SKIP_REASON:
        raise RuntimeError(SKIP_REASON)
    return Browser(width, height)
