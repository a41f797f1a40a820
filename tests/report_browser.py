"""A few lines of Chrome DevTools protocol for looking at the workflow's report.html in headless Chromium: open
it, click through its menu, read the text of the page and of the result it shows (an iframe), take screenshots.

Chromium is driven over ``--remote-debugging-pipe`` (commands on its fd 3, answers on fd 4, NUL-separated JSON),
so no port and no websocket library are needed. Used by tests/test_workflow.py, and as a script it takes the
screenshots of docs/tables.md::

    .venv/bin/python tests/report_browser.py results/smoke/report.html docs/img
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page, attached over the debugging pipe."""

    def __init__(self, width: int = 1600, height: int = 1000, chromium: str | None = None) -> None:
        chromium = chromium or find_chromium()
        if chromium is None:
            raise BrowserError("no chromium found (set CHROMIUM)")
        self._profile = tempfile.TemporaryDirectory(prefix="report-browser-")
        self._log = open(Path(self._profile.name) / "chromium.log", "w+b")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = ["--headless=new", "--no-sandbox", "--remote-debugging-pipe", "--disable-gpu", "--hide-scrollbars",
                "--no-first-run", "--mute-audio", f"--user-data-dir={self._profile.name}",
                f"--window-size={width},{height}", "about:blank"]
        # the pipe ends become the browser's fd 3 (commands) and fd 4 (answers); bash, as dash redirects one-digit fds only
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', chromium, *args],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        try:
            targets = self.send("Target.getTargets", session=False)["targetInfos"]
        except (BrowserError, OSError) as err:
            self._log.seek(0)
            raise BrowserError(f"chromium did not start ({err}): {self._log.read()[-2000:].decode(errors='replace')}")
        page = next((t for t in targets if t["type"] == "page"), None)
        target = page["targetId"] if page else self.send("Target.createTarget", {"url": "about:blank"},
                                                         session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

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

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = True,
             timeout: float = 30) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") != self._next_id:
                self.events.append(answer)
                continue
            if "error" in answer:
                raise BrowserError(f"{method}: {answer['error']}")
            return answer.get("result", {})

    # ------------------------------------------------------------ page

    def open(self, url: str, timeout: float = 60) -> None:
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression: str, context: int | None = None) -> Any:
        params: dict[str, Any] = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        result = self.send("Runtime.evaluate", params)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails'].get('text')} "
                               f"{result['exceptionDetails'].get('exception', {}).get('description', '')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30, context: int | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression, context)
            except BrowserError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression}")
            time.sleep(0.2)

    def text(self) -> str:
        return self.evaluate("document.body.innerText")

    def click_text(self, text: str, selector: str = "a, button, li, span, div") -> None:
        """Click the innermost element matching ``selector`` whose own text is ``text``."""
        found = self.evaluate(f"""(() => {{
            const want = {json.dumps(text)};
            const all = [...document.querySelectorAll({json.dumps(selector)})]
                .filter(el => el.innerText && el.innerText.trim() === want && el.offsetParent !== null);
            const innermost = all.filter(el => !all.some(other => other !== el && el.contains(other)));
            if (!innermost.length) return false;
            innermost[0].click();
            return true;
        }})()""")
        if not found:
            raise BrowserError(f"nothing to click with the text {text!r}")

    def frame_texts(self) -> list[str]:
        """The text of every (i)frame below the page, each read in an isolated world of its own frame."""
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
        deadline = time.monotonic() + timeout
        while True:
            for text in self.frame_texts():
                if needle in text:
                    return text
            if time.monotonic() > deadline:
                raise BrowserError(f"no frame shows {needle!r}")
            time.sleep(0.3)

    def screenshot(self, path: str | Path, clip: tuple[int, int, int, int] | None = None, scale: float = 1.0) -> Path:
        """A PNG of the viewport (or of ``clip`` = x, y, width, height), scaled by ``scale``."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            x, y, w, h = clip
            params["clip"] = {"x": x, "y": y, "width": w, "height": h, "scale": scale}
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        path = Path(path)
        path.write_bytes(data)
        return path

    # ------------------------------------------------------------ the report

    def open_report(self, report: str | Path) -> str:
        """Open a Snakemake report.html and wait until its app has drawn the start page; return the page text."""
        self.open(Path(report).resolve().as_uri())
        return self.wait_for("typeof app !== 'undefined' && document.querySelector('#app') && "
                             "document.querySelector('#app').innerText.length > 200 && document.body.innerText")

    def show_result(self, category: str, row: str, button: str = "eye") -> None:
        """Click a category of the report's menu, then, in the row of its results list that has a cell ``row``
        (a label, or the file name where a result has no labels; ``Table 2`` finds ``Table 2: …``), the ``eye`` button (show the result) or the
        ``information-circle`` one (its caption)."""
        self.evaluate("app.setView({navbarMode: 'menu'})")
        self.wait_for(f"document.body.innerText.includes({json.dumps(category)})")
        self.click_text(category, selector="a")
        clicked = self.wait_for(f"""(() => {{
            const row = [...document.querySelectorAll('nav tr')].find(tr =>
                [...tr.querySelectorAll('td')].some(td => td.innerText.trim() === {json.dumps(row)} ||
                                                          td.innerText.trim().startsWith({json.dumps(row + ":")})));
            const target = row && row.querySelector('a[iconname={json.dumps(button)}]');
            if (!target) return false;
            target.click();
            return true;
        }})()""")
        if not clicked:
            raise BrowserError(f"no result {row!r} under {category!r}")
        if button == "eye":
            self.wait_for("document.querySelector('iframe, #app img') !== null")

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _save_small(png: bytes, path: Path, width: int) -> Path:
    """Downscale to ``width`` pixels and quantize to 96 colours: screenshots for the docs stay small."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def screenshots(report: str | Path, out: str | Path, width: int = 1200) -> list[Path]:
    """The screenshots of docs/tables.md: the start page (summary), Table 2 shown inline, the claims."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with Browser(1600, 900) as browser:
        browser.open_report(report)
        time.sleep(1)

        def shot(name: str) -> None:
            tmp = Path(browser._profile.name) / "shot.png"
            browser.screenshot(tmp)
            written.append(_save_small(tmp.read_bytes(), out / name, width))

        shot("report-summary.png")
        browser.show_result("Tables", "Table 2")
        browser.wait_for_frame_text("(FP,FP)")
        time.sleep(0.5)
        shot("report-table2.png")
        browser.show_result("Claims", "Do the paper's claims hold?")
        browser.wait_for_frame_text("checks hold")
        time.sleep(0.5)
        shot("report-claims.png")
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: report_browser.py REPORT.html OUT_DIR")
    for written_path in screenshots(sys.argv[1], sys.argv[2]):
        print(written_path, written_path.stat().st_size, "bytes")
