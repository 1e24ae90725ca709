"""Layout: phone and desktop widths without sideways scrolling, the page without
JavaScript, print (one page), and dark mode."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, SEED_ID

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
# The largest element that sticks out past the right edge, to say what to fix.
WIDEST = """
() => [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > innerWidth + 0.5)
  .map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))
  .slice(-5)
"""


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("which", ["seed lead", "hostile lead", "list", "login"])
def test_no_sideways_scroll(which, size, open_page, new_context, hostile_lead):
    if which == "login":
        page = new_context(viewport=size).new_page()
        page.goto("/accounts/login/")
    else:
        path = {"seed lead": None, "hostile lead": hostile_lead, "list": "/leads/"}[which]
        page = open_page(path, viewport=size) if path else open_page(viewport=size)
    assert page.evaluate(NO_SIDEWAYS_SCROLL), page.evaluate(WIDEST)


def test_without_javascript_the_lead_shows_everything_and_no_copy_buttons(open_page):
    page = open_page(java_script_enabled=False)
    shown = page.locator("main").inner_text()  # rendered text only: nothing hidden
    for text in [
        "John Doe",
        "Tech Corp",
        "Marketing Manager",
        "john.doe@example.com",
        "+1-555-123-4567",
        "website",
        "spring_2024",
        "product_a",
        "Interested in premium package",
        SEED_ID,
    ]:
        assert text in shown
    expect(page.locator("button.copy")).to_have_count(4)
    for button in page.locator("button.copy").all():
        expect(button).to_be_hidden()
    expect(page.locator(".shortcuts-hint")).to_be_hidden()
    # What needs no script still works: the links and the Refresh form.
    expect(page.get_by_role("link", name="Save contact")).to_be_visible()
    expect(page.get_by_role("button", name="Refresh from PollyBot")).to_be_visible()


# A PDF's page objects: "/Type /Page" not followed by "s" (that is the page tree).
PDF_PAGE = re.compile(rb"/Type\s*/Page(?!s)")


def test_print_hides_the_chrome_and_fits_one_page(open_page):
    page = open_page()
    page.emulate_media(media="print")
    for selector in [".site-header", ".site-footer", ".actions", ".calendar-links"]:
        expect(page.locator(selector)).to_be_hidden()
    for button in page.locator("main button, main .button").all():
        expect(button).to_be_hidden()
    expect(page.get_by_role("heading", level=1)).to_have_text("John Doe")
    pdf = page.pdf(format="A4")
    assert len(PDF_PAGE.findall(pdf)) == 1


def test_dark_mode_gives_a_dark_page(open_page):
    page = open_page(color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)"  # --bg in dark mode
    text = page.evaluate("getComputedStyle(document.body).color")
    assert text == "rgb(232, 234, 237)"
