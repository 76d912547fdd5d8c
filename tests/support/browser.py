"""Debian's Chromium (/usr/bin/chromium) driven by Playwright, and screenshots kept as artifacts.

Playwright never downloads a browser here (`playwright install` is not used): it drives
the system binary through `executable_path`. Screenshots go to
test-artifacts/browser/<test name>-<name>.png at the repository root (git ignores it), or
to the folder NEWSLETTER_TEST_BROWSER_ARTIFACTS names.
"""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
# .ci/run gives each of its two runs a folder of its own; relative paths are the root's.
ARTIFACTS = ROOT / os.environ.get("NEWSLETTER_TEST_BROWSER_ARTIFACTS", "test-artifacts/browser")
TIMEOUT_MS = 15_000

# The test each page belongs to, so snap() can name its files without being told.
_test_names: dict[int, str] = {}


def missing() -> str | None:
    """Why browser tests cannot run on this machine, or None when they can."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (Debian package `chromium`; .ci/run installs it)"
    if importlib.util.find_spec("playwright") is None:
        return "the Python package `playwright` is not installed (pip install '.[dev]')"
    return None


def launch(playwright):
    """A headless Chromium from the system binary, with nothing that phones home."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True)


def new_page(browser, test_name: str):
    """A page in a fresh context (no cookies) for `test_name`."""
    context = browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    _test_names[id(page)] = test_name
    return page


def close_page(page) -> None:
    _test_names.pop(id(page), None)
    page.context.close()


def snap(page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/browser/<test name>-<name>.png."""
    test = _test_names.get(id(page), "browser")
    path = ARTIFACTS / f"{_safe(test)}-{_safe(name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def forget_snaps(test_name: str) -> None:
    """Remove an earlier run's screenshots of `test_name`, so the folder shows the last run."""
    for old in ARTIFACTS.glob(f"{_safe(test_name)}-*.png"):
        old.unlink()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "page"
