"""The real app in Debian chromium through Playwright: every page renders, an upload round-trips.

Starts `streamlit run app.py` on a free port against tmp stand-ins, opens each page, uploads a 1242x375
dashcam frame (upper-case .JPG) together with a broken file, and saves screenshots to SEG_SCREENSHOTS
(default: the test's tmp folder). The server is always stopped.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from appstandins import kitti_frame, make_standins
from seg.paths import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# A real browser against a live server on a shared 2-core CPU: timing can miss a render now and then, so a
# failing test is run up to twice more (a real fault fails every time).
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.flaky(reruns=2)]  # slow: a server and chromium each
START_TIMEOUT_S = 90
PAGE_TIMEOUT_MS = 90_000


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright; no `playwright install` needed)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def run_server(tmp_path_factory, name: str):
    """Generator for a module fixture: `streamlit run app.py` on a free 127.0.0.1 port against fresh stand-ins
    in a tmp folder `name`; yields (url, tmp folder, log path) and always stops the server."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp(name)
    env = {**os.environ, **make_standins(tmp / "standins")}
    port = _free_port()
    log = tmp / "streamlit.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, proc, log)
        yield url, tmp, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from run_server(tmp_path_factory, "browser")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SEG_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def open_page(page, url: str, text: str):
    page.goto(url, wait_until="networkidle")
    page.get_by_text(text, exact=False).first.wait_for()
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PAGE_TIMEOUT_MS)


def _shot(page, path: Path) -> None:
    """Screenshot the whole app: Streamlit scrolls inside its own container, so grow the viewport to fit it."""
    height = page.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('[data-testid=\"stMain\"], section'), e => e.scrollHeight), 900)"
    )
    page.set_viewport_size({"width": 1440, "height": min(int(height) + 400, 6000)})
    page.wait_for_timeout(500)  # let charts re-layout to the new size
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})


def no_traceback(page):
    assert page.locator('[data-testid="stException"]').count() == 0


def test_pages_render(server, browser_page, shots):
    url, tmp, _ = server
    page = browser_page
    # A deep link as the fresh server's first request: Streamlit's legacy pages/ handling runs the page
    # file alone until st.navigation has run once; the page must still get the router and the sidebar.
    open_page(page, url + "/training", "Summary")
    assert page.get_by_text("Runs folder").count() >= 1 and page.get_by_text("inference", exact=True).count() == 0
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.locator(".js-plotly-plot").count() >= 4  # loss, mIoU, pixel acc, lr
    no_traceback(page)
    _shot(page, shots / "training.png")
    # A run still training: a new line appears in its log and the chart follows without a page reload.
    with open(tmp / "standins" / "runs" / "demo" / "metrics.jsonl", "a") as f:
        f.write('{"step": 400, "loss": 0.3, "lr": 1e-5, "img_per_s": 14.0, "time": 1700000300.0}\n{"step": 42')
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".some(g => (g.data || []).some(t => t.name === 'demo' && t.x && t.x[t.x.length - 1] === 400))",
        timeout=30_000,
    )
    no_traceback(page)

    open_page(page, url, "Loaded checkpoint")
    page.get_by_text("lraspp_mobilenet_v3_large").first.wait_for()
    no_traceback(page)
    _shot(page, shots / "home.png")

    open_page(page, url + "/validation", "Ground truth")
    page.get_by_text("pixel accuracy", exact=False).first.wait_for()
    no_traceback(page)
    _shot(page, shots / "validation.png")
    page.get_by_role("tab", name="Confusion matrix").click()
    page.locator(".js-plotly-plot >> visible=true").first.wait_for()
    _shot(page, shots / "validation_confusion.png")


def test_upload_frames(server, browser_page, shots):
    url, tmp, _ = server
    page = browser_page
    frame = tmp / "DASHCAM_0001.JPG"  # upper case, as dashcams write it
    Image.open(kitti_frame(tmp / "frame.png", seed=3)).save(frame, format="JPEG", quality=90)
    broken = tmp / "broken.png"
    broken.write_bytes(b"definitely not a png")
    open_page(page, url + "/inference", "Sample frames")
    page.locator('input[type="file"]').first.set_input_files([str(frame), str(broken)])  # Frames, then Clips
    page.get_by_text("broken.png: not an image", exact=False).first.wait_for()
    page.get_by_text("DASHCAM_0001.JPG").first.wait_for()
    page.get_by_text("Overlay (50%)").first.wait_for()
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PAGE_TIMEOUT_MS)
    assert page.get_by_text("1242×375 px").count() >= 1
    assert page.locator('[data-testid="stDownloadButton"]').count() >= 2
    no_traceback(page)
    _shot(page, shots / "inference.png")


def test_upload_clip_plays_in_the_page(server, browser_page, shots):
    url, tmp, _ = server
    page = browser_page
    clip = tmp / "DRIVE.MP4"  # upper case, as dashcams write it
    still = np.asarray(Image.open(kitti_frame(tmp / "clip_frame.png", seed=4)).resize((320, 96)))
    with av.open(str(clip), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 320, 96, "yuv420p"
        for i in range(12):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.roll(still, 4 * i, axis=1), format="rgb24")))
        c.mux(s.encode(None))
    open_page(page, url + "/inference", "Sample frames")
    page.locator('input[type="file"]').nth(1).set_input_files([str(clip)])  # the Clips uploader
    page.get_by_text("Segmented clip (MP4)").first.wait_for()
    # the produced H.264 clip decodes in the browser: metadata and a first frame are there
    page.wait_for_function("() => { const v = document.querySelector('video');"
                           " return v && v.readyState >= 2 && v.duration > 0; }", timeout=PAGE_TIMEOUT_MS)
    assert page.get_by_text("12 frames", exact=False).count() >= 1
    page.locator(".js-plotly-plot").first.wait_for()
    no_traceback(page)
    _shot(page, shots / "inference_clip.png")
