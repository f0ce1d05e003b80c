"""Chromium for `test_browser.py`: the browser fixtures of the dashboard's tests."""

from tests.web.conftest import browser, chromium  # noqa: F401 - fixtures, used by name
