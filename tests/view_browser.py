"""Drive a real headless Chromium (Debian ``chromium`` + ``chromium-driver``) with selenium: the
viewer's browser test, the README screenshot and the bench's first-paint figure use this helper.

Chromium starts with a fresh profile and every background service off (this machine's network
is closed: without ``--disable-background-networking`` and friends its connections fail slowly).
:class:`BrowserUnavailable` says what is missing when it cannot start.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Optional

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars",
                  "--force-device-scale-factor=1"]
INSTALL_HINT = ("install the Debian packages chromium and chromium-driver (apt-get install -y chromium "
                "chromium-driver) and selenium (pip install -e '.[test]'); .ci/run installs both")


class BrowserUnavailable(RuntimeError):
    """No headless Chromium can be driven here (the message says why and how to install one)."""


def _find(*names: str) -> Optional[str]:
    for n in names:
        p = shutil.which(n) or (n if os.path.isabs(n) and os.access(n, os.X_OK) else None)
        if p:
            return p
    return None


class Browser:
    """A headless Chromium window of ``width`` x ``height`` CSS pixels (a context manager)."""

    def __init__(self, width: int = 1400, height: int = 900) -> None:
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.options import Options
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            raise BrowserUnavailable(f"selenium is not installed: {INSTALL_HINT}") from None
        binary = _find("chromium", "chromium-browser", "/usr/bin/chromium")
        driver = _find("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
        if binary is None or driver is None:
            missing = "chromium" if binary is None else "chromedriver"
            raise BrowserUnavailable(f"no {missing} on PATH: {INSTALL_HINT}")
        self.profile = tempfile.mkdtemp(prefix="fastodin-chromium-")
        opts = Options()
        opts.binary_location = binary
        for a in CHROMIUM_FLAGS + [f"--user-data-dir={self.profile}", f"--window-size={width},{height}"]:
            opts.add_argument(a)
        try:
            self.driver = webdriver.Chrome(service=Service(driver), options=opts)
        except Exception as exc:  # noqa: BLE001 - the reason goes into the skip message
            shutil.rmtree(self.profile, ignore_errors=True)
            raise BrowserUnavailable(f"chromium did not start ({type(exc).__name__}: "
                                     f"{' '.join(str(exc).split())[:300]})") from None
        self.driver.set_script_timeout(60)
        self.driver.set_page_load_timeout(60)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.quit()

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def get(self, url: str) -> None:
        self.driver.get(url)

    def script(self, js: str, *args: Any) -> Any:
        return self.driver.execute_script(js, *args)

    def wait_idle(self, timeout: float = 30.0, plots: int = 0) -> None:
        """Wait until the page shows at least ``plots`` plots, has no fetch pending or scheduled and
        every series holds data."""
        end = time.monotonic() + timeout
        js = (f"const s = window.fastodinView; if (!s || !s.ready || s.plots.length < {plots:d}) return false;"
              "return s.busy() === 0 && s.plots.every(p => p.error || p.series.every(x => x.data));")
        stable = 0
        while time.monotonic() < end:
            if self.script(js):
                stable += 1
                if stable >= 3:
                    return
            else:
                stable = 0
            time.sleep(0.05)
        state = self.script("const s = window.fastodinView; return s ? {busy: s.busy(), errors: s.errors, "
                            "ready: s.ready} : null")
        raise TimeoutError(f"the page did not settle in {timeout} s: {state}")

    def screenshot(self, path: str) -> None:
        self.driver.save_screenshot(path)


#: What the README screenshot shows: (channel, field, into the last plot?).
SCREENSHOT_SERIES = [("odin/set/0xB5A6", "imu.accel.x", False), ("odin/set/0xB5A6", "imu.accel.y", True),
                     ("odin/set/0x98A8", "sensors.temperature", False), ("odin/set/0x9D05", "power.voltage_mv", False)]


def page_screenshot(b: Browser, url: str, out: str) -> None:
    """The README screenshot: the demo's page with a few plots and the info panel, as ``out`` (PNG)."""
    b.get(url)
    b.wait_idle()
    for ch, field, into in SCREENSHOT_SERIES:
        b.script("window.fastodinView.addSeries(arguments[0], arguments[1], arguments[2])", ch, field, into)
    b.wait_idle(plots=3)
    b.script("document.getElementById('toggle-info').click()")
    time.sleep(0.5)
    b.wait_idle()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    b.screenshot(out)


def main(argv: Any = None) -> int:
    """``python tests/view_browser.py OUT.png``: make the README screenshot of the demo."""
    import argparse
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from fastodin.cli.demo import odin_demo
    from fastodin.view.dataset import ViewSet
    from fastodin.view.server import ViewServer

    ap = argparse.ArgumentParser()
    ap.add_argument("out", help="PNG to write (spec/img/view.png for the README)")
    args = ap.parse_args(argv)
    d = tempfile.mkdtemp(prefix="fastodin-shot-")
    path = os.path.join(d, "demo.fastpack.zst")
    with open(os.devnull, "w") as devnull:
        odin_demo(path, seconds=4.0, out=devnull)
    from fastodin.cli.info import info_dict

    srv = ViewServer(ViewSet([path], cache_dir=False, info=info_dict), port=0)
    srv.start()
    try:
        with Browser(width=1280, height=800) as b:
            page_screenshot(b, srv.url, args.out)
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
    try:    # keep the committed PNG small: 64 colours (Pillow, when installed)
        from PIL import Image

        im = Image.open(args.out).convert("RGB")
        im.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
    except ImportError:
        pass
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
