"""The page in a real headless Chromium (Debian ``chromium`` + ``chromium-driver``, driven by
selenium): it loads for a demo archive, plots fields (deep link and the channel tree), zooms by
drag and wheel, pans, resets, reads out under the cursor, draws event markers, follows a file
being recorded -- and the test checks what the plot drew: the series data the chart holds equals
the API's answer (itself checked against a brute force) and the canvas is not blank.

Skipped, saying why, where no Chromium can be driven (``.ci/run`` installs one)."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from view_browser import Browser, BrowserUnavailable
from view_helpers import check_envelope, get_json, serving

import fastodin

SET = "odin/set/0xB5A6"
FIELD = "imu.accel.x"


@pytest.fixture(scope="module")
def browser():
    try:
        b = Browser(width=1300, height=850)
    except BrowserUnavailable as exc:
        pytest.skip(f"no headless Chromium: {exc}")
    yield b
    b.quit()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from fastodin.cli.demo import odin_demo

    path = str(tmp_path_factory.mktemp("page") / "demo.fastpack.zst")
    with open(os.devnull, "w") as out:
        assert odin_demo(path, seconds=4.0, out=out) == 0
    return path


@pytest.fixture(scope="module")
def srv(demo):
    with serving([demo]) as s:
        yield s


@pytest.fixture(scope="module")
def truth(demo):
    from fastodin.odin import decode

    res = decode(demo)
    with fastodin.open(demo) as ar:
        def get(channel, field):
            sid = int(channel.rsplit("0x", 1)[1], 16)
            return ar.read(channel)[0], res[sid].columns(expand=True)[field]
        yield get


def _series(b):
    return b.script("return window.fastodinView.plots.map(p => p.series.map(s => "
                    "({channel: s.channel, field: s.field, data: s.data, params: s.params})))")


def _check_plot_data(b, srv, truth):
    """Every series the page holds is exactly the API's answer to the page's own request, and
    that answer is the brute force over the decoded records."""
    plots = _series(b)
    assert plots
    for series in plots:
        for s in series:
            params = dict(s["params"])
            _st, api = get_json(srv, "/api/series", **params)
            for k in ("t0", "t1", "min", "max", "n", "nan"):
                assert s["data"][k] == api[k], k
            t, v = truth(s["channel"], s["field"])
            check_envelope(api, t, v, params.get("start"), params.get("end"), params["points"])
    return plots


def _colored_pixels(b, plot_index, hex_color):
    return b.script("""
        const u = window.fastodinView.plots[arguments[0]].u, c = u.ctx.canvas;
        const d = u.ctx.getImageData(0, 0, c.width, c.height).data;
        const h = arguments[1], r = parseInt(h.slice(1, 3), 16), g = parseInt(h.slice(3, 5), 16), bl = parseInt(h.slice(5, 7), 16);
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - bl) < 40 && d[i + 3] > 100) n++;
        return n;""", plot_index, hex_color)


def _window(b):
    return b.script("return window.fastodinView.window")


def test_page_plots_zooms_and_reads_out(browser, srv, truth):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    b = browser
    b.get(srv.url + f"?channel={SET}&field={FIELD}")
    b.wait_idle(plots=1)
    plots = _check_plot_data(b, srv, truth)
    assert [[(s["channel"], s["field"]) for s in p] for p in plots] == [[(SET, FIELD)]]
    assert sum(plots[0][0]["data"]["n"]) == len(truth(SET, FIELD)[0])       # the whole span
    color = b.script("return window.fastodinView.plots[0].series[0].color")
    assert _colored_pixels(b, 0, color) > 300                                  # the canvas is not blank
    assert b.script("return window.fastodinView.errors") == []

    # the channel tree: plot another field (a new plot sharing the time axis)
    btn = b.driver.find_element(By.CSS_SELECTOR, 'button.field[data-channel="odin/set/0x98A8"][data-field="sensors.temperature"]')
    btn.click()
    b.wait_idle()
    plots = _check_plot_data(b, srv, truth)
    assert len(plots) == 2
    assert _colored_pixels(b, 1, b.script("return window.fastodinView.plots[1].series[0].color")) > 300

    # zoom by dragging a selection on the first plot
    over = b.script("return window.fastodinView.plots[0].u.over")
    w = over.size["width"]
    ActionChains(b.driver).move_to_element_with_offset(over, -w // 4, 0).click_and_hold() \
        .move_by_offset(w // 4, 0).release().perform()
    b.wait_idle()
    win = _window(b)
    assert win is not None and win[1] > win[0]
    plots = _check_plot_data(b, srv, truth)
    for p in plots:
        (s,) = p
        assert s["params"]["start"] == win[0] and s["params"]["end"] == win[1]
        assert all(t >= win[0] for t in s["data"]["t0"]) and all(t < win[1] for t in s["data"]["t1"])
    span = b.script("return window.fastodinView.span")
    assert 0.15 < (win[1] - win[0]) / (span[1] - span[0]) < 0.35
    assert b.script("return window.location.search").count("start=") == 1        # a deep link of this view

    # wheel zoom (in) around the middle, then pan with the keyboard
    b.script("""const o = arguments[0], r = o.getBoundingClientRect();
                o.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: r.left + r.width / 2,
                                                         clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));""",
             over)
    b.wait_idle()
    win2 = _window(b)
    assert (win2[1] - win2[0]) < (win[1] - win[0]) * 0.85
    assert win[0] < win2[0] < win2[1] < win[1]
    b.driver.find_element(By.TAG_NAME, "body").send_keys("\ue014")           # ArrowRight
    b.wait_idle()
    win3 = _window(b)
    assert win3[0] > win2[0] and abs((win3[1] - win3[0]) - (win2[1] - win2[0])) < 1e-9
    _check_plot_data(b, srv, truth)

    # the cursor readout shows the exact values of the run under the cursor
    ActionChains(b.driver).move_to_element(over).perform()
    time.sleep(0.2)
    text = b.script("return window.fastodinView.plots[0].readout.textContent")
    assert FIELD in text
    shown = b.script("""const p = window.fastodinView.plots[0], u = p.u, d = p.series[0].data;
        const t = u.posToVal(u.cursor.left, 'x');
        let best = 0;
        for (let i = 1; i < d.n.length; i++)
            if (Math.abs((d.t0[i] + d.t1[i]) / 2 - t) < Math.abs((d.t0[best] + d.t1[best]) / 2 - t)) best = i;
        return [String(d.min[best]), String(d.max[best]), d.n[best]];""")
    assert shown[1] in text and (shown[2] == 1 or shown[0] in text), (shown, text)

    # double-click: the whole span again
    ActionChains(b.driver).double_click(over).perform()
    b.wait_idle()
    assert _window(b) is None
    plots = _check_plot_data(b, srv, truth)
    assert sum(plots[0][0]["data"]["n"]) == len(truth(SET, FIELD)[0])

    # ODIN events are markers on every plot
    ev = get_json(srv, "/api/events", limit=2000)[1]
    assert b.script("return window.fastodinView.events.length") == len(ev["events"]) > 0


def test_deep_link_window_and_several_series(browser, srv, truth):
    b = browser
    b.get(srv.url + f"?channel={SET}&field={FIELD}&channel=odin/set/0x9D05&field=power.voltage_mv&start=1&end=2.5")
    b.wait_idle(plots=2)
    assert _window(b) == [1, 2.5]
    plots = _check_plot_data(b, srv, truth)
    assert [p[0]["field"] for p in plots] == [FIELD, "power.voltage_mv"]
    for p in plots:
        assert p[0]["params"]["start"] == 1 and p[0]["params"]["end"] == 2.5
        assert p[0]["data"]["t0"][0] >= 1 and p[0]["data"]["t1"][-1] < 2.5
    # shift-click puts a field into the last plot: one plot, two series, one shared x
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    det = b.driver.find_element(By.CSS_SELECTOR, f'details[data-channel="{SET}"]')
    if not det.get_attribute("open"):
        det.find_element(By.TAG_NAME, "summary").click()          # unfold the channel in the tree
    btn = det.find_element(By.CSS_SELECTOR, 'button.field[data-field="imu.accel.y"]')
    assert btn.is_displayed()
    ActionChains(b.driver).key_down(Keys.SHIFT).click(btn).key_up(Keys.SHIFT).perform()
    b.wait_idle()
    plots = _check_plot_data(b, srv, truth)
    assert [s["field"] for s in plots[-1]] == ["power.voltage_mv", "imu.accel.y"]


def test_page_follows_a_growing_file(browser, tmp_path):
    path = str(tmp_path / "live.fastpack.zst")
    w = fastodin.Writer(path, flush_interval=0.1)
    k = [0]

    def write(n):
        t = (k[0] + np.arange(n)) * 1e-3
        w.write_many(t, "live", np.sin(t))
        k[0] += n

    write(2000)               # not flushed yet: the deep-linked channel may appear only after the page loads
    try:
        with serving([path], poll_interval=0.1) as s:
            b = browser
            b.get(s.url + "?channel=live&field=value")
            b.wait_idle(plots=1)       # plotted even when the channel shows up after the page loads
            lat = []
            for n in (500, 3000, 1):
                th = threading.Thread(target=write, args=(n,))
                th.start()
                th.join()
                t0 = time.monotonic()
                end = t0 + 20
                while time.monotonic() < end:
                    got = b.script("const d = window.fastodinView.plots[0].series[0].data; "
                                   "return d ? d.n.reduce((a, x) => a + x, 0) : 0")
                    if got == k[0]:
                        break
                    time.sleep(0.02)
                assert got == k[0]
                lat.append(time.monotonic() - t0)
            print(f"page live latency: {[f'{x:.2f}' for x in lat]} s")
    finally:
        w.close()


def test_screenshot_helper(browser, srv, tmp_path):
    """The README screenshot's helper works (FASTODIN_SCREENSHOT=docs/view.png writes it there)."""
    from view_browser import page_screenshot

    out = os.environ.get("FASTODIN_SCREENSHOT") or str(tmp_path / "view.png")
    if not os.path.isabs(out):
        out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), out)
    page_screenshot(browser, srv.url, out)
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
