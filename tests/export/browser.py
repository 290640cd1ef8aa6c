"""A headless Chromium driven over the DevTools protocol, for the HTML export's tests.

No extra package: ``--remote-debugging-pipe`` speaks CDP over file descriptors 3 (to the
browser) and 4 (from it), one JSON message per NUL-terminated chunk (as Puppeteer's pipe
transport does).  The browser gets a fresh profile in a temporary directory and every switch
that stops its own background traffic, so the requests it reports are the page's.

Use::

    with Browser() as browser:
        page = browser.open(url)                 # waits for the load event
        page.evaluate("1 + 1")                   # -> 2
        page.requests                            # every URL the page asked for
        page.errors                              # uncaught exceptions and console errors
        png = page.screenshot()                  # PNG bytes
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = Path(os.environ.get("SEQATTN_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = ("Debian's chromium is not installed at /usr/bin/chromium: run scripts/install_test_browser.sh "
                "as root (apt-get install chromium), as `make test` does")

SWITCHES = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
            "--no-first-run", "--no-default-browser-check", "--disable-features=Translate,OptimizationHints,"
            "MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
            "--metrics-recording-only", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe",
            "--allow-file-access-from-files"]


def available() -> bool:
    return CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 60.0):
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict] = []

    def __enter__(self) -> "Browser":
        self._profile = tempfile.mkdtemp(prefix="seqattn-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire():  # in the child: the pipe ends on fds 3 and 4, as --remote-debugging-pipe wants
            import fcntl

            # Out of the way first (a pipe end may itself be fd 3 or 4); dup2 then clears close-on-exec.
            reading = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            writing = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self._proc = subprocess.Popen([str(CHROMIUM), *SWITCHES, f"--user-data-dir={self._profile}",
                                       f"--window-size={self.width},{self.height}", "about:blank"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      preexec_fn=wire, close_fds=False)  # Python fds are close-on-exec; 3 and 4 are not
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close", timeout_s=5)
        except Exception:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------------ protocol
    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from chromium in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                err = self._proc.stderr.read().decode(errors="replace")[-2000:] if self._proc.poll() is not None else ""
                raise BrowserError(f"chromium closed the pipe {err}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout_s: float | None = None) -> dict:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            message = self._read(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def wait_for(self, method: str, session: str, timeout_s: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            for k, event in enumerate(self._events):
                if event["method"] == method and event.get("sessionId") == session:
                    return self._events.pop(k)
            self._events.append(self._read(deadline))

    def open(self, url: str) -> "Page":
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False}, session=session)
        # Injected by the protocol (outside the page's CSP): counts CSP violations the page causes.
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": (
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation', function (e) {"
            " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI); });")}, session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def _drain(self) -> list[dict]:
        mine = [e for e in self.browser._events if e.get("sessionId") == self.session]
        return mine

    @property
    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self._drain() if e["method"] == "Network.requestWillBeSent"]

    @property
    def errors(self) -> list[str]:
        found = []
        for e in self._drain():
            if e["method"] == "Runtime.exceptionThrown":
                details = e["params"]["exceptionDetails"]
                found.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"]))
            elif e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
                found.append(e["params"]["entry"]["text"])
        return found

    def evaluate(self, expression: str):
        result = self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                        "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"].get("exception", {}).get("description")
            raise BrowserError(f"{expression[:80]}: {details}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        data = self.browser.call("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        return base64.b64decode(data)
