"""Browser tests: Debian's chromium (/usr/bin/chromium) driven by Playwright.

Never download a browser (no ``playwright install``): the machines have no
internet for it, and CI installs chromium with apt-get.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def page(browser) -> Iterator[object]:
    # An English-language browser, as on many office machines: the UI must still
    # start in Chinese and turn English only through the switch.
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
