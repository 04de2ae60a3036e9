"""The dashboard in a real browser: `streamlit run` headless, every page in headless Chromium.

Opens every page of the navigation at 1280x720, waits for its charts, checks that no exception,
error box or traceback text is shown, clicks a bar of the barcode and sees the selected minimum
move, downloads one exported PNG, presses the Learn figure's Play and sees the level move, times
one step of the Learn page's event stepper (printed), and saves a screenshot of each page
under tests/screenshots/. Uses the machine's Chromium
(/usr/bin/chromium) through Playwright; nothing is downloaded. Skipped where that Chromium is
absent (outside CI; ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "tests" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 720}  # a laptop or a lecture hall's projector
# url path -> (plotly charts the page shows, or None where that depends on what other tests
# saved in the shared store; a text at the end of the page: it has finished)
PAGES = {
    "": (2, "Download table (CSV)"),
    "run": (0, "Start run"),
    "barcode": (3, "Download the whole run"),
    "landscape": (3, "Magenta lines"),
    "generalization": (1, "Download table (CSV)"),
    "compare": (2, "hatched bars"),
    "escape": (None, re.compile("Nothing computed for this run yet|Download table")),
    "sweeps": (None, re.compile("No sweeps in|Report verdicts")),
    "learn": (2, "draws the same story as a tree"),
}
WAIT_MS = 90_000  # the longest wait for one page (the first toy computation takes seconds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} is absent: the browser test needs the system Chromium "
            "(.ci/run installs it; this machine has none)"
        )
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@contextmanager
def _serving(runs: Path, log: Path) -> Iterator[str]:
    """A fresh ``streamlit run app.py`` on a free port, reading ``runs``; yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {"BARCODES_RUNS_DIR": str(runs)}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def server(tiny_runs, tmp_path_factory):
    _need_chromium()
    with _serving(tiny_runs.root, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _settle(page, n_charts: int | None, last_text) -> None:
    """Wait until the page shows its last element and its charts."""
    page.get_by_text(last_text).first.wait_for(state="attached", timeout=WAIT_MS)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot').length >= {n_charts or 0}", timeout=WAIT_MS
    )
    page.wait_for_timeout(1000)  # let the last charts draw


def _no_errors(page, name: str) -> None:
    for sel in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        n = page.locator(sel).count()
        assert n == 0, f"page {name!r}: {n} {sel}: {page.locator(sel).first.inner_text()}"
    body = page.locator("body").inner_text()
    for words in ("Traceback", "Error:", "Exception:"):
        assert words not in body, f"page {name!r} shows {words!r}: {body[-2000:]}"


# the Learn figure's level: the active step of its slider (plotly keeps it in the layout)
FLOOD_LEVEL = """() => {
    const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(g => g.layout && g.layout.sliders && g.layout.sliders.length);
    return gd ? gd.layout.sliders[0].active : null;
}"""


@pytest.mark.timeout(300, func_only=True)
def test_every_page_renders_and_the_selection_follows_a_click(server, browser, tiny_runs):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = ctx.new_page()
    try:
        for path, (n_charts, last_text) in PAGES.items():
            name = path or "home"
            page.goto(f"{server}/{path}", timeout=WAIT_MS)
            _settle(page, n_charts, last_text)
            _no_errors(page, name)
            if n_charts is not None:
                assert page.locator(".js-plotly-plot").count() == n_charts, name
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

        # linked selection: click a finite bar of the barcode, the selected minimum moves
        page.goto(f"{server}/barcode", timeout=WAIT_MS)
        _settle(page, *PAGES["barcode"])
        selected = re.compile(r"Selected minimum (\d+) \(")
        before = selected.search(page.locator("body").inner_text()).group(1)
        assert before == "0"  # the global minimum, whose bar is essential
        finite = page.locator(".js-plotly-plot").first.locator(".barlayer .trace").first
        finite.locator(".point path").first.scroll_into_view_if_needed()
        box = finite.locator(".point path").first.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)  # plotly selects the hovered point on click
        page.wait_for_timeout(300)
        page.mouse.click(x, y)
        page.wait_for_function(
            "() => !document.body.innerText.includes('Selected minimum 0 (')", timeout=WAIT_MS
        )
        _settle(page, *PAGES["barcode"])
        after = selected.search(page.locator("body").inner_text()).group(1)
        assert after != before
        _no_errors(page, "barcode after a click")
        page.screenshot(path=str(SHOTS / "barcode-selected.png"), full_page=True)

        # export: the barcode as PNG, drawn on click by kaleido
        page.get_by_role("button", name=re.compile("Export figure")).first.click()
        with page.expect_download(timeout=WAIT_MS) as dl:
            page.get_by_role("button", name="PNG", exact=True).first.click()
        data = Path(dl.value.path()).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    finally:
        ctx.close()


@pytest.mark.timeout(300, func_only=True)
def test_learn_plays_and_steps(server, browser):
    """Learn's Play moves the figure's level in the browser; one step of the event stepper
    (a server round trip of the fragment) is timed and printed, not asserted."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{server}/learn", timeout=WAIT_MS)
        _settle(page, *PAGES["learn"])
        before = page.evaluate(FLOOD_LEVEL)
        assert before is not None, "no figure with a level slider on the Learn page"
        play = page.locator(".updatemenu-button").filter(has_text="Play").first
        play.scroll_into_view_if_needed()
        play.click()
        page.wait_for_function(f"() => ({FLOOD_LEVEL})() !== {before}", timeout=WAIT_MS)
        assert page.evaluate(FLOOD_LEVEL) != before
        pause = page.locator(".updatemenu-button").filter(has_text="Pause").first
        pause.click()
        _no_errors(page, "learn after Play")

        # one step of the event stepper: press the next-event button, wait for its sentence
        said = re.compile(r"^level -?[0-9.e+-]+: ")
        sentence = page.locator('[data-testid="stMarkdown"] strong').filter(has_text=said).first
        old = sentence.inner_text()
        step = page.get_by_role("button", name="▶", exact=True).first
        step.scroll_into_view_if_needed()
        t0 = time.perf_counter()
        step.click()
        page.wait_for_function(
            "old => !document.body.innerText.includes(old)", arg=old, timeout=WAIT_MS
        )
        seconds = time.perf_counter() - t0
        print(f"\nLearn: one event step in the browser took {seconds:.3f} s")
        assert sentence.inner_text() != old
        _no_errors(page, "learn after a step")
    finally:
        page.close()


NAVIGATION = [
    "Home",
    "Run",
    "Barcode",
    "Landscape",
    "Generalization",
    "Compare",
    "Escapability",
    "Sweeps",
    "Learn",
]


@pytest.mark.timeout(300, func_only=True)
@pytest.mark.parametrize(
    ("path", "title"), [("", "Loss-landscape barcodes"), ("barcode", "Barcode")]
)
def test_the_first_request_to_a_fresh_server_gets_the_navigation(
    browser, tiny_runs, tmp_path, path, title
):
    """Streamlit serves a fresh server's first request in its legacy mode for a ``pages/``
    folder (a page URL runs that file alone); the page still comes with app.py's navigation,
    its own title and the sidebar's run picker."""
    with _serving(tiny_runs.root, tmp_path / "streamlit.log") as url:
        page = browser.new_page()
        try:
            page.goto(f"{url}/{path}", timeout=WAIT_MS)  # the server's very first request
            picker = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]')
            picker.first.wait_for(timeout=WAIT_MS)  # the sidebar app.py draws before the page
            page.locator("h1").first.wait_for(timeout=WAIT_MS)
            page.wait_for_timeout(1000)  # let the run finish drawing
            nav = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
            assert [t.split("\n")[-1] for t in nav] == NAVIGATION
            assert page.locator("h1").first.inner_text() == title
            assert page.url == f"{url}/{path}" and picker.count() == 1
            _no_errors(page, path or "home")
        finally:
            page.close()
