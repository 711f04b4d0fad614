"""Every tab in a real browser: Debian's headless Chromium, driven by Playwright, on the served app.

For each tab of `build_app()`: open it, click its first example (if it has examples), press its
primary button, wait for a new output image, and save a screenshot in the test's output folder.
A new tab is covered without touching this file, as long as it has a primary button that makes an
image. `CARTOON_SCREENSHOT=path` also copies the first tab's screenshot there
(`python scripts/screenshot.py` refreshes the README's docs/screenshot.png that way).

Chromium comes from `make install-browser` (apt). Without it the test fails under CI (CI=true) and
is skipped with the reason elsewhere, so a developer can still run the rest of the suite.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import gradio as gr
import pytest

from app import build_app

CHROMIUM = Path(os.environ.get("CARTOON_CHROMIUM", "/usr/bin/chromium"))
# As root in a sandbox without a network: no sandbox, no GPU, and none of Chromium's own traffic
# (its background connections are refused here, many at a time, and slow every start).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RESULT_TIMEOUT_MS = 180_000  # first request of a tab loads its model on a shared 2-core CPU
PANEL_IMAGES = "img:not(.gallery-item img)"  # every picture in a tab except its examples' thumbnails
# a new picture, or a picture whose source changed (a tab whose example already drew its outputs
# redraws them in place), or an error toast
NEW_IMAGE_OR_ERROR = """([panel, toasts, selector, sources]) =>
    document.querySelectorAll('[data-testid=toast-body]').length > toasts
    || panel.querySelectorAll(selector).length > sources.length
    || [...panel.querySelectorAll(selector)].some(i => !sources.includes(i.src))"""
# no event of the tab still queued or running (Gradio hides every output's status tracker when done;
# a failed one keeps it, so an error toast ends the wait too)
IDLE_OR_ERROR = """([panel, toasts]) =>
    document.querySelectorAll('[data-testid=toast-body]').length > toasts
    || [...panel.querySelectorAll('[data-testid=status-tracker]')].every(t => t.classList.contains('hide'))"""
ALL_LOADED = "([panel, selector]) => [...panel.querySelectorAll(selector)].every(i => i.complete && i.naturalWidth > 0)"


def tab_labels() -> list[str]:
    demo = build_app()
    return [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]


TABS = tab_labels()


def missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -r requirements-test.txt"
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing: `make install-browser` installs Debian's chromium"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    reason = missing_browser()
    if reason:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"browser test cannot run in CI: {reason}")
        pytest.skip(f"browser test needs Chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def page(browser, app_url):
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(app_url)
    page.get_by_role("tab").first.wait_for()
    return page


def test_every_tab_is_listed(page):
    shown = [tab.inner_text().strip() for tab in page.get_by_role("tab").all()]
    assert shown == TABS


def wait_for(page, panel, script: str, extra: list, toasts: int, label: str, after: str):
    """Until `script` holds in the tab; an error toast newer than the first `toasts` fails the test with its text."""
    page.wait_for_function(script, arg=[panel.element_handle(), toasts, *extra], timeout=RESULT_TIMEOUT_MS)
    errors = page.get_by_test_id("toast-body")
    if errors.count() > toasts:
        pytest.fail(f"{label}: the app showed an error after {after}: {errors.last.inner_text()}")


def click_and_wait(page, panel, target, label: str, after: str):
    """Click `target`, then wait for a new or changed picture and for every event the click started to end.

    An example can start several events (the Latent Lab's draws the face and its feature map): one
    still running when the test types a seed would overwrite it, and the button would then redraw
    the example's very picture, which the wait for a changed picture cannot tell from none at all."""
    toasts = page.get_by_test_id("toast-body").count()
    sources = panel.locator(PANEL_IMAGES).evaluate_all("images => images.map(i => i.src)")
    target.click()
    wait_for(page, panel, NEW_IMAGE_OR_ERROR, [PANEL_IMAGES, sources], toasts, label, after)
    wait_for(page, panel, IDLE_OR_ERROR, [], toasts, label, after)


@pytest.mark.parametrize("label", TABS)
def test_tab_example_runs_in_browser(page, label, tmp_path):
    page.get_by_role("tab", name=label, exact=True).click()
    panel = page.locator(".tabitem:visible")
    examples = panel.locator("button.gallery-item")
    if examples.count():
        click_and_wait(page, panel, examples.first, label, "loading its first example")
    seed = panel.get_by_label("Seed", exact=True)
    if seed.count():  # another seed, so the button draws pictures the example did not
        seed.fill("8")
    click_and_wait(page, panel, panel.locator("button.primary").first, label, "pressing its button")
    page.wait_for_function(ALL_LOADED, arg=[panel.element_handle(), PANEL_IMAGES])

    shot = tmp_path / f"{re.sub(r'[^a-z0-9]+', '-', label.lower()).strip('-')}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    if label == TABS[0] and os.environ.get("CARTOON_SCREENSHOT"):
        shutil.copy(shot, os.environ["CARTOON_SCREENSHOT"])
