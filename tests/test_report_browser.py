"""The HTML report in a real browser: headless Chromium loads it, logs no console error, runs
nothing from the runs' text, filters items, and takes a screenshot.

Chromium is driven over the Chrome DevTools protocol with a minimal WebSocket client from the
standard library (no Selenium or Playwright). Skipped when ``chromium`` is not installed
(Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from test_report_helpers import INJECTION, make_study

from alignment_tax.reports.build import build_report

CHROMIUM = (
    shutil.which("chromium")
    or shutil.which("chromium-browser")
    or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
]
TIMEOUT = 30
FIRST_SCREEN = 1000  # px: a 1400 x 1000 window's first screen


class DevTools:
    """One page target over the Chrome DevTools protocol (RFC 6455 client frames, masked)."""

    def __init__(self, url: str):
        parsed = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parsed.path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            response += chunk
        if b" 101 " not in response.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {response[:200]!r}")
        self.buffer = response.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0
        self.events: list[dict] = []

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _message(self) -> dict:
        parts = []
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = first & 0x0F
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            parts.append(payload)
            if first & 0x80:
                return json.loads(b"".join(parts).decode("utf-8"))

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self._send_frame(0x1, json.dumps({"id": self.next_id, "method": method, "params": params}).encode())
        while True:
            message = self._message()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.append(self._message())
        raise TimeoutError(f"no {method} within {timeout} s")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def drain(self, seconds: float) -> None:
        self.sock.settimeout(seconds)
        try:
            while True:
                self.events.append(self._message())
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(TIMEOUT)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and browser log errors (CSP violations, failed loads)."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(
                    f"exception: {params['exceptionDetails'].get('text')} {params['exceptionDetails'].get('exception', {}).get('description', '')}"
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                found.append(
                    f"console.{params['type']}: {[a.get('value', a.get('description')) for a in params.get('args', [])]}"
                )
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                found.append(f"log {params['entry'].get('source')}: {params['entry'].get('text')}")
        return found


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium with remote debugging; yields a connected page."""
    profile = tmp_path / "profile"
    log = (tmp_path / "chromium.log").open("w")
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start: {(tmp_path / 'chromium.log').read_text()[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as response:
            pages = [t for t in json.load(response) if t.get("type") == "page"]
        page = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            page.call(domain)
        page.call("Emulation.setDeviceMetricsOverride", width=1400, height=2000, deviceScaleFactor=1, mobile=False)
        yield page
        page.sock.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def load(page: DevTools, path: Path) -> None:
    page.events.clear()
    page.call("Page.navigate", url=path.resolve().as_uri())
    page.wait_for("Page.loadEventFired")
    page.drain(0.5)


@pytest.fixture(scope="module")
def injected_report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    paths = make_study(root, n_items=24, inject=True)
    out = root / "report.html"
    build_report([paths["sft"], paths["rl"]], out=out, judge_files=[paths["judge"]])
    return out


def test_report_loads_without_console_errors_and_the_injection_stays_text(browser, injected_report, tmp_path):
    load(browser, injected_report)
    assert browser.problems() == []
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    # The page has exactly its own script, and no element from the runs' text.
    assert browser.evaluate("document.scripts.length") == 1
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    assert browser.evaluate(f"document.body.textContent.includes({json.dumps(INJECTION)})")
    assert browser.evaluate("document.querySelectorAll('svg').length") >= 6
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    png = base64.b64decode(shot["data"])
    (tmp_path / "report.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_item_browser_filters_to_flips(browser, injected_report):
    load(browser, injected_report)
    count = "document.getElementById('item-count').textContent"
    assert browser.evaluate(count) == "24 of 24 items shown"  # cmrc2018 is the first task
    browser.evaluate(
        "var k = document.getElementById('item-kind'); k.value = 'lost'; k.dispatchEvent(new Event('change'))"
    )
    lost = browser.evaluate("document.querySelectorAll('.items-task:not([hidden]) tbody tr:not([hidden])').length")
    expected = browser.evaluate(
        "document.querySelectorAll('.items-task[data-task=cmrc2018] tbody tr[data-flips*=\"lost:\"]').length"
    )
    assert browser.evaluate(count) == f"{lost} of 24 items shown" and lost == expected and lost > 0
    browser.evaluate(
        "var t = document.getElementById('item-task'); t.value = 'bo_zh_mt'; t.dispatchEvent(new Event('change'))"
    )
    assert browser.evaluate("document.querySelector('.items-task[data-task=cmrc2018]').hidden")
    browser.evaluate(
        "var q = document.getElementById('item-query'); q.value = 'bo_3'; "
        "var k = document.getElementById('item-kind'); k.value = 'all'; k.dispatchEvent(new Event('change')); "
        "q.dispatchEvent(new Event('input'))"
    )
    assert browser.evaluate(count) == "1 of 24 items shown"
    assert browser.problems() == []


def test_screenshot_from_the_command_line(injected_report, tmp_path):
    """The plain `chromium --screenshot` CI can run by hand, as the issue describes it."""
    png = tmp_path / "shot.png"
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1400,2000",
            injected_report.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.exists(), result.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "Uncaught" not in result.stderr


def test_dumped_dom_keeps_the_injection_as_text(injected_report, tmp_path):
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", injected_report.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = result.stdout
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in dom
    assert "<script>window.__pwned" not in dom and "<img src" not in dom


@pytest.fixture(scope="module")
def crowded_report(tmp_path_factory) -> Path:
    """Tiny models, and four runs on one spot of the tax-gain plot (three copies of one run)."""
    from test_report_about import TINY, with_weights

    root = tmp_path_factory.mktemp("crowded")
    paths = make_study(root, n_items=16)
    with_weights(paths, "/models/tiny-lm", TINY, {"sft": 12, "rl": 24})
    copies = [root / "runs" / f"rl{index}" for index in (2, 3, 4)]
    for copy in copies:
        shutil.copytree(paths["rl"], copy)
    out = root / "report.html"
    build_report([paths["sft"], paths["rl"], *copies], out=out, judge_files=[paths["judge"]])
    return out


# Drawn labels, point markers and leader lines of every tax-gain plot, as Chromium lays them out:
# getBBox of a label's group is the text's rendered box (the font's advance widths and
# ascent/descent), not matplotlib's measure. The plots give these artists gids (element ids).
MEASURE_PLOTS = """Array.from(document.querySelectorAll('%s')).map(function (svg) {
  var ends = function (path) {
    var n = path.getAttribute('d').trim().split(/[\\sML]+/).filter(Boolean).map(Number);
    return [n[0], n[1], n[n.length - 2], n[n.length - 1]];
  };
  return {
    labels: Array.from(svg.querySelectorAll('g[id^="point-label-"]')).map(function (g) {
      var b = g.getBBox();
      return [g.textContent.trim(), b.x, b.y, b.x + b.width, b.y + b.height];
    }),
    points: Array.from(svg.querySelectorAll('g[id^="marker-"]')).map(function (g) {
      var b = g.getBBox();
      return [g.querySelector('title').textContent.split(': x ')[0], b.x + b.width / 2, b.y + b.height / 2, b.width / 2];
    }),
    leaders: Array.from(svg.querySelectorAll('g[id^="leader-"] path')).map(ends)
  };
})"""
# A label further than this from its point is not read as the point's without a line to it.
NEAR = 12.0
# With a leader line a label may sit further off, but not across the plot: at most 120 px, under a
# quarter of the plot's 560 px width.
FARTHEST = 120.0


@dataclasses.dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def nearest(self, x: float, y: float) -> tuple[float, float]:
        return min(max(x, self.x0), self.x1), min(max(y, self.y0), self.y1)


def assert_labels_apart_and_near(plot: dict) -> None:
    """No two drawn labels intersect or cover a point; each is near its point, or tied to it by a line."""
    points = {name: (x, y, r) for name, x, y, r in plot["points"]}
    boxes = [(text, Box(x0, y0, x1, y1)) for text, x0, y0, x1, y1 in plot["labels"]]
    for (first, a), (second, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (first, a, second, b)
    for text, box in boxes:
        assert box.x1 - box.x0 > 0 and box.y1 - box.y0 > 0, text  # really drawn
        for name, (x, y, r) in points.items():  # no marker's disc reaches into the text
            corner_x, corner_y = box.nearest(x, y)
            assert (corner_x - x) ** 2 + (corner_y - y) ** 2 >= r**2, (text, box, name)
        x, y, _ = points[text.split(", ")[0]]  # a shared label names the points on one spot
        near_x, near_y = box.nearest(x, y)
        distance = ((near_x - x) ** 2 + (near_y - y) ** 2) ** 0.5
        assert distance <= FARTHEST, (text, box, (x, y))
        if distance > NEAR:
            ends = [(x2, y2) for x1, y1, x2, y2 in plot["leaders"] if abs(x1 - x) < 0.11 and abs(y1 - y) < 0.11]
            # the line runs from the point to the text as drawn (within 1.5 px of its box)
            assert any(
                ((ex - bx) ** 2 + (ey - by) ** 2) ** 0.5 <= 1.5 for ex, ey in ends for bx, by in [box.nearest(ex, ey)]
            ), (text, box, (x, y), distance, ends)


def test_point_labels_do_not_overlap_as_drawn(browser, crowded_report):
    """Chromium measures every drawn point label: no two intersect, each is near its point."""
    load(browser, crowded_report)
    assert browser.problems() == []
    plots = browser.evaluate(MEASURE_PLOTS % 'figure[id^="plot-tax_gain"] svg')
    assert len(plots) == 4  # one plot per target task and tax measure (CMRC, drift)
    for plot in plots:
        assert "rl, rl2, rl3, rl4" in [row[0] for row in plot["labels"]]  # the four runs on one spot share one label
        assert_labels_apart_and_near(plot)


CROWDS = {
    # test_report_plots' crowd: five runs at the origin, four a few pixels apart, one far away
    "latin": [("base", 0, 0)]
    + [(n, 0.0, 0.0) for n in ("sft", "rl", "dpo", "kto")]
    + [(f"near{i}", 0.06 * i, 0.06 * i) for i in range(1, 5)]
    + [("far", -3.0, 4.0)],
    # wide East Asian names, long Latin ones and a Tibetan one (the tallest script), packed closer,
    # so labels go left of their points too
    "wide": [("base", 0, 0)]
    + [(f"模型{i}号", 0.05 * i, -0.04 * i) for i in range(1, 5)]
    + [(f"ckpt-{i}000-longer", -0.05 * i, 0.04 * i) for i in range(1, 5)]
    + [("བོད་ཡིག", 1.0, 1.0)],
}


@pytest.mark.parametrize("crowd", sorted(CROWDS))
def test_crowded_labels_as_drawn_are_apart_and_near_their_points(browser, tmp_path, crowd):
    from alignment_tax.reports import plots
    from alignment_tax.reports.plots import TradeoffPoint

    points = [TradeoffPoint(name, x, y, "#1f77b4", is_base=name == "base") for name, x, y in CROWDS[crowd]]
    page = tmp_path / "plot.html"
    page.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"></head><body>{plots.tax_gain(points, "t", "x", "y")}</body></html>',
        encoding="utf-8",
    )
    load(browser, page)
    assert browser.problems() == []
    [plot] = browser.evaluate(MEASURE_PLOTS % "svg")
    drawn = [row[0] for row in plot["labels"]]
    assert len(drawn) == len(set(drawn)) >= 5, drawn
    assert_labels_apart_and_near(plot)


def test_banner_and_sign_convention_are_shown(browser, crowded_report):
    load(browser, crowded_report)
    banner = browser.evaluate(
        "(function (b) { return [b.innerText, b.offsetHeight]; })(document.getElementById('banner'))"
    )
    assert banner[0].startswith(
        "These models are tiny: base tiny-lm has 0.33M parameters and random weights; adapters trained 12–24 steps."
    )
    assert banner[1] > 0
    assert browser.evaluate("document.getElementById('tax-definition').innerText").startswith("Δ = candidate − base")


def test_a_swept_adapter_draws_its_frontier(browser, tmp_path):
    """Runs made by `sweep` (adapter_scale in results.json) are joined into one visible line, labelled by strength."""
    paths = make_study(tmp_path, n_items=16)
    for name, scale in (("sft", 1.0), ("rl", 0.5)):  # two strengths of one adapter, as sweep writes them
        results_file = paths[name] / "results.json"
        results = json.loads(results_file.read_text(encoding="utf-8"))
        results["config"] = {
            **(results.get("config") or {}),
            "adapter_scale": scale,
            "adapter_scaled_from": "/adapters/sft",
        }
        results_file.write_text(json.dumps(results), encoding="utf-8")
    out = tmp_path / "report.html"
    build_report([paths["sft"], paths["rl"]], out=out)
    load(browser, out)
    assert browser.problems() == []
    drawn = browser.evaluate("""Array.from(document.querySelectorAll('figure[id^="plot-tax_gain"] svg g[id^="frontier-"] path'))
        .map(function (p) { var b = p.getBBox(); return [p.getAttribute('d').split(/[ML]/).length - 1, b.width + b.height]; })""")
    assert drawn and all(points == 3 and size > 0 for points, size in drawn)  # base, s = 0.5, s = 1
    text = browser.evaluate("""Array.from(document.querySelectorAll('figure[id^="plot-tax_gain"] svg text'))
        .map(function (t) { return t.textContent; }).join('|')""")
    assert "sft frontier" in text and "rl (s=0.5)" in text


def test_the_controls_table_lays_out_as_a_table(browser, tmp_path):
    # The filter bar's class was once "controls" too: its flex layout broke the Controls table,
    # whose header floated apart from its body on the first screen.
    paths = make_study(tmp_path, n_items=24)
    out = tmp_path / "report.html"
    build_report([paths["sft"], paths["rl"]], out=out, controls={"positive": "sft", "negative": "rl"})
    load(browser, out)
    assert browser.problems() == []
    assert browser.evaluate("getComputedStyle(document.querySelector('table.controls')).display") == "table"
    gap = "(() => { const t = document.querySelector('table.controls'); return t.tBodies[0].getBoundingClientRect().top - t.tHead.getBoundingClientRect().bottom; })()"
    assert abs(browser.evaluate(gap)) < 1  # the body starts where the header ends
    widths = "[...document.querySelectorAll('table.controls tr')].map(r => r.getBoundingClientRect().width)"
    assert len(set(browser.evaluate(widths))) == 1  # header and rows share the table's columns
    # The first screen (1400 x 1000) answers "what did each adaptation cost?": the controls whole, then
    # the tax against the gain with drift as a tax axis, before any table of numbers.
    bottom = "document.querySelector({}).getBoundingClientRect().bottom"
    assert browser.evaluate(bottom.format('"table.controls"')) <= FIRST_SCREEN
    assert browser.evaluate(bottom.format('\'figure[id^="plot-tax_gain"][id$="_drift"] svg\'')) <= FIRST_SCREEN
    order = "[...document.querySelectorAll('h2')].map(h => h.id)"
    assert browser.evaluate(order)[:3] == ["controls", "tradeoff", "glance"]
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
    (tmp_path / "first_screen.png").write_bytes(base64.b64decode(shot["data"]))


def test_training_settings_and_glance_fit_the_page(browser, tmp_path):
    # Every setting at once, with a long reward list: the table once ran past the 1,400 px window.
    paths = make_study(tmp_path, n_items=12)
    training = {
        "learning_rate": 5e-06,
        "num_train_epochs": 3,
        "max_steps": 1000,
        "warmup_steps": 100,
        "lr_scheduler_type": "cosine_with_min_lr",
        "beta": 0.04,
        "loss_type": "dr_grpo",
        "num_generations": 8,
        "max_completion_length": 512,
    }
    config = {
        "training": training,
        "lora": {"r": 64, "alpha": 128},
        "data": {"shuffle_seed": 1234, "skip": 1000, "limit": 20000},
        "reward": {"components": {f"semantic_similarity_{i}": 0.25 for i in range(4)}},
    }
    for name in ("sft", "rl"):
        record = {"method": "grpo", "config": config, "resolved": {"tau": 0.123456}}
        (tmp_path / "train" / name / "train_config.json").write_text(json.dumps(record), encoding="utf-8")
    out = tmp_path / "report.html"
    build_report([paths["sft"], paths["rl"]], out=out)
    load(browser, out)
    assert browser.problems() == []
    assert browser.evaluate("document.querySelectorAll('table.settings tbody tr').length") == 2
    assert browser.evaluate("document.documentElement.scrollWidth") <= 1400  # nothing runs past the page
    assert browser.evaluate("document.querySelector('table.settings').getBoundingClientRect().right") <= 1400
    headers = browser.evaluate("[...document.querySelectorAll('#glance + p + table th')].map(th => th.textContent)")
    assert "ΔNLL (drift), nats/token" in headers and "CMRC Avg, 0–100" in headers
