"""Validation and Training in chromium (issue 24, items 12, 17, 20, 22): controls live while a page opened by
URL scores, both A/B models' charts, no clear button on "nothing", zoom kept across Log scale.

The tests share one server and run in file order: the first opens Validation by URL on the fresh server.
"""
from __future__ import annotations

import shutil

import pytest

import test_browser as tb
from test_browser import PAGE_TIMEOUT_MS, no_traceback, open_page
from test_browser_app import LOSS, WAIT_MS, X_RANGE, _idle, _mark_chart, _wait_new_chart

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.flaky(reruns=2)]  # slow: a server and chromium each
COMPARE = '[data-testid="stSidebar"] .st-key-src_compare'
Y_RANGE = X_RANGE.replace("xaxis", "yaxis")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run app.py` against fresh stand-ins with a second checkpoint to compare; always stopped."""
    for url, tmp, log in tb.run_server(tmp_path_factory, "browser_validation"):
        runs = tmp / "standins" / "runs"
        shutil.copy(runs / "demo" / "model.pt", runs / "sweep" / "lr-high" / "model.pt")
        yield url, tmp, log


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(tb.CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                           "--disable-component-update", "--disable-sync"])
        try:
            p = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            p.set_default_timeout(PAGE_TIMEOUT_MS)
            yield p
        finally:
            browser.close()


def test_validation_by_url_has_live_controls_while_scoring(server, page):
    url, _, _ = server
    # While the split is being scored, record whether the page's controls were ever disabled placeholders.
    page.add_init_script("""
      window.__deadWhileScoring = false;
      new MutationObserver(() => {
        if (!(document.body && document.body.innerText.includes('not scored yet'))) return;
        window.__sawScoring = true;
        const box = document.querySelector('.st-key-val_per_page');
        if (!box || box.querySelector('[data-testid="stSkeleton"], [aria-disabled="true"], :disabled'))
          window.__deadWhileScoring = true;
      }).observe(document, {childList: true, subtree: true, characterData: true});
    """)
    open_page(page, url + "/validation", "Ground truth")
    page.get_by_text("6 of 6").first.wait_for(timeout=WAIT_MS)
    if page.evaluate("window.__sawScoring"):  # a fast machine may render scoring and its end in one frame
        assert page.evaluate("window.__deadWhileScoring") is False
    no_traceback(page)


def test_ab_validation_shows_both_models_and_nothing_has_no_clear_button(server, page):
    url, _, _ = server
    open_page(page, url + "/validation", "Ground truth")
    page.locator(COMPARE).click()
    page.get_by_role("option", name="sweep/lr-high · model.pt").click()
    page.get_by_text("Per-class IoU (A/B)").first.click()
    page.wait_for_function("document.body.innerText.includes('Per-class IoU · B')", timeout=WAIT_MS)
    assert page.get_by_text("Per-class IoU · A").count() >= 1
    page.get_by_text("Confusion matrices (A/B)").first.click()
    page.wait_for_function("document.body.innerText.includes('Confusion matrix (row-normalised) · B')",
                           timeout=WAIT_MS)
    page.locator(COMPARE).click()
    page.get_by_role("option", name="nothing").click()
    page.get_by_text("Confusion matrix", exact=True).first.wait_for(timeout=WAIT_MS)
    _idle(page)
    page.locator(COMPARE).hover()
    assert page.locator(f'{COMPARE} [aria-label="Clear value"]').count() == 0
    no_traceback(page)


def test_zoom_survives_log_scale(server, page):
    url, _, _ = server
    open_page(page, url + "/training", "Summary")
    page.locator(LOSS).wait_for()
    _idle(page)
    box = page.locator(f"{LOSS} .nsewdrag").first.bounding_box()
    _mark_chart(page)
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7, steps=10)
    page.mouse.up()
    page.wait_for_function(f"({X_RANGE})() !== null && ({Y_RANGE})() !== null", timeout=WAIT_MS)
    _wait_new_chart(page, f"({X_RANGE})() !== null")
    x, y = page.evaluate(X_RANGE), page.evaluate(Y_RANGE)
    assert y[0] > 0  # a loss range: it has a log reading
    _mark_chart(page)
    page.locator(".st-key-train_log").get_by_text("Log scale").click()
    _wait_new_chart(page, "gd.layout.yaxis && gd.layout.yaxis.type === 'log'")
    _idle(page)
    assert page.evaluate(X_RANGE) == pytest.approx(x, rel=1e-6)
    log_y = page.evaluate(Y_RANGE)
    assert log_y is not None and 10 ** log_y[0] == pytest.approx(y[0], rel=1e-3)
    no_traceback(page)
