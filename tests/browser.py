"""The browser self-tests' one way to a browser: Debian's chromium, driven by Playwright
(whose own browser download cannot reach the internet here). Without either, the test
skips with TOOL_MISSING and the action that installs it, never silently passes."""

from __future__ import annotations

import shutil

import pytest


def chromium_or_skip() -> str:
    """The chromium executable's path, once Playwright is importable too."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("TOOL_MISSING: playwright is not installed; action: pip install -e '.[dev]'")
    if chromium is None:
        pytest.skip("TOOL_MISSING: no chromium on this runner; action: apt-get install chromium")
    return chromium
