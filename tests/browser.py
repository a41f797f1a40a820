"""A small driver for headless Chromium over the Chrome DevTools protocol, for tests (and the docs' screenshot
scripts) that use a web page as a user would: open it, click on what is written on it, wait for text, read the
text of the page and of its frames, take a screenshot.

    with Browser() as browser:
        browser.goto("http://127.0.0.1:5000/")
        browser.click_text("Experiments")
        browser.wait_for_text("table2", timeout=30)
        browser.screenshot(tmp_path / "page.png")

``--dump-dom`` cannot click. Chromium is driven over ``--remote-debugging-pipe`` (commands on its fd 3,
answers on fd 4, NUL-separated JSON), so no port and no websocket library are needed. :func:`find_chromium`
looks for the browser (``$CHROMIUM`` first); :data:`SKIP_REASON` says why a test cannot drive one here, or is
None. tests/report_browser.py adds what is particular to the workflow's report.html.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The browser to drive: ``$CHROMIUM`` when set, else the first of :data:`CHROMIUM_NAMES` on PATH."""
    for name in (os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


SKIP_REASON = (
    None
    if find_chromium() is not None
    else "needs Debian's chromium (apt-get install chromium; .ci/run installs it as root) or $CHROMIUM"
)


class BrowserError(RuntimeError):
    """Chromium failed, a script in the page threw, or the page did not show what was waited for (the message
    says what it showed instead)."""


class Browser:
    """One headless Chromium with one page and a fresh, empty profile (no stored preferences), attached over
    the debugging pipe; a context manager that closes the browser."""

    def __init__(self, width: int = 1600, height: int = 1000, chromium: str | None = None) -> None:
        chromium = chromium or find_chromium()
        if chromium is None:
            raise BrowserError(SKIP_REASON)
        self._profile = tempfile.TemporaryDirectory(prefix="browser-", ignore_cleanup_errors=True)
        self._log = open(Path(self._profile.name) / "chromium.log", "w+b")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            "--headless=new",
            "--no-sandbox",
            "--remote-debugging-pipe",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--mute-audio",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        # the pipe ends become the browser's fd 3 (commands) and fd 4 (answers); bash, as dash redirects
        # one-digit fds only
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', chromium, *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.events: list[dict[str, Any]] = []
        """Protocol events that arrived while waiting for an answer (cleared by :meth:`goto`)."""
        try:
            try:
                targets = self.send("Target.getTargets", session=False)["targetInfos"]
            except (BrowserError, OSError) as err:
                self._log.seek(0)
                raise BrowserError(
                    f"chromium did not start ({err}): {self._log.read()[-2000:].decode(errors='replace')}"
                ) from err
            page = next((t for t in targets if t["type"] == "page"), None)
            target = (
                page["targetId"]
                if page
                else self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            )
            self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
                "sessionId"
            ]
            self.send("Page.enable")
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ protocol

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed the debugging pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: bool = True, timeout: float = 60
    ) -> dict[str, Any]:
        """One DevTools command, to the page (``session``) or to the browser; its result. Events that arrive
        meanwhile are kept in :attr:`events`."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") != self._next_id:
                if "method" in answer:
                    self.events.append(answer)
                continue
            if "error" in answer:
                raise BrowserError(f"{method}: {answer['error']}")
            return answer.get("result", {})

    # ------------------------------------------------------------ page

    def goto(self, url: str, timeout: float = 60) -> None:
        """Open ``url`` as if typed into the address bar; return once it has loaded (at once when only the
        ``#fragment`` changed: a single-page app's route, nothing to load)."""
        self.events.clear()
        navigation = self.send("Page.navigate", {"url": url})
        if navigation.get("errorText"):
            raise BrowserError(f"{url}: {navigation['errorText']}")
        if "loaderId" not in navigation:  # a same-document navigation
            return
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            try:
                self.events.append(self._read_message(deadline))
            except BrowserError as err:
                raise BrowserError(f"{url} did not load within {timeout} s ({err})") from err

    def evaluate(self, expression: str, context: int | None = None) -> Any:
        """The value of a JavaScript expression (awaited when it is a promise), in the page or in the execution
        ``context`` given."""
        params: dict[str, Any] = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        result = self.send("Runtime.evaluate", params)
        if "exceptionDetails" in result:
            raise BrowserError(
                f"{expression[:80]}: {result['exceptionDetails'].get('text')} "
                f"{result['exceptionDetails'].get('exception', {}).get('description', '')}"
            )
        return result["result"].get("value")

    def url(self) -> str:
        return self.evaluate("location.href")

    def text(self) -> str:
        """What the page shows, as text."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for(self, condition: str | Callable[[], Any], timeout: float = 30, what: str | None = None) -> Any:
        """The first true value of ``condition`` (a JavaScript expression, or a Python callable), polled until
        ``timeout`` seconds have passed; a script that throws (the page is still loading) counts as false."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(condition) if isinstance(condition, str) else condition()
            except BrowserError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                try:
                    shown = f"the page at {self.url()} shows:\n{self.text()[:1500]}"
                except BrowserError as err:
                    shown = f"the page cannot be read ({err})"
                raise BrowserError(f"waited {timeout} s for {what or condition}; {shown}")
            time.sleep(0.25)

    def wait_for_text(self, text: str, timeout: float = 30) -> None:
        """Wait until the page shows ``text``."""
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
        x, y = self.wait_for(finder, timeout, f"something to click reading {text!r} in {within}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def frame_texts(self) -> list[str]:
        """The text of every (i)frame below the page, each read in an isolated world of its own frame (so
        that a frame from another origin, such as a ``data:`` URL, can be read)."""
        tree = self.send("Page.getFrameTree")["frameTree"]
        texts = []
        stack = list(tree.get("childFrames", []))
        while stack:
            node = stack.pop()
            stack += node.get("childFrames", [])
            world = self.send("Page.createIsolatedWorld", {"frameId": node["frame"]["id"]})["executionContextId"]
            texts.append(self.evaluate("document.body ? document.body.innerText : ''", context=world) or "")
        return texts

    def wait_for_frame_text(self, needle: str, timeout: float = 30) -> str:
        """Wait until a frame shows ``needle``; that frame's text."""
        return self.wait_for(
            lambda: next((t for t in self.frame_texts() if needle in t), None), timeout, f"a frame showing {needle!r}"
        )

    def screenshot(
        self, path: str | Path, clip: tuple[int, int, int, int] | None = None, width: int | None = None
    ) -> Path:
        """A PNG of the viewport, or of its ``(x, y, width, height)`` part. With ``width``, scaled down to at
        most that many pixels across and reduced to 96 colours, as the docs' screenshots are (small files)."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            x, y, w, h = clip
            left, top = self.evaluate("[window.scrollX, window.scrollY]")  # the protocol's clip is on the page
            params["clip"] = {"x": left + x, "y": top + y, "width": w, "height": h, "scale": 1}
        png = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        path = Path(path)
        if width is None:
            path.write_bytes(png)
            return path
        from PIL import Image

        image = Image.open(io.BytesIO(png)).convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        image.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        return path

    # ------------------------------------------------------------ end

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self._log.close()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
