"""axe-core (vendored, tests/browser/vendor) finds no violation on any page, light or dark.

On top of axe's defaults, `target-size` is on and raised from WCAG 2.2's 24 px to 44 px
with no spacing exemption: every control that is not a link inside running text must be
at least 44 by 44 px to touch.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import SEED_PATH, assert_accessible


def test_the_login_page(new_context, sandbox):
    page = new_context().new_page()
    page.goto(SEED_PATH)  # with the "log in to open the page you asked for" line
    assert_accessible(page)


@pytest.mark.parametrize("path", [SEED_PATH, "hostile", "/leads/"])
def test_the_lead_pages_and_the_list(path, open_page, hostile_lead):
    page = open_page(hostile_lead if path == "hostile" else path)
    assert_accessible(page)


def test_the_shortcuts_dialog(open_page):
    page = open_page()
    page.keyboard.press("?")
    assert_accessible(page)


# The error pages are checked with axe in test_pages.py, as each one is rendered.


def test_the_touch_target_check_catches_a_small_control(new_context, sandbox):
    # The check itself: a 20 px tall button must fail it (24 px would pass axe's default).
    page = new_context().new_page()
    page.goto("/accounts/login/")
    page.evaluate(
        """() => {
          const button = document.createElement("button");
          button.textContent = "Tiny";
          Object.assign(button.style, { minHeight: "0", height: "20px", padding: "0" });
          document.querySelector("main").append(button);
        }"""
    )
    with pytest.raises(AssertionError, match=r"target-size .*Tiny|target-size"):
        assert_accessible(page)
